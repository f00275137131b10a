"""Durable owners (sessions), conversations and messages on SQLite or Postgres, always scoped to an owner."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from .schema import (  # noqa: F401  (re-exported: the store's callers and tests use them from here)
    CLIENT_ID_MAX,
    MESSAGE_FIELDS,
    MIGRATIONS,
    SQLITE_BUSY_TIMEOUT_MS,
    TITLE_MAX,
    Migration,
    UTCDateTime,
    _sqlite_on_begin,
    _sqlite_on_connect,
    conversations,
    messages,
    metadata,
    normalize_url,
    owners,
    schema_version,
)

DEFAULT_TITLE = "New chat"
AUTO_TITLE_MAX = 60
ROLES = frozenset({"user", "assistant"})
STATUSES = frozenset({"complete", "streaming", "stopped", "interrupted", "error"})
# Any fixed 64-bit number: every process migrating the same Postgres database takes this one lock.
_MIGRATION_LOCK_KEY = 0x63686174626F74
_ID_RE = re.compile(r"[0-9a-f]{32}")
_INT4_MAX = 2**31 - 1


# Columns in the order of a message dict's keys.
_MESSAGE_COLUMNS = tuple(messages.c[name] for name in MESSAGE_FIELDS)


class NotFound(Exception):
    """The conversation or message does not exist or is not the owner's."""


def _now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    """Format a UTC time the same way on every backend, e.g. 2026-11-25T19:33:10.123456+00:00."""
    return value.isoformat(timespec="microseconds")


def _seconds(value: object, what: str) -> timedelta:
    """Return a non-negative finite number of seconds as a timedelta, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{what} must be a finite number >= 0")
    return timedelta(seconds=value)


def _valid_id(value: object) -> bool:
    """Tell whether value looks like one of our 32-hex ids (anything else cannot exist)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def _valid_message_id(value: object) -> bool:
    """Tell whether value can be a message id (Postgres rejects integers beyond int4 outright)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT4_MAX


def _check_text(value: object, what: str) -> str:
    """Return value if it is storable text on both backends, else ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{what} is not valid Unicode") from err
    return value


def _is_client_id(value: object) -> bool:
    """Tell whether value is a usable client id: 1 to CLIENT_ID_MAX characters of storable text."""
    try:
        return 0 < len(_check_text(value, "client_id")) <= CLIENT_ID_MAX
    except ValueError:
        return False


def _clean_stream_text(value: str) -> str:
    """Make model output storable: Postgres refuses NUL and lone surrogates cannot be encoded."""
    value = value.replace("\x00", "\ufffd")
    return value.encode("utf-8", "replace").decode("utf-8")


def _clean_title(title: object) -> str:
    """Strip and collapse whitespace, cap the length; ValueError when nothing is left."""
    title = " ".join(_check_text(title, "title").split())[:TITLE_MAX].rstrip()
    if not title:
        raise ValueError("title must not be empty")
    return title


