"""Tests for chatbot.store on SQLite and, when TEST_DATABASE_URL is set, on Postgres."""

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from chatbot import store as store_module
from chatbot.store import (
    DEFAULT_TITLE,
    NotFound,
    Store,
    conversations,
    isolated_database,
    messages,
    normalize_url,
    owners,
)
from tests.storekit import backdate, count_rows, messages_of, new_owner, owner_exists, turn

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
OTHER_ID = "0" * 32

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL,
                reason="TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """An empty database: a SQLite file in a not-yet-existing directory, or a fresh Postgres schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'instance' / 'chatbot.db'}"
    else:
        with isolated_database(POSTGRES_URL) as url:
            yield url


# URLs and the engine


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/chat", "postgresql+psycopg://u:p@db:5432/chat"),
        ("postgresql://u@db/chat", "postgresql+psycopg://u@db/chat"),
        ("postgresql+psycopg://u@db/chat", "postgresql+psycopg://u@db/chat"),
        ("sqlite:///instance/chatbot.db", "sqlite:///instance/chatbot.db"),
        ("sqlite:////var/lib/chatbot.db", "sqlite:////var/lib/chatbot.db"),
    ],
)
def test_normalize_url_accepts(url, expected):
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["", "not a url", "sqlite://", "sqlite:///:memory:", "mysql://u@db/chat", "redis://127.0.0.1:6379/0"],
)
def test_normalize_url_rejects(url):
    with pytest.raises(ValueError):
        normalize_url(url)


def test_store_sqlite_relative_url_creates_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store("sqlite:///instance/sub/chatbot.db")
    try:
        assert store.migrate() == alembic_head()
        assert (tmp_path / "instance" / "sub" / "chatbot.db").is_file()
    finally:
        store.close()


def test_store_sqlite_pragmas(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'chatbot.db'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == store_module.SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: no fsync per commit
    finally:
        store.close()


def test_store_sqlite_writers_of_one_process_take_turns(tmp_path, monkeypatch):
    """Many threads writing at once (ASYNC_MODE=threading) queue for SQLite's one writer slot in the process, not
    in its sleeping busy handler: with no busy timeout at all, not one transaction is refused as locked."""
    import chatbot.store.schema as schema

    monkeypatch.setattr(schema, "SQLITE_BUSY_TIMEOUT_MS", 0)  # a writer that has to wait fails at once
    store = Store(f"sqlite:///{tmp_path / 'chatbot.db'}")
    try:
        store.migrate()
        sessions = [store.create_session() for _ in range(8)]
        start = threading.Barrier(len(sessions))

        def write(session):
            owner_id, conversation = session
            start.wait()
            for number in range(15):
                store.begin_turn(owner_id, conversation["id"], f"message {number}", client_id=None, context_limit=10)

        with ThreadPoolExecutor(len(sessions)) as pool:
            for done in [pool.submit(write, session) for session in sessions]:
                done.result()  # raises "database is locked" if two writers met in SQLite
        assert all(store.get_conversation(owner, c["id"])["message_count"] == 30 for owner, c in sessions)
    finally:
        store.close()


def test_store_ping(store):
    store.ping()


# migrations (Alembic; the upgrade of a database made before Alembic is in test_migrations.py)


def alembic_head() -> str:
    """The newest revision in chatbot/store/migrations."""
    from alembic.script import ScriptDirectory

    from chatbot.store import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrate_twice_is_noop(store, owner):
    assert store.migrate() == alembic_head()
    assert owner_exists(store, owner)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [alembic_head()]


def test_migrate_upgrade_keeps_rows(make_store):
    old = make_store()
    assert old.migrate("0001") == "0001"
    with old.engine.begin() as conn:
        now = datetime.now(UTC)
        conn.execute(sa.insert(owners).values(id="c" * 32, created_at=now, last_seen_at=now))
    new = make_store()
    assert new.migrate() == alembic_head()
    assert owner_exists(new, "c" * 32)


def test_migrate_refuses_a_newer_database(make_store):
    store = make_store()
    store.migrate()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(RuntimeError, match="newer"):
        make_store().migrate()


def test_migrate_failed_revision_rolls_back(make_store, monkeypatch):
    from alembic.operations import Operations

    store = make_store()
    store.migrate("0001")
    real = Operations.batch_alter_table

    def half_then_fail(self, table, *args, **kwargs):
        """Revision 0002's first change happens, then the revision fails."""
        if table == "messages":
            raise RuntimeError("revision failed")
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(Operations, "batch_alter_table", half_then_fail)
    with pytest.raises(RuntimeError, match="revision failed"):
        store.migrate()
    monkeypatch.undo()
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("conversations")}
    assert "model" not in columns  # 0002's first change was rolled back with the rest
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    assert store.migrate() == alembic_head()


