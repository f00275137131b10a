"""Messages form a tree, and text can be searched.

Each message gets a parent (`messages.parent_id`) and each conversation an active leaf
(`conversations.active_leaf_id`); the linear conversations so far become single paths: a message's parent is the
message before it, a conversation's active leaf its last message. Neither column is a foreign key: a chain of
parents would make SQLite cascade one level per message (it stops at 1,000), and the two tables would reference
each other; the store keeps both consistent.

Search: on SQLite, FTS5 tables kept in sync by triggers (`messages_fts` reads its text from `messages`;
`conversations_fts` holds titles keyed by conversation id, since a conversation has no stable integer rowid); on
Postgres, a generated `tsvector` column with a GIN index on both tables. Both use the same plain word splitting
(no stemming, case folded, accents kept) and leave a reply that is still streaming out until it is finished.

Note for later revisions: a SQLite batch operation that recreates `messages` or `conversations` drops their
triggers; such a revision must create them again (the statements below).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Each message's parent is the message before it in its conversation; one set-based statement on both backends.
LINEAR_PARENTS = """
UPDATE messages SET parent_id = (
    SELECT max(earlier.id) FROM messages AS earlier
    WHERE earlier.conversation_id = messages.conversation_id AND earlier.id < messages.id
)"""
LAST_LEAVES = """
UPDATE conversations SET active_leaf_id = (
    SELECT max(m.id) FROM messages AS m WHERE m.conversation_id = conversations.id
)"""

SQLITE_TOKENIZER = "unicode61 remove_diacritics 0"
SQLITE_SEARCH = [
    # External content: the index holds only tokens, the text stays in messages (rowid = messages.id).
    f"CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id', "
    f"tokenize='{SQLITE_TOKENIZER}')",
    "INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages WHERE status != 'streaming'",
    # A row is indexed exactly while it is not streaming, so checkpoints of a streaming reply cost nothing here,
    # and every 'delete' below removes exactly the tokens that were added.
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.status != 'streaming' BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.status != 'streaming' BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, status ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            SELECT 'delete', old.id, old.content WHERE old.status != 'streaming';
        INSERT INTO messages_fts(rowid, content) SELECT new.id, new.content WHERE new.status != 'streaming';
    END""",
    # Titles: the conversation id is an indexed column so that the triggers find a row by MATCH, not by a scan.
    f"CREATE VIRTUAL TABLE conversations_fts USING fts5(title, conversation_key, tokenize='{SQLITE_TOKENIZER}')",
    "INSERT INTO conversations_fts(title, conversation_key) SELECT title, id FROM conversations",
    """CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO conversations_fts(title, conversation_key) VALUES (new.title, new.id);
    END""",
    """CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
        DELETE FROM conversations_fts WHERE conversations_fts MATCH 'conversation_key : "' || old.id || '"';
    END""",
    # Every turn writes the title back (usually unchanged): only a real change touches the index.
    """CREATE TRIGGER conversations_fts_update AFTER UPDATE OF title ON conversations WHEN old.title IS NOT new.title
    BEGIN
        UPDATE conversations_fts SET title = new.title
        WHERE conversations_fts MATCH 'conversation_key : "' || old.id || '"';
    END""",
]
# Postgres's parser would read `<b>` as markup, `example.com` as one host name and `3.5` as one number; with ASCII
# punctuation made blank it splits text into runs of letters and digits, like SQLite's unicode61 and the store.
_PUNCTUATION = "!\"#$%&''()*+,-./:;<=>?@[\\]^_`{|}~"


def _pg_words(column: str) -> str:
    """The tsvector of a text column's words (SQL)."""
    return f"to_tsvector('simple', translate({column}, '{_PUNCTUATION}', '{' ' * 32}'))"


POSTGRES_SEARCH = [
    # NULL while streaming: a checkpoint then changes no indexed value (and may stay a HOT update).
    "ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS "
    f"(CASE WHEN status = 'streaming' THEN NULL ELSE {_pg_words('content')} END) STORED",
    "CREATE INDEX ix_messages_search ON messages USING gin (search)",
    f"ALTER TABLE conversations ADD COLUMN search tsvector GENERATED ALWAYS AS ({_pg_words('title')}) STORED",
    "CREATE INDEX ix_conversations_search ON conversations USING gin (search)",
]


def upgrade() -> None:
    """Add the tree columns, make every conversation one path, and build the search indexes."""
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer, nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("active_leaf_id", sa.Integer, nullable=True))
    # Children of a message (and the roots, parent NULL) of one conversation, in age order: versions, switching.
    op.create_index("ix_messages_conversation_parent", "messages", ["conversation_id", "parent_id", "id"])
    op.execute(LINEAR_PARENTS)
    op.execute(LAST_LEAVES)
    for statement in SQLITE_SEARCH if op.get_bind().dialect.name == "sqlite" else POSTGRES_SEARCH:
        op.execute(statement)
