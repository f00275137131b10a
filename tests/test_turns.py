"""The turn engine's promises: one transaction per turn, one read per returning connect, paged history, batched
checkpoints, the one changed conversation after a reply, and (in a real server on Postgres) a slow query in one
conversation that does not stall another's live stream."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from tests import storekit
from tests.live_client import LiveClient


def connect(socket_client, received, auth=None):
    """Connect and return (client, events, session payload)."""
    client = socket_client(auth=auth)
    events = received(client)
    return client, events, events.wait("session_id")


class Transactions:
    """Counts the store's transactions (and which of them wrote) while active."""

    def __init__(self, store):
        """Listen on the store's engine."""
        self.store, self.begins, self.writes = store, 0, 0
        sa.event.listen(store.engine, "begin", self._begin)

    def _begin(self, conn):
        """One more transaction began."""
        self.begins += 1
        self.writes += bool(conn.get_execution_options().get("chatbot_write"))

    def reset(self) -> None:
        """Start counting from zero."""
        self.begins = self.writes = 0

    def close(self) -> None:
        """Stop listening."""
        sa.event.remove(self.store.engine, "begin", self._begin)


@pytest.fixture
def transactions(app):
    """Count the app store's transactions."""
    counter = Transactions(app.extensions["chatbot"].store)
    yield counter
    counter.close()


def test_turn_writes_once_before_the_upstream_is_asked(socket_client, received, fake_groq, app, transactions):
    client, events, _ = connect(socket_client, received)
    fake_groq.script(text="Held answer.", hold_after=1)
    transactions.reset()
    ack = client.emit("user_message", {"message": "one transaction please", "client_id": "c-1"}, callback=True)
    assert ack["ok"] is True
    fake_groq.wait_for_requests(1)
    assert (transactions.begins, transactions.writes) == (1, 1)
    fake_groq.release()
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])


def test_turn_resend_of_a_streaming_message_is_acked_not_refused(socket_client, received, fake_groq):
    client, events, _ = connect(socket_client, received)
    fake_groq.script(text="Slow answer.", hold_after=1)
    first = client.emit("user_message", {"message": "once", "client_id": "same"}, callback=True)
    fake_groq.wait_for_requests(1)
    again = client.emit("user_message", {"message": "once", "client_id": "same"}, callback=True)
    assert again["ok"] is True and again["duplicate"] is True
    assert (again["message_id"], again["reply_id"]) == (first["message_id"], first["reply_id"])
    fake_groq.release()
    events.wait("bot_message", lambda d: d.get("reply_id") == first["reply_id"])
    assert len(fake_groq.requests) == 1


def test_connect_of_a_returning_session_is_one_read(socket_client, received, fake_groq, app, transactions):
    _, events, session = connect(socket_client, received)
    events.wait("history")
    transactions.reset()
    _, again, second = connect(socket_client, received, auth={"token": session["token"]})
    again.wait("history")
    assert second["session_id"] == session["session_id"]
    assert (transactions.begins, transactions.writes) == (1, 0)


def test_a_new_visitor_costs_the_store_nothing_until_its_first_message(socket_client, received, fake_groq,
                                                                        transactions):
    client, events, session = connect(socket_client, received)
    history = events.wait("history")
    assert history["messages"] == [] and events.wait("bot_message")["welcome"] is True
    assert (transactions.begins, transactions.writes) == (0, 0)
    listed = client.emit("list_conversations", {}, callback=True)  # the sidebar shows it as it will be stored
    assert [c["id"] for c in listed["conversations"]] == [history["conversation_id"]]
    assert listed["active_id"] == history["conversation_id"] and listed["conversations"][0]["message_count"] == 0
    assert transactions.writes == 0
    ack = client.emit("user_message", {"message": "first words"}, callback=True)
    assert ack["ok"] is True and ack["conversation_id"] == history["conversation_id"]
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    _, again, second = connect(socket_client, received, auth={"token": session["token"]})
    assert second["session_id"] == session["session_id"]
    shown = again.wait("history")
    assert shown["conversation_id"] == history["conversation_id"]
    assert [m["content"] for m in shown["messages"]] == ["first words", fake_groq.last_text]


def test_two_tabs_of_a_new_visitor_share_its_conversation_before_it_is_stored(socket_client, received, fake_groq):
    first, first_events, session = connect(socket_client, received)
    second, second_events, _ = connect(socket_client, received, auth={"token": session["token"]})
    conversation_id = first_events.wait("history")["conversation_id"]
    assert second_events.wait("history")["conversation_id"] == conversation_id
    ack = first.emit("user_message", {"message": "from the first tab"}, callback=True)
    assert second_events.wait("user_message_echo")["message"]["content"] == "from the first tab"
    first_events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    later = second.emit("user_message", {"message": "and from the other"}, callback=True)
    assert later["ok"] is True and later["conversation_id"] == conversation_id
    second_events.wait("bot_message", lambda d: d.get("reply_id") == later["reply_id"])
    listed = first.emit("list_conversations", {}, callback=True)
    assert [(c["id"], c["message_count"]) for c in listed["conversations"]] == [(conversation_id, 4)]


