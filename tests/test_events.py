"""Every Socket.IO event and error code, through Flask-SocketIO's test client against the fake Groq."""

from __future__ import annotations

import pytest

from chatbot.store import NotFound
from chatbot.turns.context import build_context
from tests.storekit import messages_of


def connect(socket_client, received, auth=None):
    """Connect and return (client, events, session payload)."""
    client = socket_client(auth=auth)
    events = received(client)
    session = events.wait("session_id")
    return client, events, session


def final_of(events, reply_id):
    """Wait for the final bot_message of `reply_id`."""
    return events.wait("bot_message", lambda data: data.get("reply_id") == reply_id)


def wait_text(events, reply_id, expected):
    """Wait until the deltas received for `reply_id` spell `expected`."""
    def text(_):
        return "".join(d["text"] for d in sorted((d for d in events.of("bot_delta") if d["reply_id"] == reply_id),
                                                  key=lambda d: d["seq"]))
    events.wait("bot_delta", lambda d: text(d) == expected)


def stored(app, owner_id, conversation_id):
    """The conversation's stored messages (none when even its row is not stored: a new visitor's, before its first
    message)."""
    try:
        return messages_of(app.extensions["chatbot"].store, owner_id, conversation_id)
    except NotFound:
        return []


def test_connect_sends_session_history_and_welcome(socket_client, received):
    client, events, session = connect(socket_client, received)
    assert len(session["session_id"]) == 32 and session["token"]
    history = events.wait("history")
    assert history["messages"] == [] and history["more"] is False
    welcome = events.wait("bot_message")
    assert welcome["welcome"] is True and welcome["conversation_id"] == history["conversation_id"]
    assert len(welcome["timestamp"]) == 5 and welcome["created_at"].endswith("+00:00")
    # The sidebar asks for the list itself: a connect reads only what the tab shows.
    assert events.of("conversations") == []
    listing = client.emit("list_conversations", {}, callback=True)
    assert listing["active_id"] == history["conversation_id"]
    assert [c["id"] for c in listing["conversations"]] == [history["conversation_id"]]
    # Order matters for seed clients: session_id first.
    assert [name for name, _ in events.events][:2] == ["session_id", "history"]


def test_user_message_streams_reply_in_order(socket_client, received, fake_groq, app):
    fake_groq.script(text="Hello **world**, this is a streamed answer.", delay=0.002)
    client, events, session = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    ack = client.emit("user_message", {"message": "Hi there", "client_id": "c1"}, callback=True)
    assert ack["ok"] is True and ack["conversation_id"] == conversation_id
    final = final_of(events, ack["reply_id"])
    start = events.wait("bot_start")
    assert start == {"reply_id": ack["reply_id"], "conversation_id": conversation_id, "model": "openai/gpt-oss-120b"}
    deltas = [d for d in events.of("bot_delta") if d["reply_id"] == ack["reply_id"]]
    assert [d["seq"] for d in deltas] == list(range(len(deltas)))
    assert "".join(d["text"] for d in deltas) == final["message"] == fake_groq.last_text
    assert final["finish_reason"] == "stop" and final["usage"]["completion_tokens"] > 0
    assert final["conversation_id"] == conversation_id and len(final["timestamp"]) == 5
    messages = stored(app, session["session_id"], conversation_id)
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "Hi there", "complete"), ("assistant", fake_groq.last_text, "complete")]


def test_user_message_sends_system_prompt_and_earlier_turns(make_app, socket_client, received, fake_groq):
    app = make_app(SYSTEM_PROMPT="You are a test bot.")
    from chatbot import socketio

    client = socketio.test_client(app)
    events = received(client)
    events.wait("session_id")
    fake_groq.script(text="First answer.", repeat=1)
    first = client.emit("user_message", {"message": "first question"}, callback=True)
    final_of(events, first["reply_id"])
    fake_groq.script(text="Second answer.")
    second = client.emit("user_message", {"message": "second question"}, callback=True)
    final_of(events, second["reply_id"])
    sent = fake_groq.requests[-1]["messages"]
    assert sent == [
        {"role": "system", "content": "You are a test bot."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "second question"},
    ]
    client.disconnect()