def _title_from_content(content: str) -> str | None:
    """Derive a one-line title from a first user message, cut at a word boundary when long."""
    text = " ".join(content.split())
    if len(text) <= AUTO_TITLE_MAX:
        return text or None
    cut = text[: AUTO_TITLE_MAX - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > AUTO_TITLE_MAX // 2 else cut).rstrip() + "…"


def _message(row: sa.Row) -> dict:
    """Turn a messages row into the message dict."""
    message = dict(row._mapping)
    message["created_at"] = _iso(message["created_at"])
    return message


def _conversation(row: sa.Row) -> dict:
    """Turn a conversations row (with its message count) into the conversation dict."""
    conversation = dict(row._mapping)
    conversation["created_at"] = _iso(conversation["created_at"])
    conversation["updated_at"] = _iso(conversation["updated_at"])
    return conversation


_CONVERSATION_COLUMNS = (
    conversations.c.id,
    conversations.c.title,
    conversations.c.created_at,
    conversations.c.updated_at,
    sa.select(sa.func.count())
    .where(messages.c.conversation_id == conversations.c.id)
    .correlate(conversations)
    .scalar_subquery()
    .label("message_count"),
)


class Store:
    """Conversation store shared by all handlers; each call runs in its own short transaction."""

    def __init__(self, url: str, *, echo: bool = False):
        """Create the engine (and a SQLite file's directory); the schema is left to migrate()."""
        url = normalize_url(url)
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(parsed, echo=echo)
            sa.event.listen(self.engine, "connect", _sqlite_on_connect)
            sa.event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = sa.create_engine(parsed, echo=echo, pool_pre_ping=True)

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """Yield a connection inside a transaction that commits on success and rolls back on error."""
        with self.engine.connect() as conn:
            conn.execution_options(chatbot_write=write)
            with conn.begin():
                yield conn

    def migrate(self, *, steps: Sequence[Migration] = MIGRATIONS) -> int:
        """Apply the missing migration steps in one transaction and return the schema version."""
        with self._transaction() as conn:
            if self.dialect == "postgresql":
                # Two processes starting at once: the second waits here, then finds nothing left to do.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            schema_version.create(conn, checkfirst=True)
            current = conn.scalar(sa.select(sa.func.max(schema_version.c.version))) or 0
            if current > len(steps):
                raise RuntimeError(f"database schema is v{current}, newer than this code (v{len(steps)})")
            for version in range(current + 1, len(steps) + 1):
                steps[version - 1](conn)
                conn.execute(sa.insert(schema_version).values(version=version, applied_at=_now()))
        return len(steps)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def ping(self) -> None:
        """Run a trivial query; raises when the database is unreachable (for readiness checks)."""
        with self._transaction(write=False) as conn:
            conn.execute(sa.text("SELECT 1"))

    # owners (sessions)

    def create_owner(self, owner_id: str | None = None) -> str:
        """Create an owner (a fresh uuid4 hex id unless given) and return its id; an existing id is kept."""
        if owner_id is None:
            owner_id = uuid.uuid4().hex
        elif not _valid_id(owner_id):
            raise ValueError("owner id must be 32 lowercase hex characters")
        now = _now()
        try:
            with self._transaction() as conn:
                conn.execute(sa.insert(owners).values(id=owner_id, created_at=now, last_seen_at=now))
        except IntegrityError:
            # Re-creating a known id (e.g. two tabs restoring one session at once) is not an error.
            self.touch_owner(owner_id)
        return owner_id

    def owner_exists(self, owner_id: str) -> bool:
        """Tell whether the owner exists."""
        if not _valid_id(owner_id):
            return False
        with self._transaction(write=False) as conn:
            return conn.scalar(sa.select(owners.c.id).where(owners.c.id == owner_id)) is not None

    def touch_owner(self, owner_id: str) -> None:
        """Record that the owner was just seen; NotFound if the owner does not exist."""
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        with self._transaction() as conn:
            result = conn.execute(
                sa.update(owners).where(owners.c.id == owner_id).values(last_seen_at=_now())
            )
        if result.rowcount == 0:
            raise NotFound(owner_id)

    def get_active_conversation(self, owner_id: str) -> str | None:
        """Return the owner's active conversation id, or None if unset, deleted or the owner is unknown."""
        if not _valid_id(owner_id):
            return None
        query = (
            sa.select(conversations.c.id)
            .join(owners, owners.c.active_conversation_id == conversations.c.id)
            .where(owners.c.id == owner_id, conversations.c.owner_id == owner_id)
        )
        with self._transaction(write=False) as conn:
            return conn.scalar(query)

    def set_active_conversation(self, owner_id: str, conversation_id: str) -> None:
        """Make one of the owner's conversations the active one; NotFound if it is not the owner's."""
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            conn.execute(
                sa.update(owners)
                .where(owners.c.id == owner_id)
                .values(active_conversation_id=conversation_id)
            )

    def delete_idle_owners(self, idle_seconds: float) -> int:
        """Delete owners not seen for longer than idle_seconds, with all their data; return how many."""
        cutoff = _now() - _seconds(idle_seconds, "idle_seconds")
        with self._transaction() as conn:
            return conn.execute(sa.delete(owners).where(owners.c.last_seen_at < cutoff)).rowcount

    # conversations

    def _owned_conversation(
        self, conn: Connection, owner_id: str, conversation_id: str, *, lock: bool = False
    ) -> sa.Row:
        """Return (id, title) of the owner's conversation, optionally row-locked; else NotFound."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        query = sa.select(conversations.c.id, conversations.c.title).where(
            conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(conversation_id)
        return row

    def create_conversation(self, owner_id: str, title: str = DEFAULT_TITLE) -> dict:
        """Create a conversation for the owner; NotFound if the owner does not exist."""
        title = _clean_title(title)
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        now = _now()
        row = {"id": uuid.uuid4().hex, "title": title, "created_at": now, "updated_at": now}
        try:
            with self._transaction() as conn:
                conn.execute(sa.insert(conversations).values(owner_id=owner_id, **row))
        except IntegrityError as err:
            raise NotFound(owner_id) from err
        return {**row, "created_at": _iso(now), "updated_at": _iso(now), "message_count": 0}

    def list_conversations(self, owner_id: str, limit: int = 200) -> list[dict]:
        """Return the owner's conversations, most recently active first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError("limit must be an integer >= 0")
        if not _valid_id(owner_id):
            return []
        query = (
            sa.select(*_CONVERSATION_COLUMNS)
            .where(conversations.c.owner_id == owner_id)
            .order_by(conversations.c.updated_at.desc(), conversations.c.created_at.desc())
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            return [_conversation(row) for row in conn.execute(query)]

    def get_conversation(self, owner_id: str, conversation_id: str) -> dict:
        """Return one of the owner's conversations; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        query = sa.select(*_CONVERSATION_COLUMNS).where(
            conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
        )
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(conversation_id)
        return _conversation(row)

    def rename_conversation(self, owner_id: str, conversation_id: str, title: str) -> dict:
        """Rename one of the owner's conversations (its updated_at, i.e. last activity, is kept)."""
        title = _clean_title(title)
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            conn.execute(
                sa.update(conversations).where(conversations.c.id == conversation_id).values(title=title)
            )
        return self.get_conversation(owner_id, conversation_id)

    def delete_conversation(self, owner_id: str, conversation_id: str) -> None:
        """Delete one of the owner's conversations and its messages; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        with self._transaction() as conn:
            result = conn.execute(
                sa.delete(conversations).where(
                    conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
                )
            )
            if result.rowcount == 0:
                raise NotFound(conversation_id)
            conn.execute(
                sa.update(owners)
                .where(owners.c.id == owner_id, owners.c.active_conversation_id == conversation_id)
                .values(active_conversation_id=None)
            )

    # messages

    def _find_by_client_id(self, conn: Connection, conversation_id: str, client_id: str) -> sa.Row | None:
        """Return the conversation's message carrying client_id, if any."""
        query = sa.select(*_MESSAGE_COLUMNS).where(
            messages.c.conversation_id == conversation_id, messages.c.client_id == client_id
        )
        return conn.execute(query).first()

    def add_message(
        self,
        owner_id: str,
        conversation_id: str,
        role: str,
        content: str,
        *,
        status: str = "complete",
        client_id: str | None = None,
    ) -> tuple[dict, bool]:
        """Store a message and return (message, created); a known client_id returns the stored one instead."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}")
        content = _check_text(content, "content")
        if client_id is not None and not _is_client_id(client_id):
            raise ValueError(f"client_id must be a string of 1 to {CLIENT_ID_MAX} characters")
        now = _now()
        row = {
            "conversation_id": conversation_id, "role": role, "content": content, "reasoning": None,
            "status": status, "created_at": now, "updated_at": now, "client_id": client_id, "usage": None,
            "finish_reason": None, "error_code": None,
        }  # fmt: skip
        try:
            with self._transaction() as conn:
                # The row lock queues a concurrent resend behind this transaction, so it then sees our row.
                conversation = self._owned_conversation(conn, owner_id, conversation_id, lock=True)
                if client_id is not None:
                    existing = self._find_by_client_id(conn, conversation_id, client_id)
                    if existing is not None:
                        return _message(existing), False
                row["id"] = conn.execute(sa.insert(messages).values(**row)).inserted_primary_key[0]
                changes: dict[str, Any] = {"updated_at": now}
                title = _title_from_content(content) if role == "user" else None
                if title and conversation.title == DEFAULT_TITLE:
                    changes["title"] = title
                conn.execute(
                    sa.update(conversations).where(conversations.c.id == conversation_id).values(**changes)
                )
        except IntegrityError as err:
            # A concurrent resend committed the same client_id first, or the conversation was just deleted.
            if client_id is not None:
                with self._transaction(write=False) as conn:
                    self._owned_conversation(conn, owner_id, conversation_id)
                    existing = self._find_by_client_id(conn, conversation_id, client_id)
                if existing is not None:
                    return _message(existing), False
            raise NotFound(conversation_id) from err
        # Built from the inserted values, sparing a read-back.
        return {**{name: row[name] for name in MESSAGE_FIELDS}, "created_at": _iso(now)}, True

    def find_client_message(self, owner_id: str, conversation_id: str, client_id: str) -> dict | None:
        """Return the conversation's message sent with client_id, or None; NotFound if not the owner's."""
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            if not _is_client_id(client_id):
                return None
            row = self._find_by_client_id(conn, conversation_id, client_id)
        return None if row is None else _message(row)

    def reply_after(self, message_id: int) -> dict | None:
        """Return the assistant message right after message_id in its conversation, or None."""
        if not _valid_message_id(message_id):
            return None
        same_conversation = sa.select(messages.c.conversation_id).where(messages.c.id == message_id)
        query = (
            sa.select(*_MESSAGE_COLUMNS)
            .where(
                messages.c.conversation_id == same_conversation.scalar_subquery(), messages.c.id > message_id
            )
            .order_by(messages.c.id)
            .limit(1)
        )
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        return _message(row) if row is not None and row.role == "assistant" else None

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        reasoning: str | None = None,
        status: str | None = None,
        usage: dict | None = None,
        finish_reason: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Checkpoint a reply with one UPDATE by primary key; None leaves a field as is; NotFound if gone."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}")
        if not _valid_message_id(message_id):
            raise NotFound(message_id)
        changes = {
            "content": None if content is None else _clean_stream_text(content),
            "reasoning": None if reasoning is None else _clean_stream_text(reasoning),
            "status": status, "usage": usage, "finish_reason": finish_reason, "error_code": error_code,
        }  # fmt: skip
        changes = {key: value for key, value in changes.items() if value is not None}
        if not changes:
            return
        with self._transaction() as conn:
            result = conn.execute(
                sa.update(messages).where(messages.c.id == message_id).values(updated_at=_now(), **changes)
            )
        if result.rowcount == 0:
            raise NotFound(message_id)

    def _owner_conversation_ids(self, owner_id: str) -> sa.Select:
        """Select the ids of the owner's conversations, to scope statements on messages."""
        return sa.select(conversations.c.id).where(conversations.c.owner_id == owner_id)

    def get_message(self, owner_id: str, message_id: int) -> dict:
        """Return one of the owner's messages; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_message_id(message_id)):
            raise NotFound(message_id)
        query = sa.select(*_MESSAGE_COLUMNS).where(
            messages.c.id == message_id,
            messages.c.conversation_id.in_(self._owner_conversation_ids(owner_id)),
        )
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(message_id)
        return _message(row)

    def list_messages(self, owner_id: str, conversation_id: str, *, limit: int | None = None) -> list[dict]:
        """Return the conversation's messages oldest first; with limit, only the newest `limit` of them."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError("limit must be an integer >= 0")
        query = sa.select(*_MESSAGE_COLUMNS).where(messages.c.conversation_id == conversation_id)
        if limit is not None:
            newest = query.order_by(messages.c.id.desc()).limit(limit).subquery()
            query = sa.select(newest)
            order = newest.c.id
        else:
            order = messages.c.id
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            return [_message(row) for row in conn.execute(query.order_by(order))]

    def last_messages(self, owner_id: str, conversation_id: str, n: int) -> list[dict]:
        """Return the newest n messages of the conversation, oldest first."""
        return self.list_messages(owner_id, conversation_id, limit=n)

    def delete_message(self, owner_id: str, message_id: int) -> None:
        """Delete one of the owner's messages; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_message_id(message_id)):
            raise NotFound(message_id)
        with self._transaction() as conn:
            result = conn.execute(
                sa.delete(messages).where(
                    messages.c.id == message_id,
                    messages.c.conversation_id.in_(self._owner_conversation_ids(owner_id)),
                )
            )
        if result.rowcount == 0:
            raise NotFound(message_id)

    def interrupt_streaming(self, *, stale_after: float | None = None) -> int:
        """Mark replies left "streaming" as "interrupted" and return how many.

        By default every one (a single process at start-up); with stale_after, only those not checkpointed for
        that many seconds, so a process starting next to live ones leaves their replies alone.
        """
        query = sa.update(messages).where(messages.c.status == "streaming")
        if stale_after is not None:
            query = query.where(messages.c.updated_at < _now() - _seconds(stale_after, "stale_after"))
        with self._transaction() as conn:
            return conn.execute(query.values(status="interrupted", updated_at=_now())).rowcount


@contextmanager
def isolated_database(url: str) -> Iterator[str]:
    """Yield a URL to an empty database for one test: on Postgres a fresh schema, dropped afterwards.

    A SQLite URL is yielded unchanged (give it a fresh file, e.g. under tmp_path). Close any Store on the
    yielded URL before the block ends.
    """
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "postgresql":
        yield parsed.render_as_string(hide_password=False)
        return
    schema = f"test_{uuid.uuid4().hex}"
    admin = sa.create_engine(parsed, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        options = f"{parsed.query.get('options', '')} -csearch_path={schema}".strip()
        try:
            yield parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
