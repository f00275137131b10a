"""Alembic adopts a database made by the hand-written migrations (before Alembic) and upgrades it keeping every row;
the linear conversations become single paths of the message tree, and their text is searchable.

tests/data/legacy_v1.*.sql were dumped (sqlite3 `.dump`, `pg_dump --inserts`) from databases that the last release
before Alembic created and filled through its own Store: two sessions, three conversations, twelve messages
(client ids, reasoning, usage, an interrupted reply, non-ASCII text).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatbot.store import Store, UnsupportedDatabase, conversations, messages, owners
from tests.storekit import messages_of

DATA = Path(__file__).parent / "data"
OWNER, OTHER = "a" * 32, "b" * 32


def load_legacy(url: str) -> None:
    """Create the pre-Alembic database at `url` from its dump."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript((DATA / "legacy_v1.sqlite.sql").read_text())
        return
    engine = sa.create_engine(url)
    schema = engine.connect().exec_driver_sql("SELECT current_schema()").scalar()
    script = (DATA / "legacy_v1.postgres.sql").read_text().replace("{schema}", schema)
    with engine.begin() as conn:
        conn.exec_driver_sql(script)
        conn.exec_driver_sql(f'SET search_path TO "{schema}"')
    engine.dispose()


def rows(store: Store, table: sa.Table) -> list[dict]:
    """Every row of a table, ordered by its first column."""
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]


def test_upgrade_of_a_pre_alembic_database_keeps_every_row(database_url):
    load_legacy(database_url)
    store = Store(database_url)
    try:
        with store.engine.connect() as conn:
            legacy = {"owners": conn.exec_driver_sql("SELECT count(*) FROM owners").scalar(),
                      "conversations": conn.exec_driver_sql("SELECT count(*) FROM conversations").scalar(),
                      "messages": conn.exec_driver_sql("SELECT * FROM messages ORDER BY id").all()}
        assert store.migrate() == store.migrate()  # adopted once, then a no-op
        assert len(rows(store, owners)) == legacy["owners"]
        assert len(rows(store, conversations)) == legacy["conversations"]
        upgraded = rows(store, messages)
        assert len(upgraded) == len(legacy["messages"]) == 12
        assert [m["content"] for m in upgraded] == [m.content for m in legacy["messages"]]
        assert all(m["model"] is None for m in upgraded)
        assert not sa.inspect(store.engine).has_table("schema_version")
        # The store reads it as its own: history, the interrupted reply, client ids, usage and reasoning.
        active = store.get_active_conversation(OWNER)
        history = messages_of(store, OWNER, active)
        assert len(history) == 6 and history[0]["content"].endswith("— ünïcode ✓")
        assert history[1]["reasoning"] == "thought" and history[1]["usage"] == {"completion_tokens": 1}
        assert store.find_client_message(OWNER, active, history[0]["client_id"])["id"] == history[0]["id"]
        statuses = {m["status"] for c in store.list_conversations(OWNER) for m in messages_of(store, OWNER, c["id"])}
        assert "interrupted" in statuses
        assert [c["title"] for c in store.list_conversations(OTHER)] == ["Someone else's"]
        # The tree: each message's parent is the one before it in its conversation, the last one is the active leaf.
        by_conversation = defaultdict(list)
        for message in upgraded:
            by_conversation[message["conversation_id"]].append(message)
        for chain in by_conversation.values():
            assert [m["parent_id"] for m in chain] == [None] + [m["id"] for m in chain[:-1]]
        assert {c["id"]: c["active_leaf_id"] for c in rows(store, conversations)} == {
            conversation_id: chain[-1]["id"] for conversation_id, chain in by_conversation.items()}
        assert store.active_path(OWNER, active) == history
        # The search indexes hold the old text, each owner only its own.
        own = {m["id"] for c in store.list_conversations(OWNER) for m in messages_of(store, OWNER, c["id"])
               if m["content"].endswith("ünïcode ✓")}
        assert {r["message_id"] for r in store.search(OWNER, "ünïcode", 50) if r["message_id"]} == own
        assert not own & {r["message_id"] for r in store.search(OTHER, "ünïcode", 50)}
        assert [r["title"] for r in store.search(OTHER, "someone")] == ["Someone else's"]
        # And it keeps working: a new turn on the old data.
        turn = store.begin_turn(OWNER, active, "after the upgrade", client_id=None, context_limit=200)
        assert turn.reply["id"] > max(m["id"] for m in upgraded)
        assert turn.message["parent_id"] == history[-1]["id"] and turn.history[:-1] == history
    finally:
        store.close()


