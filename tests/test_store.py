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
    MESSAGE_FIELDS,
    NotFound,
    Store,
    conversations,
    isolated_database,
    messages,
    normalize_url,
    owners,
)

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


@pytest.fixture
def make_store(database_url):
    """Open more Stores on the same database (closed at the end), unmigrated."""
    opened = []

    def make():
        """Open a Store on the test database."""
        opened.append(Store(database_url))
        return opened[-1]

    yield make
    for each in opened:
        each.close()


@pytest.fixture
def store(make_store):
    """A migrated Store on an empty database."""
    store = make_store()
    store.migrate()
    return store


@pytest.fixture
def owner(store):
    """An owner id."""
    return store.create_owner()


@pytest.fixture
def conversation(store, owner):
    """One of the owner's conversations."""
    return store.create_conversation(owner)


def count_rows(store, table):
    """Count the rows of a table, bypassing the Store's scoping."""
    with store.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def backdate(store, table, column, row_id, seconds):
    """Move a timestamp into the past instead of waiting."""
    with store.engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=seconds)
        conn.execute(sa.update(table).where(table.c.id == row_id).values({column: past}))


@pytest.fixture
def count_statements(store):
    """Count the SQL statements (other than transaction control) the store sends, by kind."""
    counts = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        """Tally one statement by its first word."""
        kind = statement.split(None, 1)[0].upper()
        if kind not in ("BEGIN", "COMMIT", "ROLLBACK"):
            counts[kind] = counts.get(kind, 0) + 1

    sa.event.listen(store.engine, "before_cursor_execute", before)
    yield counts
    sa.event.remove(store.engine, "before_cursor_execute", before)


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
    assert store.owner_exists(owner)
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
    assert new.owner_exists("c" * 32)


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


def test_owner_create_and_exists(store):
    owner = store.create_owner()
    assert re.fullmatch(r"[0-9a-f]{32}", owner)
    assert store.owner_exists(owner)
    assert not store.owner_exists(OTHER_ID)


def test_owner_create_with_id_is_idempotent(store):
    owner_id = "a" * 32
    assert store.create_owner(owner_id) == owner_id
    assert store.create_owner(owner_id) == owner_id
    assert count_rows(store, owners) == 1


@pytest.mark.parametrize("owner_id", ["", "A" * 32, "a" * 31, "g" * 32, "a" * 33, 12, "a" * 31 + "\x00"])
def test_owner_create_rejects_bad_id(store, owner_id):
    with pytest.raises(ValueError):
        store.create_owner(owner_id)


@pytest.mark.parametrize("owner_id", ["", "nope", None, 5, "\x00" * 32, "a" * 10_000])
def test_owner_unknown_ids(store, owner_id):
    assert not store.owner_exists(owner_id)
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
    assert store.owner_exists(owner)


def test_owner_active_conversation(store, owner, conversation):
    assert store.get_active_conversation(owner) is None
    store.set_active_conversation(owner, conversation["id"])
    assert store.get_active_conversation(owner) == conversation["id"]
    store.delete_conversation(owner, conversation["id"])
    assert store.get_active_conversation(owner) is None


def test_delete_idle_owners_cascades(store):
    idle, active = store.create_owner(), store.create_owner()
    for owner in (idle, active):
        conversation = store.create_conversation(owner)
        store.add_message(owner, conversation["id"], "user", "hello")
    backdate(store, owners, "last_seen_at", idle, 3600)

    assert store.delete_idle_owners(60) == 1
    assert not store.owner_exists(idle)
    assert store.owner_exists(active)
    assert count_rows(store, conversations) == 1
    assert count_rows(store, messages) == 1
    assert store.delete_idle_owners(60) == 0


@pytest.mark.parametrize("idle_seconds", [-1, float("nan"), float("inf"), "60", None, True])
def test_delete_idle_owners_rejects_bad_seconds(store, idle_seconds):
    with pytest.raises(ValueError):
        store.delete_idle_owners(idle_seconds)


# conversations


def test_conversation_create_get_list(store, owner):
    created = store.create_conversation(owner, "  My   chat ")
    assert set(created) == {"id", "title", "created_at", "updated_at", "model", "message_count", "tools"}
    assert created["title"] == "My chat"
    assert created["message_count"] == 0
    assert store.get_conversation(owner, created["id"]) == created
    assert store.list_conversations(owner) == [created]


