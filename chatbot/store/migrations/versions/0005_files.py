"""Files: blobs (one owner's bytes, deduplicated by sha256), their parts, files (uploads by name), the chunk index
of documents, the files a message carries (links, and a copy on the message for reading), and the sources a reply
was given.

The chunk index uses the same full-text machinery as messages (0003): on SQLite an external-content FTS5 table
kept in sync by triggers, on Postgres a generated tsvector column with a GIN index, with the same word splitting.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from chatbot.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE_CHUNK_SEARCH = [
    "CREATE VIRTUAL TABLE file_chunks_fts USING fts5(text, content='file_chunks', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    """CREATE TRIGGER file_chunks_fts_insert AFTER INSERT ON file_chunks BEGIN
        INSERT INTO file_chunks_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER file_chunks_fts_delete AFTER DELETE ON file_chunks BEGIN
        INSERT INTO file_chunks_fts(file_chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
]
# As in 0003: ASCII punctuation made blank, so Postgres splits words like SQLite's unicode61.
_PUNCTUATION = "!\"#$%&''()*+,-./:;<=>?@[\\]^_`{|}~"
POSTGRES_CHUNK_SEARCH = [
    "ALTER TABLE file_chunks ADD COLUMN search tsvector GENERATED ALWAYS AS "
    f"(to_tsvector('simple', translate(text, '{_PUNCTUATION}', '{' ' * 32}'))) STORED",
    "CREATE INDEX ix_file_chunks_search ON file_chunks USING gin (search)",
]


def upgrade() -> None:
    """Create the file tables and the chunk index."""
    op.create_table(
        "blobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("mime", sa.String(100), nullable=True),
        sa.Column("pages", sa.Integer, nullable=True),
        sa.Column("text_chars", sa.Integer, nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("owner_id", "sha256", name="uq_blobs_owner_sha256"),
    )
    op.create_index("ix_blobs_status_updated", "blobs", ["status", "updated_at"])
    op.create_table(
        "blob_parts",
        sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("attached_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_files_blob_id", "files", ["blob_id"])
    op.create_index("ix_files_owner_created", "files", ["owner_id", "created_at"])
    op.create_table(
        "file_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("page", sa.Integer, nullable=True),
        sa.Column("heading", sa.String(200), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_file_chunks_blob_n", "file_chunks", ["blob_id", "n"])
    op.create_table(
        "message_files",
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("file_id", sa.String(32), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_message_files_file", "message_files", ["file_id"])
    # Plain ALTER TABLE ... ADD COLUMN (no batch): rebuilding messages on SQLite would drop its search triggers.
    op.add_column("messages", sa.Column("attachments", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("messages", sa.Column("sources", sa.JSON(none_as_null=True), nullable=True))
    for statement in SQLITE_CHUNK_SEARCH if op.get_bind().dialect.name == "sqlite" else POSTGRES_CHUNK_SEARCH:
        op.execute(statement)