def test_seed_protocol_client_flow(socket_client, received, fake_groq):
    """A client written for the seed: read session_id, emit user_message {session_id, message}, get bot_message."""
    fake_groq.script(text="Seed-compatible answer.")
    client, events, session = connect(socket_client, received)
    events.wait("bot_message")  # the welcome, as the seed sent on connect
    client.emit("user_message", {"session_id": session["session_id"], "message": "hello"})
    reply = events.wait("bot_message", lambda data: not data.get("welcome"))
    assert reply["message"] == "Seed-compatible answer."
    assert set(reply) >= {"message", "timestamp"}


def test_user_message_foreign_session_id_is_session_not_found(socket_client, received, app):
    client, events, session = connect(socket_client, received)
    ack = client.emit("user_message", {"session_id": "f" * 32, "message": "hello"}, callback=True)
    assert ack == {"ok": False, "error": {"code": "session_not_found", "message": ack["error"]["message"]}}
    assert ack["error"]["message"].startswith("Session not found")  # the seed's text, first
    assert events.wait("error")["code"] == "session_not_found"
    conversation_id = events.wait("history")["conversation_id"]
    assert stored(app, session["session_id"], conversation_id) == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "invalid_message"),
        (5, "invalid_message"),
        ("just a string", "invalid_message"),
        ([1, 2], "invalid_message"),
        ({}, "invalid_message"),
        ({"message": None}, "invalid_message"),
        ({"message": 42}, "invalid_message"),
        ({"message": ["a"]}, "invalid_message"),
        ({"message": {"text": "a"}}, "invalid_message"),
        ({"message": ""}, "invalid_message"),
        ({"message": " \n\t "}, "invalid_message"),
        ({"message": "nul\x00byte"}, "invalid_message"),
        ({"message": "lone \ud800 surrogate"}, "invalid_message"),
        ({"message": "x" * 4001}, "message_too_long"),
        ({"message": "ok", "conversation_id": 7}, "invalid_message"),
        ({"message": "ok", "conversation_id": "not-an-id"}, "not_found"),
        ({"message": "ok", "conversation_id": "a" * 32}, "not_found"),
        ({"message": "ok", "client_id": {"x": 1}}, "invalid_message"),
    ],
)
def test_user_message_bad_payload_is_refused_and_stores_nothing(socket_client, received, app, payload, code):
    client, events, session = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    ack = client.emit("user_message", payload, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == code and ack["error"]["message"]
    assert events.wait("error")["code"] == code
    assert stored(app, session["session_id"], conversation_id) == []
    # The socket stays usable.
    good = client.emit("user_message", {"message": "still here"}, callback=True)
    assert good["ok"] is True


def test_user_message_while_reply_in_flight_is_busy(socket_client, received, fake_groq, app):
    fake_groq.script(tokens=10, hold_after=2)
    client, events, session = connect(socket_client, received)
    first = client.emit("user_message", {"message": "one"}, callback=True)
    fake_groq.wait_streamed(2)
    second = client.emit("user_message", {"message": "two"}, callback=True)
    assert second["ok"] is False and second["error"]["code"] == "busy"
    fake_groq.release()
    final_of(events, first["reply_id"])
    contents = [m["content"] for m in stored(app, session["session_id"], first["conversation_id"])]
    assert contents[0] == "one" and "two" not in contents


def test_stop_closes_upstream_and_keeps_partial_text(socket_client, received, fake_groq, app):
    fake_groq.script(tokens=50, hold_after=3)
    client, events, session = connect(socket_client, received)
    ack = client.emit("user_message", {"message": "long please"}, callback=True)
    fake_groq.wait_streamed(3)
    # Text received before the upstream paused is not held back waiting for the next chunk.
    wait_text(events, ack["reply_id"], "tok0 tok1 tok2 ")
    assert client.emit("stop", {"reply_id": ack["reply_id"]}, callback=True) == {"ok": True, "stopped": True}
    final = final_of(events, ack["reply_id"])
    fake_groq.wait_disconnected(1)
    assert final["finish_reason"] == "stopped"
    assert final["message"] == "tok0 tok1 tok2 "
    reply = stored(app, session["session_id"], ack["conversation_id"])[-1]
    assert reply["status"] == "stopped" and reply["content"] == final["message"]
    fake_groq.release()


def test_stop_without_reply_id_stops_the_conversations_reply(socket_client, received, fake_groq):
    fake_groq.script(tokens=50, hold_after=2)
    client, events, _ = connect(socket_client, received)
    ack = client.emit("user_message", {"message": "go"}, callback=True)
    fake_groq.wait_streamed(2)
    assert client.emit("stop", {}, callback=True)["stopped"] is True
    assert final_of(events, ack["reply_id"])["finish_reason"] == "stopped"


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ({"status": 401}, "upstream_auth"),
        ({"model_not_found": True}, "model_unavailable"),
        ({"model_decommissioned": True}, "model_unavailable"),
        ({"status": 429, "retry_after": 3600}, "upstream_rate_limited"),
        ({"status": 500, "repeat": None}, "upstream_unavailable"),
        ({"tokens": 20, "cut_after": 4}, "upstream_unavailable"),
    ],
)
def test_upstream_fault_is_a_clear_error_and_the_next_message_works(socket_client, received, fake_groq, app,
                                                                    script, code):
    fake_groq.script(**script)
    client, events, session = connect(socket_client, received)
    ack = client.emit("user_message", {"message": "hello"}, callback=True)
    assert ack["ok"] is True
    error = events.wait("error", lambda e: e.get("reply_id") == ack["reply_id"])
    assert error["code"] == code
    final = final_of(events, ack["reply_id"])
    assert final["finish_reason"] == "error"
    everything = repr(events.events)
    for secret in (fake_groq.api_key, fake_groq.base_url, "Traceback", "openai/v1"):
        assert secret not in everything
    reply = stored(app, session["session_id"], ack["conversation_id"])[-1]
    assert reply["status"] == "error" and reply["error_code"] == code
    if "cut_after" in script:
        assert reply["content"] == "tok0 tok1 tok2 tok3 " == final["message"]
    with fake_groq._lock:  # drop a fault scripted for every request
        fake_groq._scripts.clear()
    fake_groq.script(text="Recovered.")
    again = client.emit("user_message", {"message": "again"}, callback=True)
    assert final_of(events, again["reply_id"])["message"] == "Recovered."