def test_conversation_list_newest_updated_first(store, owner):
    first = store.create_conversation(owner, "first")
    second = store.create_conversation(owner, "second")
    assert [c["title"] for c in store.list_conversations(owner)] == ["second", "first"]
    store.add_message(owner, first["id"], "user", "bump")
    listed = store.list_conversations(owner)
    assert [(c["id"], c["message_count"]) for c in listed] == [(first["id"], 1), (second["id"], 0)]
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
    message, _ = store.add_message(owner, conversation["id"], "user", "hello")
    other = store.create_conversation(owner)
    store.add_message(owner, other["id"], "user", "stays")
    store.delete_conversation(owner, conversation["id"])
    with pytest.raises(NotFound):
        store.get_conversation(owner, conversation["id"])
    with pytest.raises(NotFound):
        store.get_message(owner, message["id"])
    assert count_rows(store, messages) == 1


# owner scoping: another owner's ids behave exactly like ids that do not exist

SCOPED_CALLS = {
    "get_conversation": lambda s, o, c, m: s.get_conversation(o, c),
    "rename_conversation": lambda s, o, c, m: s.rename_conversation(o, c, "stolen"),
    "delete_conversation": lambda s, o, c, m: s.delete_conversation(o, c),
    "set_active_conversation": lambda s, o, c, m: s.set_active_conversation(o, c),
    "add_message": lambda s, o, c, m: s.add_message(o, c, "user", "injected"),
    "add_message_client_id": lambda s, o, c, m: s.add_message(o, c, "user", "injected", client_id="c1"),
    "list_messages": lambda s, o, c, m: s.list_messages(o, c),
    "last_messages": lambda s, o, c, m: s.last_messages(o, c, 5),
    "get_message": lambda s, o, c, m: s.get_message(o, m),
    "delete_message": lambda s, o, c, m: s.delete_message(o, m),
}


@pytest.mark.parametrize("call", SCOPED_CALLS.values(), ids=SCOPED_CALLS.keys())
def test_store_other_owner_not_found(store, owner, conversation, call):
    message, _ = store.add_message(owner, conversation["id"], "user", "private", client_id="c1")
    before = store.get_conversation(owner, conversation["id"])
    intruder = store.create_owner()
    with pytest.raises(NotFound):
        call(store, intruder, conversation["id"], message["id"])
    assert store.get_conversation(owner, conversation["id"]) == before
    assert store.list_messages(owner, conversation["id"]) == [message]
    assert store.get_active_conversation(intruder) is None
    assert store.list_conversations(intruder) == []


@pytest.mark.parametrize("conversation_id", [OTHER_ID, "", "x", "A" * 32, "\x00" * 32, "a" * 5000, None, 3])
@pytest.mark.parametrize("call", SCOPED_CALLS.values(), ids=SCOPED_CALLS.keys())
def test_store_unknown_conversation_not_found(store, owner, call, conversation_id):
    with pytest.raises(NotFound):
        call(store, owner, conversation_id, 1)


@pytest.mark.parametrize("message_id", [10_000, 0, -1, 2**31, 2**63, "1", None, 1.0, True])
@pytest.mark.parametrize("method", ["get_message", "delete_message"])
def test_store_unknown_message_not_found(store, owner, conversation, method, message_id):
    store.add_message(owner, conversation["id"], "user", "hello")
    with pytest.raises(NotFound):
        getattr(store, method)(owner, message_id)


# messages


def test_message_add_and_get(store, owner, conversation):
    message, created = store.add_message(owner, conversation["id"], "user", "hello")
    assert created
    assert tuple(message) == MESSAGE_FIELDS
    assert message["role"] == "user"
    assert message["status"] == "complete"
    assert message["conversation_id"] == conversation["id"]
    assert store.get_message(owner, message["id"]) == message
    assert store.list_messages(owner, conversation["id"]) == [message]


def test_message_add_bumps_updated_at(store, owner, conversation):
    backdate(store, conversations, "updated_at", conversation["id"], 3600)
    stale = store.get_conversation(owner, conversation["id"])["updated_at"]
    store.add_message(owner, conversation["id"], "assistant", "hi")
    assert store.get_conversation(owner, conversation["id"])["updated_at"] > stale


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": "system"}, "role"),
        ({"role": ""}, "role"),
        ({"status": "done"}, "status"),
        ({"content": None}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "\udc80"}, "content"),
        ({"client_id": ""}, "client_id"),
        ({"client_id": "x" * 101}, "client_id"),
        ({"client_id": 5}, "client_id"),
        ({"client_id": "a\x00b"}, "client_id"),
    ],
)
def test_message_add_rejects_bad_input(store, owner, conversation, kwargs, field):
    args = {"role": "user", "content": "hello", **kwargs}
    with pytest.raises(ValueError, match=field):
        store.add_message(owner, conversation["id"], args.pop("role"), args.pop("content"), **args)
    assert count_rows(store, messages) == 0