def test_a_new_visitors_first_message_joins_rows_made_meanwhile(socket_client, received, fake_groq, app):
    """A tab of the same visitor on another process stored first: this tab's first message finds the rows made."""
    client, events, session = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    app.extensions["chatbot"].store.create_session(session["session_id"], conversation_id)
    ack = client.emit("user_message", {"message": "second to arrive"}, callback=True)
    assert ack["ok"] is True and ack["conversation_id"] == conversation_id
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    assert [m["content"] for m in storekit.messages_of(app.extensions["chatbot"].store, session["session_id"],
                                              conversation_id)][0] == "second to arrive"


def test_connect_writes_last_seen_only_when_stale(socket_client, received, app, transactions):
    from chatbot.store import owners

    store = app.extensions["chatbot"].store
    client, events, session = connect(socket_client, received)
    events.wait("history")
    ack = client.emit("user_message", {"message": "make my rows"}, callback=True)
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    with store.engine.begin() as conn:
        conn.execute(sa.update(owners).where(owners.c.id == session["session_id"])
                     .values(last_seen_at=sa.func.now() - sa.text("INTERVAL '2 hours'")
                             if store.dialect == "postgresql" else sa.text("datetime('now', '-2 hours')")))
    transactions.reset()
    _, again, _ = connect(socket_client, received, auth={"token": session["token"]})
    again.wait("history")
    assert transactions.writes == 1
    transactions.reset()
    _, third, _ = connect(socket_client, received, auth={"token": session["token"]})
    third.wait("history")
    assert transactions.writes == 0


def fill(app, owner_id: str, conversation_id: str, n: int) -> list[int]:
    """Store n alternating questions and answers (n/2 finished turns) through the store; return their ids."""
    store = app.extensions["chatbot"].store
    store.create_session(owner_id, conversation_id)  # a new visitor's rows wait for its first message: make them
    return [m["id"] for m in storekit.fill(store, owner_id, conversation_id, [f"m{i}" for i in range(n)])]


def test_history_is_paged_and_load_more_walks_back(make_app, received):
    from chatbot import socketio

    app = make_app(HISTORY_PAGE=50)
    client = socketio.test_client(app)
    events = received(client)
    session = events.wait("session_id")
    conversation_id = events.wait("history")["conversation_id"]
    ids = fill(app, session["session_id"], conversation_id, 120)
    again = socketio.test_client(app, auth={"token": session["token"]})
    history = received(again).wait("history")
    assert [m["id"] for m in history["messages"]] == ids[-50:] and history["more"] is True
    page = again.emit("load_more", {"conversation_id": conversation_id, "before_id": ids[-50]}, callback=True)
    assert [m["id"] for m in page["messages"]] == ids[20:70] and page["more"] is True
    last = again.emit("load_more", {"conversation_id": conversation_id, "before_id": ids[20]}, callback=True)
    assert [m["id"] for m in last["messages"]] == ids[:20] and last["more"] is False
    assert [m["content"] for m in last["messages"]][:2] == ["m0", "m1"]


@pytest.mark.parametrize(("payload", "code"), [
    ({"before_id": 5}, "invalid_message"),
    ({"conversation_id": "0" * 32, "before_id": 5}, "not_found"),
    ({"conversation_id": "nothex", "before_id": 5}, "not_found"),
    ({"before_id": -1, "conversation_id": None}, "invalid_message"),
    ("own", "invalid_message"),
])
def test_load_more_refuses_bad_input(socket_client, received, payload, code):
    client, events, _ = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    if payload == "own":
        payload = {"conversation_id": conversation_id, "before_id": "12"}
    result = client.emit("load_more", payload, callback=True)
    assert result["ok"] is False and result["error"]["code"] == code


