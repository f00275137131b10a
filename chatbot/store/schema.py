"""The database schema as the code sees it (Alembic's revisions in migrations/ build it), URL rules and SQLite
connection settings (no Flask)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

TITLE_MAX = 200
CLIENT_ID_MAX = 100
SQLITE_BUSY_TIMEOUT_MS = 5000


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and read back timezone-aware, also on SQLite (which drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Convert to UTC; SQLite gets a naive UTC value so stored strings compare in time order."""
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Attach UTC to naive SQLite values and normalise Postgres values from the session zone."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

owners = sa.Table(
    "owners",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False, index=True),
    # No foreign key: the tables would reference each other; reads join to check it still exists.
    sa.Column("active_conversation_id", sa.String(32), nullable=True),
    # The account whose conversation space this is (None: an anonymous session); one owner per account.
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Index("uq_owners_user_id", "user_id", unique=True),
)

USERNAME_MAX = 254
ROLES = ("user", "admin")
USER_STATES = ("pending", "active", "disabled")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(USERNAME_MAX), nullable=False),  # as typed; unique case-insensitively
    sa.Column("password_hash", sa.String(512), nullable=True),  # None: signs in by single sign-on or proxy only
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Bumped by "sign out everywhere", a password change or disabling: every older login token is dead.
    sa.Column("session_version", sa.Integer, nullable=False),
    sa.Column("daily_token_limit", sa.BigInteger, nullable=True),  # None: USER_DAILY_TOKENS; 0: no limit
    sa.Column("oidc_subject", sa.String(255), nullable=True),
    sa.Index("uq_users_oidc_subject", "oidc_subject", unique=True),
)
sa.Index("uq_users_username", sa.func.lower(users.c.username), unique=True)

LINK_PURPOSES = ("invite", "reset")