def test_client_id_makes_a_resend_idempotent(socket_client, received, fake_groq, app):
    client, events, session = connect(socket_client, received)
    first = client.emit("user_message", {"message": "once", "client_id": "abc-1"}, callback=True)
    final_of(events, first["reply_id"])
    again = client.emit("user_message", {"message": "once", "client_id": "abc-1"}, callback=True)
    assert again["ok"] is True and again["message_id"] == first["message_id"]
    assert again["reply_id"] == first["reply_id"]
    contents = [m["content"] for m in stored(app, session["session_id"], first["conversation_id"])]
    assert contents.count("once") == 1 and len(fake_groq.requests) == 1


def test_token_restores_session_and_history(socket_client, received, fake_groq):
    client, events, session = connect(socket_client, received)
    ack = client.emit("user_message", {"message": "remember me"}, callback=True)
    final_of(events, ack["reply_id"])
    client.disconnect()
    again, events2, session2 = connect(socket_client, received, auth={"token": session["token"]})
    assert session2["session_id"] == session["session_id"]
    history = events2.wait("history")
    assert [m["content"] for m in history["messages"]] == ["remember me", fake_groq.last_text]
    assert history["messages"][1]["reply_id"] == ack["reply_id"]
    assert not [b for b in events2.of("bot_message") if b.get("welcome")]


@pytest.mark.parametrize("token", ["forged.token.value", "", 12345, None, "x" * 5000])
def test_bad_token_starts_a_new_session(socket_client, received, token):
    first, _, session = connect(socket_client, received)
    other, events, session2 = connect(socket_client, received, auth={"token": token})
    assert session2["session_id"] != session["session_id"]
    assert events.wait("history")["messages"] == []