def test_migrate_concurrent_start(make_store):
    stores = [make_store(), make_store()]
    barrier = threading.Barrier(len(stores), timeout=10)

    def start(store):
        """Start up like a process would."""
        barrier.wait()
        return store.migrate()

    with ThreadPoolExecutor(len(stores)) as pool:
        assert list(pool.map(start, stores)) == [alembic_head()] * len(stores)
    with stores[0].engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1


# owners


def test_session_makes_an_owner_with_an_active_conversation(store):
    owner, conversation = store.create_session()
    assert re.fullmatch(r"[0-9a-f]{32}", owner)
    assert owner_exists(store, owner)
    assert not owner_exists(store, OTHER_ID)
    assert store.get_active_conversation(owner) == conversation["id"]
    assert store.list_conversations(owner) == [conversation]


def test_session_with_a_known_id_is_idempotent(store):
    owner_id = "a" * 32
    first = store.create_session(owner_id)
    again = store.create_session(owner_id)  # two tabs restoring one session: the second uses what the first made
    assert first[0] == again[0] == owner_id
    assert again[1]["id"] == first[1]["id"]
    assert count_rows(store, owners) == 1
    assert count_rows(store, conversations) == 1


@pytest.mark.parametrize("owner_id", ["A" * 32, "a" * 31, "g" * 32, "a" * 33, 12, "a" * 31 + "\x00"])
def test_session_rejects_bad_id(store, owner_id):
    with pytest.raises(ValueError):
        store.create_session(owner_id)
    assert count_rows(store, owners) == 0


@pytest.mark.parametrize("owner_id", ["", "nope", None, 5, "\x00" * 32, "a" * 10_000])
def test_owner_unknown_ids(store, owner_id):
    assert not owner_exists(store, owner_id)
    assert store.get_active_conversation(owner_id) is None
    assert store.list_conversations(owner_id) == []
    with pytest.raises(NotFound):
        store.touch_owner(owner_id)
    with pytest.raises(NotFound):
        store.create_conversation(owner_id)


def test_owner_touch_updates_last_seen(store, owner):
    backdate(store, owners, "last_seen_at", owner, 3600)
    store.touch_owner(owner)
    assert store.delete_idle_owners(60) == 0
    assert owner_exists(store, owner)


def test_owner_active_conversation(store, owner, conversation):
    first = store.get_active_conversation(owner)
    assert first not in (None, conversation["id"])
    store.set_active_conversation(owner, conversation["id"])
    assert store.get_active_conversation(owner) == conversation["id"]
    store.delete_conversation(owner, conversation["id"])
    assert store.get_active_conversation(owner) is None


def test_delete_idle_owners_cascades(store):
    (idle, idle_conversation), (active, active_conversation) = store.create_session(), store.create_session()
    turn(store, idle, idle_conversation["id"], "hello", "hi")
    turn(store, active, active_conversation["id"], "hello", "hi")
    backdate(store, owners, "last_seen_at", idle, 3600)

    assert store.delete_idle_owners(60) == 1
    assert not owner_exists(store, idle)
    assert owner_exists(store, active)
    assert count_rows(store, conversations) == 1
    assert count_rows(store, messages) == 2
    assert store.delete_idle_owners(60) == 0


@pytest.mark.parametrize("idle_seconds", [-1, float("nan"), float("inf"), "60", None, True])
def test_delete_idle_owners_rejects_bad_seconds(store, idle_seconds):
    with pytest.raises(ValueError):
        store.delete_idle_owners(idle_seconds)


# conversations


def test_conversation_create_get_list(store, owner):
    created = store.create_conversation(owner, "  My   chat ")
    assert set(created) == {"id", "title", "created_at", "updated_at", "model", "message_count", "instructions",
                            "temperature", "max_tokens", "reasoning_effort", "project_id", "tools"}
    assert created["title"] == "My chat"
    assert created["message_count"] == 0
    assert store.get_conversation(owner, created["id"]) == created
    listed = store.list_conversations(owner)
    assert len(listed) == 2 and listed[0] == created  # the newest first, then the first visit's


def test_conversation_list_newest_updated_first(store, owner):
    first = store.create_conversation(owner, "first")
    second = store.create_conversation(owner, "second")
    assert [c["title"] for c in store.list_conversations(owner)] == ["second", "first", DEFAULT_TITLE]
    turn(store, owner, first["id"], "bump", "bumped")
    listed = store.list_conversations(owner)
    assert [(c["id"], c["message_count"]) for c in listed[:2]] == [(first["id"], 2), (second["id"], 0)]
    assert [c["id"] for c in store.list_conversations(owner, limit=1)] == [first["id"]]