def test_load_more_of_another_sessions_conversation_is_not_found(socket_client, received, app):
    _, events, session = connect(socket_client, received)
    victim_conversation = events.wait("history")["conversation_id"]
    fill(app, session["session_id"], victim_conversation, 4)
    intruder, _, _ = connect(socket_client, received)
    result = intruder.emit("load_more", {"conversation_id": victim_conversation}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "not_found"
    assert "m0" not in repr(result)


def test_reply_sends_the_one_changed_conversation(socket_client, received, fake_groq):
    client, events, session = connect(socket_client, received)
    _, other_tab, _ = connect(socket_client, received, auth={"token": session["token"]})
    fake_groq.script(text="Fine.")
    ack = client.emit("user_message", {"message": "Name this chat"}, callback=True)
    for tab in (events, other_tab):
        update = tab.wait("conversation_updated")["conversation"]
        assert update["id"] == ack["conversation_id"]
        assert update["title"] == "Name this chat" and update["message_count"] == 2
        assert tab.of("conversations") == []


def test_checkpointer_beat_writes_every_changed_reply_in_one_call():
    from chatbot.turns.checkpoints import Checkpointer, LiveReply

    calls, beats = [], []

    class Store:
        def checkpoint_many(self, replies):
            calls.append(list(replies))

    class Registry:
        def heartbeat_many(self, replies):
            beats.append(list(replies))

    checkpointer = Checkpointer(Store(), Registry(), start_task=None, sleep=None, interval=1.0)
    live = [LiveReply(i, f"c{i}", "owner") for i in (1, 2, 3)]
    for reply in live:
        reply.parts.append(f"text {reply.reply_id}")
    live[1].reasoning_parts.append("thinking")
    checkpointer.beat(live)
    assert calls == [[(1, "text 1", None), (2, "text 2", "thinking"), (3, "text 3", None)]]
    live[2].parts.append(" more")
    checkpointer.beat(live)  # only what changed is written again; every reply is still kept alive
    assert calls[1] == [(3, "text 3 more", None)]
    assert beats == [[(1, "c1"), (2, "c2"), (3, "c3")]] * 2
    checkpointer.beat(live)
    assert len(calls) == 2 and checkpointer.beats == 2


def test_checkpoints_of_concurrent_replies_go_through_one_batched_call(make_app, received, fake_groq, monkeypatch):
    from chatbot import socketio
    from tests.conftest import wait_until

    app = make_app(CHECKPOINT_SECONDS="0.05", MAX_CONCURRENT_REPLIES="5")
    store = app.extensions["chatbot"].store
    batches: list[list[int]] = []
    singles: list[tuple] = []
    original_batch, original_single = store.checkpoint_many, store.finish_reply

    def batch(replies):
        original_batch(replies)
        batches.append(sorted(r[0] for r in replies))  # after the commit: the test reads the rows next

    def single(*args, **kwargs):
        singles.append((args, kwargs.get("status")))
        original_single(*args, **kwargs)

    monkeypatch.setattr(store, "checkpoint_many", batch)
    monkeypatch.setattr(store, "finish_reply", single)
    fake_groq.script(text="Part one, then more.", hold_after=2, repeat=3)
    clients, acks = [], []
    for _ in range(3):
        client = socketio.test_client(app)
        clients.append(received(client))
        clients[-1].wait("history")
        acks.append(client.emit("user_message", {"message": "go"}, callback=True))
    fake_groq.wait_for_requests(3)
    reply_ids = {a["reply_id"] for a in acks}
    # While held, each reply's text so far reaches its row through the batched checkpoint, never on its own.
    wait_until(lambda: reply_ids <= {r for b in batches for r in b}, what="every reply checkpointed")
    assert singles == []
    from chatbot.store import messages

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(messages.c.status, messages.c.content)
                            .where(messages.c.id.in_(reply_ids))).all()
    assert {status for status, _ in rows} == {"streaming"}
    assert all(content and "Part one, then more.".startswith(content) for _, content in rows)
    fake_groq.release()
    for events, ack in zip(clients, acks, strict=True):
        final = events.wait("bot_message", lambda d, r=ack["reply_id"]: d.get("reply_id") == r)
        assert final["message"] == "Part one, then more."
    assert sorted(args[0] for args, status in singles) == sorted(reply_ids)  # one final write each
    assert all(status == "complete" for _, status in singles)


@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_slow_query_in_one_conversation_does_not_stall_another_stream(live_server, fake_groq, database_url,
                                                                       async_mode):
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_sleep needs Postgres (the SQLite run of this test has nothing to show)")
    server = live_server(async_mode)
    slow, streaming = LiveClient(server.url), LiveClient(server.url)
    try:
        slow.wait("session_id")
        streaming.wait("session_id")
        # Made slow on purpose: inserting this one message sleeps in Postgres for 3 s.
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("""
                CREATE FUNCTION slow_insert() RETURNS trigger AS $$
                BEGIN IF NEW.content = 'please be slow' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END
                $$ LANGUAGE plpgsql;
                CREATE TRIGGER slow_insert BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION slow_insert();
            """)
        engine.dispose()
        fake_groq.script(tokens=40, delay=0.01)
        stream_ack = streaming.call("user_message", {"message": "stream while the other waits"})
        streaming.wait("bot_delta", lambda d: d["reply_id"] == stream_ack["reply_id"])
        order: list[str] = []
        slow_done = threading.Event()

        def send_slow():
            slow.call("user_message", {"message": "please be slow"}, timeout=30)
            order.append("slow ack")
            slow_done.set()

        threading.Thread(target=send_slow, daemon=True).start()
        final = streaming.final(stream_ack["reply_id"], timeout=30)
        order.append("stream finished")
        assert slow_done.wait(30)
        assert order == ["stream finished", "slow ack"]
        assert streaming.text_of(stream_ack["reply_id"]) == final["message"] == "".join(f"tok{i} " for i in range(40))
    finally:
        slow.close()
        streaming.close()