# One-time links made by an admin: invitations to sign up and password resets. Only a hash of the token is kept.
links = sa.Table(
    "links",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),  # reset
    sa.Column("created_by", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

# Per account and UTC hour: replies asked for and tokens spent, written by a reply's final write. The quota sums
# today's rows, the admin page the last 24 and 720.
usage_hourly = sa.Table(
    "usage_hourly",
    metadata,
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("messages", sa.Integer, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"),  # tool steps of its replies (0007)
    sa.Index("ix_usage_hourly_hour", "hour"),  # the usage charts: every account's last 30 days
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("title", sa.String(TITLE_MAX), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("model", sa.String(100), nullable=True),  # the model this conversation asks for (None: the default)
    sa.Column("tools", sa.JSON(none_as_null=True), nullable=True),  # tool ids its replies may use (None: none; 0007)
    # The newest message of the path the conversation shows and continues (no foreign key: see messages.parent_id).
    sa.Column("active_leaf_id", sa.Integer, nullable=True),
    # The conversation's settings (None: the operator's defaults) and the project it is in, if any (team layer).
    sa.Column("instructions", sa.Text, nullable=True),
    sa.Column("temperature", sa.Float, nullable=True),
    sa.Column("max_tokens", sa.Integer, nullable=True),
    sa.Column("reasoning_effort", sa.String(16), nullable=True),
    sa.Column("project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="SET NULL"), nullable=True),
    # Serves both "this owner's conversations" and the newest-first listing.
    sa.Index("ix_conversations_owner_updated", "owner_id", "updated_at"),
    sa.Index("ix_conversations_project_id", "project_id"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "conversation_id",
        sa.String(32),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("reasoning", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Lets interrupt_streaming tell a dead reply from one another process is still writing.
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("client_id", sa.String(CLIENT_ID_MAX), nullable=True),
    sa.Column("usage", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("finish_reason", sa.String(32), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("model", sa.String(100), nullable=True),  # the model that wrote a reply
    sa.Column("speed", sa.JSON(none_as_null=True), nullable=True),  # {ttft, tokens_per_second} of a reply
    sa.Column("tools", sa.JSON(none_as_null=True), nullable=True),  # a reply's tool steps, as `bot_tool` sent them
    # The message this one answers or follows (None: a first message). Messages form a tree; siblings are versions.
    # No foreign key: SQLite would cascade along a chain of parents one level at a time and stop at 1,000.
    sa.Column("parent_id", sa.Integer, nullable=True),
    # Files a user message carries ([{id, name, kind, mime, size, pages?}], revision 0005; message_files links them),
    # and the excerpts a reply was given ([{n, file_id, name, page?, excerpt}]): read with the message, no join.
    sa.Column("attachments", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("sources", sa.JSON(none_as_null=True), nullable=True),
    # One index answers "messages of a conversation in order", including "the newest n".
    sa.Index("ix_messages_conversation_id", "conversation_id", "id"),
    # Children of a message (roots: parent NULL) of one conversation, oldest first: versions and switching.
    sa.Index("ix_messages_conversation_parent", "conversation_id", "parent_id", "id"),
    # The usage charts: the replies of the last 30 days.
    sa.Index("ix_messages_created_at", "created_at"),
    # NULLs are distinct in a unique constraint on both backends, so only real client ids collide.
    sa.UniqueConstraint("conversation_id", "client_id", name="uq_messages_conversation_client"),
    # Ids are reply ids on the wire (resume, stop): SQLite must never hand a deleted id out again.
    sqlite_autoincrement=True,
)

# Files (revision 0005). A blob is one owner's bytes (deduplicated by sha256 once complete) with what processing made
# of them; a file is one upload of it by name; parts hold the bytes in pieces (BLOB on SQLite, bytea on Postgres).
FILE_NAME_MAX = 200
FILE_ERROR_MAX = 300
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=True),  # set when the upload is complete
    sa.Column("length", sa.BigInteger, nullable=False),  # Upload-Length: what the client announced
    sa.Column("received", sa.BigInteger, nullable=False),  # bytes stored so far (the tus offset)
    sa.Column("size", sa.BigInteger, nullable=False),  # bytes counted against the owner's quota
    sa.Column("status", sa.String(16), nullable=False),  # uploading, processing, ready, failed
    sa.Column("kind", sa.String(16), nullable=True),  # image or document, once sniffed
    sa.Column("mime", sa.String(100), nullable=True),
    sa.Column("pages", sa.Integer, nullable=True),
    sa.Column("text_chars", sa.Integer, nullable=True),
    sa.Column("error", sa.String(FILE_ERROR_MAX), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # NULLs are distinct on both backends: only complete uploads collide.
    sa.UniqueConstraint("owner_id", "sha256", name="uq_blobs_owner_sha256"),
    sa.Index("ix_blobs_status_updated", "status", "updated_at"),
)
blob_parts = sa.Table(
    "blob_parts",
    metadata,
    sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(FILE_NAME_MAX), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # First attached to a message: from then on the file lives as long as a message carries it.
    sa.Column("attached_at", UTCDateTime, nullable=True),
    sa.Index("ix_files_owner_created", "owner_id", "created_at"),
)
file_chunks = sa.Table(
    "file_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("page", sa.Integer, nullable=True),
    sa.Column("heading", sa.String(200), nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Index("ix_file_chunks_blob_n", "blob_id", "n"),
)
message_files = sa.Table(
    "message_files",
    metadata,
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("file_id", sa.String(32), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index("ix_message_files_file", "file_id"),
)

PROJECT_NAME_MAX = 100
PRESET_NAME_MAX = 100
SHARE_ID_MAX = 64

# A person's folders of conversations, with instructions every conversation in it sends (team layer).
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(PROJECT_NAME_MAX), nullable=False),
    sa.Column("instructions", sa.Text, nullable=False),
    sa.Column("pinned", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_projects_owner_id", "owner_id"),
)

# The documents a project holds, in order (revision 0008): searched for every question asked in its conversations.
# Both sides are one owner's; deleting the project or the file takes the link with it.
project_files = sa.Table(
    "project_files",
    metadata,
    sa.Column("project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("file_id", sa.String(32), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index("ix_project_files_file", "file_id"),
)

# Read-only links to a snapshot of a conversation's active path (the id is the unguessable token in the URL).
shares = sa.Table(
    "shares",
    metadata,
    sa.Column("id", sa.String(SHARE_ID_MAX), primary_key=True),
    sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("conversation_id", sa.String(32), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("title", sa.String(TITLE_MAX), nullable=False),
    sa.Column("snapshot", sa.JSON, nullable=False),  # [{role, content, created_at, model}] as stored at share time
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index("ix_shares_owner_created", "owner_id", "created_at"),
    sa.Index("ix_shares_conversation_id", "conversation_id"),
)

# Named conversation settings a person keeps to start chats from.
presets = sa.Table(
    "presets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(PRESET_NAME_MAX), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),  # {instructions, temperature, max_tokens, reasoning_effort}
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("owner_id", "name", name="uq_presets_owner_name"),
)

# The hand-written migrations' version table: a database that has it is adopted by Alembic (store.engine).
schema_version = sa.Table(
    "schema_version",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

# The keys of a message dict, in the order of its columns.
MESSAGE_FIELDS = (
    "id", "conversation_id", "role", "content", "reasoning", "status", "created_at", "client_id", "usage",
    "finish_reason", "error_code", "model", "speed", "parent_id", "attachments", "sources", "tools",
)  # fmt: skip


def normalize_url(url: str) -> str:
    """Validate a database URL and pin Postgres to the psycopg 3 driver; ValueError when unusable."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ValueError("DATABASE_URL is not a valid database URL") from err
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
            raise ValueError("DATABASE_URL must name a SQLite file, e.g. sqlite:///instance/chatbot.db")
    elif backend != "postgresql":
        raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
    return parsed.render_as_string(hide_password=False)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Configure every new SQLite connection and turn off sqlite3's own implicit BEGIN."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # busy_timeout first, so switching the journal mode waits for a concurrent opener instead of failing.
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    # WAL is a property of the file: only its first opener switches. The switch needs an exclusive lock and SQLite
    # may refuse it at once (no busy handler) while another connection creates the same new file, so retry briefly.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        for attempt in range(100):
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit still survives the process being killed
    # (kill -9), only an OS crash or power cut may lose the newest ones. FULL would fsync on every commit, and under
    # eventlet or gevent that wait (milliseconds on a VM disk) holds the whole event loop.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Start SQLite transactions ourselves: sqlite3 would skip BEGIN before SELECT and DDL."""
    # A writer takes the write lock up front: a deferred transaction that reads and then writes fails at once
    # with SQLITE_BUSY when another writer got in between, while BEGIN IMMEDIATE waits for busy_timeout.
    write = conn.get_execution_options().get("chatbot_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