def test_token_signed_with_another_key_is_refused(socket_client, received):
    from chatbot.web.sessions import LoginTokens

    _, _, session = connect(socket_client, received)
    foreign = LoginTokens("another-secret-key-0123456789", 3600).issue(session["session_id"])
    _, _, session2 = connect(socket_client, received, auth={"token": foreign})
    assert session2["session_id"] != session["session_id"]


def test_resume_after_finish_sends_final_message(socket_client, received, fake_groq):
    client, events, session = connect(socket_client, received)
    ack = client.emit("user_message", {"message": "hi"}, callback=True)
    final = final_of(events, ack["reply_id"])
    other, events2, _ = connect(socket_client, received, auth={"token": session["token"]})
    assert other.emit("resume", {"reply_id": ack["reply_id"], "after_seq": 0}, callback=True)["done"] is True
    assert final_of(events2, ack["reply_id"])["message"] == final["message"]


def test_resume_mid_stream_gives_exact_text(socket_client, received, fake_groq):
    fake_groq.script(tokens=30, hold_after=5, delay=0.001)
    client, events, session = connect(socket_client, received)
    ack = client.emit("user_message", {"message": "stream"}, callback=True)
    fake_groq.wait_streamed(5)
    first_delta = events.wait("bot_delta", lambda d: d["reply_id"] == ack["reply_id"])
    client.disconnect()
    other, events2, _ = connect(socket_client, received, auth={"token": session["token"]})
    history = events2.wait("history")
    assert history["messages"][-1]["status"] == "streaming"
    resumed = other.emit("resume", {"reply_id": ack["reply_id"], "after_seq": first_delta["seq"]}, callback=True)
    assert resumed == {"ok": True, "done": False}
    fake_groq.release()
    final = final_of(events2, ack["reply_id"])
    pieces = {d["seq"]: d["text"] for d in events2.of("bot_delta") if d["reply_id"] == ack["reply_id"]}
    assert sorted(pieces) == list(range(1, len(pieces) + 1))
    assert first_delta["text"] + "".join(pieces[s] for s in sorted(pieces)) == fake_groq.last_text
    assert final["message"] == fake_groq.last_text


def test_second_tab_sees_live_reply_and_user_echo(socket_client, received, fake_groq):
    client, events, session = connect(socket_client, received)
    tab2, events2, _ = connect(socket_client, received, auth={"token": session["token"]})
    ack = client.emit("user_message", {"message": "both tabs", "client_id": "t1"}, callback=True)
    assert events2.wait("user_message_echo")["message"]["content"] == "both tabs"
    assert final_of(events2, ack["reply_id"])["message"] == fake_groq.last_text
    deltas = [d for d in events2.of("bot_delta") if d["reply_id"] == ack["reply_id"]]
    assert "".join(d["text"] for d in deltas) == fake_groq.last_text


@pytest.mark.parametrize("event", ["resume", "stop"])
def test_foreign_reply_id_is_not_found(socket_client, received, fake_groq, event):
    owner, events, _ = connect(socket_client, received)
    ack = owner.emit("user_message", {"message": "mine"}, callback=True)
    final_of(events, ack["reply_id"])
    intruder, events2, _ = connect(socket_client, received)
    result = intruder.emit(event, {"reply_id": ack["reply_id"], "after_seq": -1}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "not_found"
    assert fake_groq.last_text not in repr(events2.events)


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("resume", {"reply_id": "1"}, "invalid_message"),
        ("resume", {"reply_id": True}, "invalid_message"),
        ("resume", {"reply_id": 1, "after_seq": -5}, "invalid_message"),
        ("resume", [], "invalid_message"),
        ("stop", {"reply_id": -1}, "invalid_message"),
        ("open_conversation", {}, "invalid_message"),
        ("open_conversation", {"conversation_id": None}, "invalid_message"),
        ("rename_conversation", {"conversation_id": "a" * 32, "title": ""}, "invalid_message"),
        ("rename_conversation", {"conversation_id": "a" * 32, "title": "x" * 201}, "message_too_long"),
        ("delete_conversation", {"conversation_id": 3}, "invalid_message"),
        ("regenerate", "x", "invalid_message"),
    ],
)
def test_event_bad_payload_is_refused(socket_client, received, event, payload, code):
    client, events, _ = connect(socket_client, received)
    result = client.emit(event, payload, callback=True)
    assert result["ok"] is False and result["error"]["code"] == code