def test_conversation_rename(store, owner, conversation):
    renamed = store.rename_conversation(owner, conversation["id"], "\tNew\n name ")
    assert renamed["title"] == "New name"
    assert store.get_conversation(owner, conversation["id"])["title"] == "New name"


@pytest.mark.parametrize("title", ["", "   ", "\n\t", None, 7, "a\x00b", "\ud800"])
def test_conversation_rejects_bad_title(store, owner, conversation, title):
    with pytest.raises(ValueError):
        store.create_conversation(owner, title)
    with pytest.raises(ValueError):
        store.rename_conversation(owner, conversation["id"], title)


def test_conversation_title_capped(store, owner):
    assert store.create_conversation(owner, "x" * 500)["title"] == "x" * store_module.TITLE_MAX


def test_conversation_delete_cascades(store, owner, conversation):
    message, _ = turn(store, owner, conversation["id"], "hello", "hi")
    other = store.create_conversation(owner)
    turn(store, owner, other["id"], "stays", "here")
    store.delete_conversation(owner, conversation["id"])
    with pytest.raises(NotFound):
        store.get_conversation(owner, conversation["id"])
    with pytest.raises(NotFound):
        store.get_message(owner, message["id"])
    assert count_rows(store, messages) == 2


# owner scoping: another owner's ids behave exactly like ids that do not exist

SCOPED_CALLS = {
    "get_conversation": lambda s, o, c, m: s.get_conversation(o, c),
    "rename_conversation": lambda s, o, c, m: s.rename_conversation(o, c, "stolen"),
    "delete_conversation": lambda s, o, c, m: s.delete_conversation(o, c),
    "set_active_conversation": lambda s, o, c, m: s.set_active_conversation(o, c),
    "begin_turn": lambda s, o, c, m: s.begin_turn(o, c, "injected", client_id=None, context_limit=5),
    "begin_turn_client_id": lambda s, o, c, m: s.begin_turn(o, c, "injected", client_id="c1", context_limit=5),
    "begin_regenerate": lambda s, o, c, m: s.begin_regenerate(o, c, context_limit=5),
    "message_page": lambda s, o, c, m: s.message_page(o, c, None, 5),
    "message_page_before": lambda s, o, c, m: s.message_page(o, c, m, 5),
    "active_path": lambda s, o, c, m: s.active_path(o, c),
    "tree": lambda s, o, c, m: s.tree(o, c),
    "find_client_message": lambda s, o, c, m: s.find_client_message(o, c, "c1"),
    "get_message": lambda s, o, c, m: s.get_message(o, m),
    "switch_branch": lambda s, o, c, m: s.switch_branch(o, m, 5),
}


@pytest.mark.parametrize("call", SCOPED_CALLS.values(), ids=SCOPED_CALLS.keys())
def test_store_other_owner_not_found(store, owner, conversation, call):
    message, reply = turn(store, owner, conversation["id"], "private", "secret", client_id="c1")
    before = store.get_conversation(owner, conversation["id"])
    intruder = new_owner(store)
    with pytest.raises(NotFound):
        call(store, intruder, conversation["id"], message["id"])
    assert store.get_conversation(owner, conversation["id"]) == before
    assert messages_of(store, owner, conversation["id"]) == [message, reply]
    assert store.get_active_conversation(intruder) != conversation["id"]
    assert conversation["id"] not in [c["id"] for c in store.list_conversations(intruder)]


@pytest.mark.parametrize("conversation_id", [OTHER_ID, "", "x", "A" * 32, "\x00" * 32, "a" * 5000, None, 3])
@pytest.mark.parametrize("call", SCOPED_CALLS.values(), ids=SCOPED_CALLS.keys())
def test_store_unknown_conversation_not_found(store, owner, call, conversation_id):
    with pytest.raises(NotFound):
        call(store, owner, conversation_id, 1)


@pytest.mark.parametrize("message_id", [10_000, 0, -1, 2**31, 2**63, "1", 1.0, True])  # None: message_page's newest
@pytest.mark.parametrize("call", [
    lambda s, o, c, m: s.get_message(o, m),
    lambda s, o, c, m: s.message_page(o, c, m, 5),
    lambda s, o, c, m: s.switch_branch(o, m, 5),
], ids=["get_message", "message_page", "switch_branch"])
def test_store_unknown_message_not_found(store, owner, conversation, call, message_id):
    turn(store, owner, conversation["id"], "hello", "hi")
    with pytest.raises(NotFound):
        call(store, owner, conversation["id"], message_id)
    for call in (lambda: store.get_message(owner, None), lambda: store.switch_branch(owner, None, 5)):
        with pytest.raises(NotFound):
            call()