def test_upgrade_refuses_a_legacy_version_it_does_not_know(database_url):
    load_legacy(database_url)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO schema_version (version, applied_at) VALUES (7, CURRENT_TIMESTAMP)")
    engine.dispose()
    store = Store(database_url)
    try:
        with pytest.raises(RuntimeError, match="newer"):
            store.migrate()
    finally:
        store.close()


def test_team_revision_keeps_conversations_their_messages_and_search(database_url):
    """0006 (the team layer) adds settings and a project to every conversation in place: rows, the message tree and
    the search index stay, and old conversations read back with default settings."""
    store = Store(database_url)
    try:
        store.migrate("0004")
        owner = store.create_session()[0]
        with store.engine.begin() as conn:  # the 0004 columns only: the current schema's insert would name new ones
            conn.exec_driver_sql(
                "INSERT INTO conversations (id, owner_id, title, created_at, updated_at) "
                f"VALUES ('{'c' * 32}', '{owner}', 'Before teams', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
            conn.exec_driver_sql(
                "INSERT INTO messages (conversation_id, role, content, status, created_at, updated_at) "
                f"VALUES ('{'c' * 32}', 'user', 'zebra crossing', 'complete', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
        assert store.migrate() == store.migrate()
        conversation = store.get_conversation(owner, "c" * 32)
        assert conversation["message_count"] == 1 and conversation["project_id"] is None
        assert conversation["instructions"] is None and conversation["temperature"] is None
        assert [r["title"] for r in store.search(owner, "zebra")] == ["Before teams"]
        project = store.create_project(owner, "After")
        store.update_conversation_settings(owner, "c" * 32, {"project_id": project["id"], "temperature": 0.7})
        store.delete_project(owner, project["id"])
        assert store.get_conversation(owner, "c" * 32)["project_id"] is None
        store.delete_conversation(owner, "c" * 32)  # foreign keys and search triggers still in place
        assert store.search(owner, "zebra") == []
    finally:
        store.close()


def test_migrate_refuses_a_postgres_database_that_is_not_utf8_and_creates_nothing(sql_ascii_database_url):
    store = Store(sql_ascii_database_url)
    try:
        with pytest.raises(UnsupportedDatabase, match="SQL_ASCII encoding; ChatbotWS needs UTF8"):
            store.migrate()
        assert sa.inspect(store.engine).get_table_names() == []
    finally:
        store.close()


def test_project_files_revision_adds_links_that_go_with_project_and_file(database_url):
    """0008 adds project_files to a 0007 database with its projects and files: links are made, listed and deleted
    with their project or file (the foreign keys cascade)."""
    from chatbot.store.schema import project_files
    from tests.test_store_files import upload

    store = Store(database_url)
    try:
        store.migrate("0007")
        owner = store.create_session()[0]
        with store.engine.begin() as conn:  # the 0007 tables only: the store's reads would name project_files
            conn.exec_driver_sql(
                "INSERT INTO projects (id, owner_id, name, instructions, pinned, created_at, updated_at) "
                f"VALUES ('{'e' * 32}', '{owner}', 'Before files', '', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
        assert store.migrate() == store.migrate() == "0008"
        project = store.get_project(owner, "e" * 32)
        assert project["files"] == []
        first, second = upload(store, owner, b"first"), upload(store, owner, b"second")
        held = store.update_project(owner, project["id"], files=[first["id"], second["id"]])
        assert [f["id"] for f in held["files"]] == [first["id"], second["id"]]
        with store.engine.begin() as conn:  # past the store: the keys themselves cascade
            conn.execute(sa.delete(sa.table("files", sa.column("id"))).where(sa.column("id") == first["id"]))
        assert [f["id"] for f in store.get_project(owner, project["id"])["files"]] == [second["id"]]
        with store.engine.begin() as conn:
            conn.execute(sa.delete(sa.table("projects", sa.column("id"))).where(sa.column("id") == project["id"]))
            assert conn.scalar(sa.select(sa.func.count()).select_from(project_files)) == 0
    finally:
        store.close()