def test_conversations_new_open_rename_delete(socket_client, received, fake_groq, app):
    client, events, session = connect(socket_client, received)
    first_id = events.wait("history")["conversation_id"]
    ack = client.emit("user_message", {"message": "in the first"}, callback=True)
    final_of(events, ack["reply_id"])
    created = client.emit("new_conversation", {}, callback=True)
    second_id = created["conversation"]["id"]
    assert events.wait("history", lambda h: h["conversation_id"] == second_id)["messages"] == []
    listing = client.emit("list_conversations", {}, callback=True)
    assert {c["id"] for c in listing["conversations"]} == {first_id, second_id}
    assert listing["active_id"] == second_id
    renamed = client.emit("rename_conversation", {"conversation_id": first_id, "title": "  My   chat "},
                          callback=True)
    assert renamed["conversation"]["title"] == "My chat"
    opened = client.emit("open_conversation", {"conversation_id": first_id}, callback=True)
    assert opened["ok"] is True
    history = events.wait("history", lambda h: h["conversation_id"] == first_id and h["messages"])
    assert history["messages"][0]["content"] == "in the first"
    assert client.emit("delete_conversation", {"conversation_id": first_id}, callback=True) == {"ok": True}
    remaining = client.emit("list_conversations", {}, callback=True)["conversations"]
    assert [c["id"] for c in remaining] == [second_id]
    events.wait("history", lambda h: h["conversation_id"] == second_id)


@pytest.mark.parametrize(
    ("event", "extra"),
    [
        ("open_conversation", {}),
        ("rename_conversation", {"title": "mine now"}),
        ("delete_conversation", {}),
        ("regenerate", {}),
        ("user_message", {"message": "hi"}),
    ],
)
def test_foreign_conversation_id_is_not_found(socket_client, received, app, event, extra):
    victim, events, session = connect(socket_client, received)
    victim_conversation = events.wait("history")["conversation_id"]
    victim.emit("user_message", {"message": "secret stuff"}, callback=True)
    intruder, events2, _ = connect(socket_client, received)
    result = intruder.emit(event, {"conversation_id": victim_conversation, **extra}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "not_found"
    assert "secret stuff" not in repr(events2.events)
    titles = [c["title"] for c in app.extensions["chatbot"].store.list_conversations(session["session_id"])]
    assert "mine now" not in titles and titles


def test_regenerate_keeps_the_old_reply_as_a_version(socket_client, received, fake_groq, app):
    client, events, session = connect(socket_client, received)
    fake_groq.script(text="First try.")
    ack = client.emit("user_message", {"message": "question"}, callback=True)
    final_of(events, ack["reply_id"])
    fake_groq.script(text="Second try.")
    regen = client.emit("regenerate", {"conversation_id": ack["conversation_id"]}, callback=True)
    assert regen["ok"] is True and regen["reply_id"] != ack["reply_id"]
    assert final_of(events, regen["reply_id"])["message"] == "Second try."
    contents = [m["content"] for m in stored(app, session["session_id"], ack["conversation_id"])]
    assert contents == ["question", "First try.", "Second try."]
    assert fake_groq.requests[-1]["messages"][-1] == {"role": "user", "content": "question"}
    shown = events.wait("history", lambda h: any(m["id"] == regen["reply_id"] for m in h["messages"]))["messages"]
    assert [m["id"] for m in shown] == [ack["message_id"], regen["reply_id"]]
    assert (shown[1]["version"], shown[1]["versions"]) == (2, 2)
    assert shown[1]["sibling_ids"] == [ack["reply_id"], regen["reply_id"]]


def test_regenerate_without_reply_is_refused(socket_client, received):
    client, events, _ = connect(socket_client, received)
    result = client.emit("regenerate", {}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "invalid_message"


def test_demo_mode_streams_and_says_so(make_app, received):
    from chatbot import socketio

    app = make_app(LLM_PROVIDER="demo", GROQ_API_KEY="")
    client = socketio.test_client(app)
    events = received(client)
    assert events.wait("session_id")["demo"] is True
    assert "demo" in events.wait("bot_message")["message"].lower()
    ack = client.emit("user_message", {"message": "hello demo"}, callback=True)
    final = events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    deltas = [d for d in events.of("bot_delta") if d["reply_id"] == ack["reply_id"]]
    assert len(deltas) >= 2 and "".join(d["text"] for d in deltas) == final["message"]
    assert "GROQ_API_KEY" in final["message"]
    client.disconnect()


def test_build_context_keeps_newest_turns_within_budget():
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}" * 10, "status": "complete"}
               for i in range(10)]
    context = build_context("sys", history, budget=65)
    assert context[0] == {"role": "system", "content": "sys"}
    assert [m["content"] for m in context[1:]] == [h["content"] for h in history[-3:]]