def test_tree_of_a_long_conversation_is_a_few_queries(store, owner, conversation, count_statements):
    now = datetime.now(UTC)
    rows = [
        {"conversation_id": conversation["id"], "role": ("user", "assistant")[i % 2], "content": f"m{i}",
         "status": "complete", "created_at": now, "updated_at": now}
        for i in range(1000)
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(sa.insert(messages), rows)
    count_statements.clear()
    _, listed = store.tree(owner, conversation["id"])
    assert [m["content"] for m in listed] == [f"m{i}" for i in range(1000)]
    # An ownership check by primary key, the active leaf, one indexed range query: however long the conversation.
    assert count_statements == {"SELECT": 3}


def test_message_iso_times(store, owner, conversation):
    message, _ = turn(store, owner, conversation["id"], "hello", "hi")
    stored = store.get_conversation(owner, conversation["id"])
    times = [message["created_at"], store.get_message(owner, message["id"])["created_at"]]
    times += [conversation["created_at"], stored["created_at"], stored["updated_at"]]
    for value in times:
        assert ISO_UTC.fullmatch(value), value
        assert abs(datetime.fromisoformat(value) - datetime.now(UTC)) < timedelta(hours=1)
    assert message["created_at"] == times[1]


def test_interrupt_streaming(store, owner, conversation):
    _, streaming = turn(store, owner, conversation["id"], "one", None)
    store.checkpoint_many([(streaming["id"], "part", None)])
    _, done = turn(store, owner, conversation["id"], "two", "all")
    assert store.interrupt_streaming() == 1
    assert store.get_message(owner, streaming["id"])["status"] == "interrupted"
    assert store.get_message(owner, streaming["id"])["content"] == "part"
    assert store.get_message(owner, done["id"])["status"] == "complete"
    assert store.interrupt_streaming() == 0


def test_interrupt_streaming_stale_only(store, owner, conversation):
    _, live = turn(store, owner, conversation["id"], "one", None)
    _, dead = turn(store, owner, conversation["id"], "two", None)
    backdate(store, messages, "updated_at", dead["id"], 600)
    assert store.interrupt_streaming(stale_after=60) == 1
    assert store.get_message(owner, live["id"])["status"] == "streaming"
    assert store.get_message(owner, dead["id"])["status"] == "interrupted"


@pytest.mark.parametrize("stale_after", [-1, float("nan"), "60", True])
def test_interrupt_streaming_rejects_bad_seconds(store, stale_after):
    with pytest.raises(ValueError):
        store.interrupt_streaming(stale_after=stale_after)


# the helper for other test modules


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="TEST_DATABASE_URL is not set")
def test_isolated_database_drops_schema():
    with isolated_database(POSTGRES_URL) as url:
        store = Store(url)
        store.migrate()
        with store.engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        store.close()
        assert schema.startswith("test_")
    admin = sa.create_engine(normalize_url(POSTGRES_URL))
    try:
        with admin.connect() as conn:
            found = conn.scalar(
                sa.text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :name"),
                {"name": schema},
            )
    finally:
        admin.dispose()
    assert found == 0


def test_message_find_client_message(store, owner, conversation):
    message, _ = turn(store, owner, conversation["id"], "hello", "hi", client_id="c-1")
    assert store.find_client_message(owner, conversation["id"], "c-1") == message
    assert store.find_client_message(owner, conversation["id"], "c-2") is None
    for bad in ("x" * 500, "", "a\x00b", "\ud800", None):
        assert store.find_client_message(owner, conversation["id"], bad) is None
    with pytest.raises(NotFound):
        store.find_client_message(new_owner(store), conversation["id"], "c-1")


def test_message_reply_after(store, owner, conversation):
    first = store.begin_turn(owner, conversation["id"], "question", client_id=None, context_limit=5)
    assert store.reply_after(first.message["id"]) == first.reply
    regenerated = store.begin_regenerate(owner, conversation["id"], context_limit=5)
    assert store.reply_after(first.message["id"]) == first.reply  # the first reply, not the newest version
    follow_up = store.begin_turn(owner, conversation["id"], "more", client_id=None, context_limit=5)
    assert follow_up.message["parent_id"] == regenerated.reply["id"]
    assert store.reply_after(regenerated.reply["id"]) is None  # a user message comes after a reply
    assert store.reply_after(follow_up.message["id"]) == follow_up.reply
    assert store.reply_after(10_000) is None
