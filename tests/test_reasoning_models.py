"""Groq's strengths through the protocol: live reasoning (`bot_reasoning`), the model picker (`list_models`,
`set_model`), usage and speed per reply, and the Prometheus metrics after turns with known outcomes."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families


def connect(socket_client, received, auth=None):
    """Connect and return (client, events, session payload)."""
    client = socket_client(auth=auth)
    events = received(client)
    return client, events, events.wait("session_id")


def final_of(events, reply_id):
    """Wait for the final bot_message of `reply_id`."""
    return events.wait("bot_message", lambda data: data.get("reply_id") == reply_id)


def pieces(events, name, reply_id):
    """The (seq, text) pieces of `name` events of a reply, in arrival order."""
    return [(d["seq"], d["text"]) for d in events.of(name) if d["reply_id"] == reply_id]


THINKING = "Let me think about this carefully. The user greets me, so I greet back."


def test_reasoning_streams_before_the_answer_with_its_own_seq(socket_client, received, fake_groq, app):
    client, events, session = connect(socket_client, received)
    fake_groq.script(reasoning=THINKING, text="Hello there!", delay=0.002)
    ack = client.emit("user_message", {"message": "hi"}, callback=True)
    final = final_of(events, ack["reply_id"])
    thinking = pieces(events, "bot_reasoning", ack["reply_id"])
    answer = pieces(events, "bot_delta", ack["reply_id"])
    assert [seq for seq, _ in thinking] == list(range(len(thinking))) and thinking
    assert [seq for seq, _ in answer] == list(range(len(answer))) and answer
    assert "".join(text for _, text in thinking) == THINKING == final["reasoning"]
    assert "".join(text for _, text in answer) == "Hello there!" == final["message"]
    # Every piece of thinking arrived before the first piece of the answer.
    names = [name for name, data in events.events if isinstance(data, dict) and data.get("reply_id") == ack["reply_id"]
             and name in ("bot_reasoning", "bot_delta")]
    assert names == ["bot_reasoning"] * len(thinking) + ["bot_delta"] * len(answer)
    stored = app.extensions["chatbot"].store.get_message(session["session_id"], ack["reply_id"])
    assert stored["reasoning"] == THINKING and stored["content"] == "Hello there!"


def test_reasoning_is_never_sent_back_upstream(socket_client, received, fake_groq):
    client, events, _ = connect(socket_client, received)
    fake_groq.script(reasoning=THINKING, text="First answer.")
    first = client.emit("user_message", {"message": "one"}, callback=True)
    final_of(events, first["reply_id"])
    fake_groq.script(text="Second answer.")
    second = client.emit("user_message", {"message": "two"}, callback=True)
    final_of(events, second["reply_id"])
    sent = fake_groq.requests[-1]["messages"]
    assert {"role": "assistant", "content": "First answer."} in sent
    assert THINKING not in repr(sent)


def test_reasoning_in_history_and_resume(socket_client, received, fake_groq):
    client, events, session = connect(socket_client, received)
    fake_groq.script(reasoning=THINKING, text="Done thinking.", hold_after=3)
    ack = client.emit("user_message", {"message": "think"}, callback=True)
    fake_groq.wait_streamed(3)
    # A second tab resumes the live reply from the start: thinking and answer so far, each from seq 0.
    other, other_events, _ = connect(socket_client, received, auth={"token": session["token"]})
    events.wait("bot_reasoning", lambda d: d["reply_id"] == ack["reply_id"])
    fake_groq.release()
    final_of(events, ack["reply_id"])
    result = other.emit("resume", {"reply_id": ack["reply_id"], "after_seq": -1, "after_reasoning_seq": -1},
                        callback=True)
    assert result == {"ok": True, "done": True}
    replayed = {seq: text for seq, text in pieces(other_events, "bot_reasoning", ack["reply_id"])}
    assert "".join(replayed[s] for s in sorted(replayed)) == THINKING
    # A reload shows it in history.
    _, reloaded, _ = connect(socket_client, received, auth={"token": session["token"]})
    message = reloaded.wait("history")["messages"][-1]
    assert message["reasoning"] == THINKING and message["content"] == "Done thinking."


def test_reasoning_hidden_by_the_operator(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(SHOW_REASONING="false")
    client = socketio.test_client(app)
    events = received(client)
    events.wait("history")
    fake_groq.script(reasoning=THINKING, text="Only the answer.")
    ack = client.emit("user_message", {"message": "hi"}, callback=True)
    final = final_of(events, ack["reply_id"])
    assert "reasoning" not in final and events.of("bot_reasoning") == []
    again = socketio.test_client(app, flask_test_client=None)
    assert THINKING not in repr(received(again).wait("history"))


def test_list_models_offers_chat_models_filtered_by_the_operator(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(GROQ_MODELS="openai/gpt-oss-120b,qwen/qwen3.6-27b,not/listed-upstream")
    client = socketio.test_client(app)
    received(client).wait("history")
    listing = client.emit("list_models", {}, callback=True)
    assert listing["ok"] is True and listing["default"] == "openai/gpt-oss-120b"
    ids = [m["id"] for m in listing["models"]]
    assert ids[0] == "openai/gpt-oss-120b" and "qwen/qwen3.6-27b" in ids
    assert "whisper-large-v3" not in ids and "not/listed-upstream" not in ids and "groq/compound" not in ids
    assert {"id", "label", "reasoning", "context_window"} <= set(listing["models"][0])


def test_set_model_is_used_by_the_next_request_and_recorded(socket_client, received, fake_groq, app):
    client, events, session = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    chosen = client.emit("set_model", {"conversation_id": conversation_id, "model": "openai/gpt-oss-20b"},
                         callback=True)
    assert chosen["ok"] is True and chosen["conversation"]["model"] == "openai/gpt-oss-20b"
    assert events.wait("conversation_updated")["conversation"]["model"] == "openai/gpt-oss-20b"
    fake_groq.script(text="From the small one.")
    ack = client.emit("user_message", {"message": "which model?"}, callback=True)
    final = final_of(events, ack["reply_id"])
    assert fake_groq.requests[-1]["model"] == "openai/gpt-oss-20b"
    assert final["model"] == "openai/gpt-oss-20b"
    store = app.extensions["chatbot"].store
    assert store.get_message(session["session_id"], ack["reply_id"])["model"] == "openai/gpt-oss-20b"
    back = client.emit("set_model", {"conversation_id": conversation_id, "model": None}, callback=True)
    assert back["conversation"]["model"] is None


@pytest.mark.parametrize(("model", "code"), [
    ("whisper-large-v3", "model_unavailable"),
    ("made/up-model", "model_unavailable"),
    ("bad model id!", "invalid_message"),
    (42, "invalid_message"),
])
def test_set_model_refuses_models_not_offered(socket_client, received, fake_groq, model, code):
    client, events, _ = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    result = client.emit("set_model", {"conversation_id": conversation_id, "model": model}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == code


def test_set_model_of_another_sessions_conversation_is_not_found(socket_client, received, fake_groq):
    _, events, _ = connect(socket_client, received)
    victim = events.wait("history")["conversation_id"]
    intruder, _, _ = connect(socket_client, received)
    result = intruder.emit("set_model", {"conversation_id": victim, "model": "openai/gpt-oss-20b"}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "not_found"


def test_retired_model_says_so_and_points_at_the_picker(socket_client, received, fake_groq):
    client, events, _ = connect(socket_client, received)
    conversation_id = events.wait("history")["conversation_id"]
    client.emit("set_model", {"conversation_id": conversation_id, "model": "openai/gpt-oss-20b"}, callback=True)
    fake_groq.script(model_decommissioned=True)
    ack = client.emit("user_message", {"message": "still there?"}, callback=True)
    final = final_of(events, ack["reply_id"])
    assert final["error"]["code"] == "model_unavailable"
    assert "openai/gpt-oss-20b" in final["error"]["message"] and "Pick another model" in final["error"]["message"]


def test_usage_and_speed_in_the_final_message_and_history(socket_client, received, fake_groq):
    client, events, session = connect(socket_client, received)
    fake_groq.script(text="Quick answer.")
    ack = client.emit("user_message", {"message": "fast?"}, callback=True)
    final = final_of(events, ack["reply_id"])
    usage = final["usage"]
    assert usage["completion_tokens"] > 0 and usage["completion_time"] > 0
    speed = final["speed"]
    assert speed["tokens_per_second"] == round(usage["completion_tokens"] / usage["completion_time"], 1)
    assert speed["ttft"] >= 0
    _, reloaded, _ = connect(socket_client, received, auth={"token": session["token"]})
    message = reloaded.wait("history")["messages"][-1]
    assert message["usage"] == usage and message["speed"] == speed and message["model"] == "openai/gpt-oss-120b"



def test_export_json_carries_reasoning_usage_and_speed(socket_client, received, fake_groq, app):
    client, events, session = connect(socket_client, received)
    fake_groq.script(reasoning=THINKING, text="Exported.")
    ack = client.emit("user_message", {"message": "export me"}, callback=True)
    final_of(events, ack["reply_id"])
    response = app.test_client().get(f"/conversations/{ack['conversation_id']}/export.json",
                                     headers={"Authorization": f"Bearer {session['token']}"})
    reply = response.get_json()["messages"][-1]
    assert reply["reasoning"] == THINKING and reply["usage"]["completion_tokens"] > 0
    assert reply["speed"]["tokens_per_second"] > 0 and reply["model"] == "openai/gpt-oss-120b"
    markdown = app.test_client().get(f"/conversations/{ack['conversation_id']}/export.md",
                                     headers={"Authorization": f"Bearer {session['token']}"}).get_data(as_text=True)
    assert "> **Thinking**" in markdown and THINKING in markdown


def scrape(app) -> dict[tuple[str, tuple], float]:
    """The app's /metrics as {(sample name, sorted labels): value}."""
    body = app.test_client().get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_metrics_after_turns_with_known_outcomes(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(RATE_LIMIT_MESSAGES="3/minute")
    client = socketio.test_client(app)
    events = received(client)
    events.wait("history")
    fake_groq.script(text="One.", ratelimit={"requests": 99, "tokens": 5000})
    first = client.emit("user_message", {"message": "a"}, callback=True)
    final_of(events, first["reply_id"])
    fake_groq.script(status=401)
    second = client.emit("user_message", {"message": "b"}, callback=True)
    final_of(events, second["reply_id"])
    fake_groq.script(text="Three.", ratelimit={"requests": 97, "tokens": 4000})
    third = client.emit("user_message", {"message": "c"}, callback=True)
    final_of(events, third["reply_id"])
    refused = client.emit("user_message", {"message": "d"}, callback=True)
    assert refused["error"]["code"] == "rate_limited"
    samples = scrape(app)
    assert samples[("chatbot_replies_total", (("outcome", "complete"),))] == 2
    assert samples[("chatbot_replies_total", (("outcome", "error"),))] == 1
    assert samples[("chatbot_upstream_errors_total", (("code", "upstream_auth"),))] == 1
    assert samples[("chatbot_rate_limited_total", (("kind", "message"),))] == 1
    assert samples[("chatbot_connections_total", ())] == 1
    assert samples[("chatbot_connected_sockets", ())] == 1
    assert samples[("chatbot_replies_in_flight", ())] == 0
    model = (("model", "openai/gpt-oss-120b"),)
    assert samples[("chatbot_time_to_first_token_seconds_count", model)] == 2
    assert samples[("chatbot_output_tokens_per_second_count", model)] == 2
    assert samples[("chatbot_reply_duration_seconds_count", model)] == 3
    assert samples[("chatbot_upstream_ratelimit_remaining", (("kind", "requests"),))] == 97  # the latest headers
    assert samples[("chatbot_upstream_ratelimit_remaining", (("kind", "tokens"),))] == 4000