def test_build_context_keeps_latest_even_over_budget():
    history = [{"role": "user", "content": "x" * 500, "status": "complete"}]
    assert build_context("sys", history, budget=100)[1]["content"] == "x" * 500


def test_build_context_skips_streaming_and_empty():
    history = [{"role": "user", "content": "q", "status": "complete"},
               {"role": "assistant", "content": "", "status": "error"},
               {"role": "assistant", "content": "partial", "status": "streaming"}]
    assert build_context("s", history, budget=100)[1:] == [{"role": "user", "content": "q"}]


def test_internal_error_is_a_reference_not_a_traceback(socket_client, received, app, monkeypatch, caplog):
    client, events, _ = connect(socket_client, received)
    store = app.extensions["chatbot"].store

    def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM owners -- boom")

    monkeypatch.setattr(store, "list_conversations", broken)
    result = client.emit("list_conversations", {}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "internal"
    reference = result["error"]["message"].split("reference ")[1].rstrip(").")
    assert "SELECT" not in repr(events.events) and "boom" not in repr(events.events)
    assert reference in caplog.text and "boom" in caplog.text


def test_rate_limited_messages_never_reach_groq(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(RATE_LIMIT_MESSAGES="2/minute")
    client = socketio.test_client(app)
    events = received(client)
    events.wait("session_id")
    for index in range(2):
        ack = client.emit("user_message", {"message": f"m{index}"}, callback=True)
        events.wait("bot_message", lambda d, reply=ack["reply_id"]: d.get("reply_id") == reply)
    refused = client.emit("user_message", {"message": "one too many"}, callback=True)
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    assert refused["error"]["retry_after"] > 0 and "Try again in" in refused["error"]["message"]
    assert len(fake_groq.requests) == 2
    conversation_id = events.of("history")[0]["conversation_id"]
    owner = events.of("session_id")[0]["session_id"]
    assert "one too many" not in [m["content"] for m in stored(app, owner, conversation_id)]
    client.disconnect()


def test_busy_refusal_costs_no_rate_limit_budget(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(RATE_LIMIT_MESSAGES="2/minute")
    client = socketio.test_client(app)
    events = received(client)
    events.wait("session_id")
    fake_groq.script(tokens=10, hold_after=2)
    first = client.emit("user_message", {"message": "one"}, callback=True)
    fake_groq.wait_streamed(2)
    for _ in range(3):
        assert client.emit("user_message", {"message": "again"}, callback=True)["error"]["code"] == "busy"
    fake_groq.release()
    events.wait("bot_message", lambda d: d.get("reply_id") == first["reply_id"])
    second = client.emit("user_message", {"message": "two"}, callback=True)
    assert second["ok"] is True  # the busy refusals did not use up the 2 per minute
    client.disconnect()


def test_conversation_changes_are_rate_limited(make_app, received):
    from chatbot import socketio

    app = make_app(RATE_LIMIT_ACTIONS="3/minute")
    client = socketio.test_client(app)
    received(client).wait("session_id")
    for _ in range(3):
        assert client.emit("new_conversation", {}, callback=True)["ok"] is True
    refused = client.emit("new_conversation", {}, callback=True)
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    owner = app.extensions["chatbot"].chat.sockets[next(iter(app.extensions["chatbot"].chat.sockets))].owner_id
    assert len(app.extensions["chatbot"].store.list_conversations(owner)) == 4  # the first + 3 new
    client.disconnect()