def test_message_client_id_idempotent(store, owner, conversation):
    first, created = store.add_message(owner, conversation["id"], "user", "hello", client_id="c-1")
    again, created_again = store.add_message(owner, conversation["id"], "user", "hello", client_id="c-1")
    assert (created, created_again) == (True, False)
    assert again == first
    other = store.create_conversation(owner)
    _, created_elsewhere = store.add_message(owner, other["id"], "user", "hello", client_id="c-1")
    assert created_elsewhere
    assert count_rows(store, messages) == 2


def test_message_client_id_concurrent_resend(store, owner, conversation):
    def send(client_id, barrier):
        """Resend the same message at the same moment as the other thread."""
        barrier.wait()
        return store.add_message(owner, conversation["id"], "user", "hello", client_id=client_id)

    with ThreadPoolExecutor(2) as pool:
        for attempt in range(5):
            barrier = threading.Barrier(2, timeout=10)
            futures = [pool.submit(send, f"resend-{attempt}", barrier) for _ in range(2)]
            results = [future.result(timeout=30) for future in futures]
            assert sorted(created for _, created in results) == [False, True]
            assert results[0][0] == results[1][0]
    assert count_rows(store, messages) == 5


def test_message_client_id_unique_violation_rereads(store, owner, conversation, monkeypatch):
    stored, _ = store.add_message(owner, conversation["id"], "user", "hello", client_id="c-1")
    real_find = Store._find_by_client_id
    calls = []

    def miss_once(self, conn, conversation_id, client_id):
        """Miss the first lookup, as if the other resend had not committed yet."""
        calls.append(client_id)
        return None if len(calls) == 1 else real_find(self, conn, conversation_id, client_id)

    monkeypatch.setattr(Store, "_find_by_client_id", miss_once)
    assert store.add_message(owner, conversation["id"], "user", "hello", client_id="c-1") == (stored, False)
    assert count_rows(store, messages) == 1


def test_message_title_from_first_user_message(store, owner, conversation):
    store.add_message(owner, conversation["id"], "assistant", "Welcome!")
    assert store.get_conversation(owner, conversation["id"])["title"] == DEFAULT_TITLE
    store.add_message(owner, conversation["id"], "user", "  How do\n\nI bake   bread?  ")
    assert store.get_conversation(owner, conversation["id"])["title"] == "How do I bake bread?"
    store.add_message(owner, conversation["id"], "user", "Another question")
    assert store.get_conversation(owner, conversation["id"])["title"] == "How do I bake bread?"


def test_message_title_from_long_message(store, owner, conversation):
    store.add_message(owner, conversation["id"], "user", "word " * 100)
    title = store.get_conversation(owner, conversation["id"])["title"]
    assert title.endswith("…")
    assert len(title) <= store_module.AUTO_TITLE_MAX
    assert "\n" not in title


@pytest.mark.parametrize("content", ["", "   ", "\n"])
def test_message_title_kept_for_blank_message(store, owner, conversation, content):
    store.add_message(owner, conversation["id"], "user", content)
    assert store.get_conversation(owner, conversation["id"])["title"] == DEFAULT_TITLE


def test_message_title_not_overwritten(store, owner):
    conversation = store.create_conversation(owner, "Named")
    store.add_message(owner, conversation["id"], "user", "hello")
    assert store.get_conversation(owner, conversation["id"])["title"] == "Named"


def test_message_update_checkpoint(store, owner, conversation, count_statements):
    reply, _ = store.add_message(owner, conversation["id"], "assistant", "", status="streaming")
    count_statements.clear()
    store.update_message(reply["id"], content="Hel\x00lo", reasoning="think \ud800")
    assert count_statements == {"UPDATE": 1}
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    store.update_message(reply["id"], status="complete", usage=usage, finish_reason="stop")
    stored = store.get_message(owner, reply["id"])
    assert stored["content"] == "Hel\ufffdlo"
    assert stored["reasoning"] == "think ?"
    assert (stored["status"], stored["usage"], stored["finish_reason"]) == ("complete", usage, "stop")
    store.update_message(reply["id"], status="error", error_code="upstream_unavailable")
    assert store.get_message(owner, reply["id"])["error_code"] == "upstream_unavailable"


def test_message_update_nothing_is_noop(store, owner, conversation, count_statements):
    reply, _ = store.add_message(owner, conversation["id"], "assistant", "x")
    count_statements.clear()
    store.update_message(reply["id"])
    assert count_statements == {}


@pytest.mark.parametrize("message_id", [10_000, 0, 2**31, "1", None])
def test_message_update_unknown_not_found(store, message_id):
    with pytest.raises(NotFound):
        store.update_message(message_id, content="x")


def test_message_update_rejects_bad_status(store, owner, conversation):
    reply, _ = store.add_message(owner, conversation["id"], "assistant", "x")
    with pytest.raises(ValueError):
        store.update_message(reply["id"], status="finished")


def test_message_delete(store, owner, conversation):
    kept, _ = store.add_message(owner, conversation["id"], "user", "question")
    reply, _ = store.add_message(owner, conversation["id"], "assistant", "answer")
    store.delete_message(owner, reply["id"])
    assert store.list_messages(owner, conversation["id"]) == [kept]
    with pytest.raises(NotFound):
        store.delete_message(owner, reply["id"])


def test_message_list_limit(store, owner, conversation):
    added = [store.add_message(owner, conversation["id"], "user", f"m{i}")[0] for i in range(10)]
    assert store.list_messages(owner, conversation["id"]) == added
    assert store.list_messages(owner, conversation["id"], limit=3) == added[-3:]
    assert store.last_messages(owner, conversation["id"], 3) == added[-3:]
    assert store.list_messages(owner, conversation["id"], limit=50) == added
    assert store.list_messages(owner, conversation["id"], limit=0) == []


@pytest.mark.parametrize("limit", [-1, "3", 1.5, True])
def test_message_list_rejects_bad_limit(store, owner, conversation, limit):
    with pytest.raises(ValueError):
        store.list_messages(owner, conversation["id"], limit=limit)


def test_message_list_long_conversation_one_query(store, owner, conversation, count_statements):
    now = datetime.now(UTC)
    rows = [
        {"conversation_id": conversation["id"], "role": ("user", "assistant")[i % 2], "content": f"m{i}",
         "status": "complete", "created_at": now, "updated_at": now}
        for i in range(1000)
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(sa.insert(messages), rows)
    count_statements.clear()
    listed = store.list_messages(owner, conversation["id"])
    assert [m["content"] for m in listed] == [f"m{i}" for i in range(1000)]
    # One ownership check by primary key plus one indexed range query, however long the conversation.
    assert count_statements == {"SELECT": 2}


def test_message_iso_times(store, owner, conversation):
    message, _ = store.add_message(owner, conversation["id"], "user", "hello")
    stored = store.get_conversation(owner, conversation["id"])
    times = [message["created_at"], store.get_message(owner, message["id"])["created_at"]]
    times += [conversation["created_at"], stored["created_at"], stored["updated_at"]]
    for value in times:
        assert ISO_UTC.fullmatch(value), value
        assert abs(datetime.fromisoformat(value) - datetime.now(UTC)) < timedelta(hours=1)
    assert message["created_at"] == times[1]


def test_interrupt_streaming(store, owner, conversation):
    streaming, _ = store.add_message(owner, conversation["id"], "assistant", "part", status="streaming")
    done, _ = store.add_message(owner, conversation["id"], "assistant", "all", status="complete")
    assert store.interrupt_streaming() == 1
    assert store.get_message(owner, streaming["id"])["status"] == "interrupted"
    assert store.get_message(owner, streaming["id"])["content"] == "part"
    assert store.get_message(owner, done["id"])["status"] == "complete"
    assert store.interrupt_streaming() == 0


def test_interrupt_streaming_stale_only(store, owner, conversation):
    live, _ = store.add_message(owner, conversation["id"], "assistant", "", status="streaming")
    dead, _ = store.add_message(owner, conversation["id"], "assistant", "", status="streaming")
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
    message, _ = store.add_message(owner, conversation["id"], "user", "hello", client_id="c-1")
    assert store.find_client_message(owner, conversation["id"], "c-1") == message
    assert store.find_client_message(owner, conversation["id"], "c-2") is None
    for bad in ("x" * 500, "", "a\x00b", "\ud800", None):
        assert store.find_client_message(owner, conversation["id"], bad) is None
    with pytest.raises(NotFound):
        store.find_client_message(store.create_owner(), conversation["id"], "c-1")


def test_message_reply_after(store, owner, conversation):
    question, _ = store.add_message(owner, conversation["id"], "user", "question")
    assert store.reply_after(question["id"]) is None
    other = store.create_conversation(owner)
    store.add_message(owner, other["id"], "assistant", "elsewhere")
    assert store.reply_after(question["id"]) is None
    reply, _ = store.add_message(owner, conversation["id"], "assistant", "answer", status="streaming")
    store.add_message(owner, conversation["id"], "assistant", "later")
    assert store.reply_after(question["id"]) == reply
    follow_up, _ = store.add_message(owner, conversation["id"], "user", "more")
    assert store.reply_after(reply["id"])["content"] == "later"
    assert store.reply_after(follow_up["id"]) is None
    assert store.reply_after(10_000) is None
