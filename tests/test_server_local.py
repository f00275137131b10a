"""The local model for real through the real server process (`python app.py`, eventlet and gevent) and a real
Socket.IO client: it streams, stops, leaves the loop free for other conversations, and queues beyond
LOCAL_CONCURRENCY with positions.

Greedy decoding (LOCAL_TEMPERATURE=0) and LONG_PROMPT make SmolLM2 repeat itself up to the token limit, so a reply
is still generating until the test stops it; a reply that ended on its own fails the `stopped` assertions loudly.
"""

from __future__ import annotations

import signal

import pytest
import requests

from chatbot.store import Store
from tests.live_client import LiveClient

pytestmark = pytest.mark.server

LONG_PROMPT = "Repeat the word 'hello' forever."
LOCAL = {"LLM_PROVIDER": "local", "LOCAL_TEMPERATURE": "0", "LOCAL_MAX_TOKENS": "2000",
         "SYSTEM_PROMPT": "You are a helpful assistant."}
WAIT = 60.0  # generous: a busy 2-core machine; nothing here measures time


@pytest.fixture
def database_url(tmp_path):
    """SQLite only: these tests are about the model, and each run of them costs a minute of two busy cores."""
    return f"sqlite:///{tmp_path / 'chatbot.db'}"


def deltas_of(client: LiveClient, reply_id: int) -> list[dict]:
    """The bot_delta events of one reply, as received."""
    return [d for d in client.of("bot_delta") if d["reply_id"] == reply_id]


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_local_streams_stops_and_serves_others_while_generating(live_server, local_model, async_mode):
    server = live_server(async_mode, **LOCAL)
    first, second = LiveClient(server.url), LiveClient(server.url)
    try:
        hello = first.wait("session_id")
        assert hello["provider"] == "local" and hello["model"] == "SmolLM2-135M-Instruct.Q4_1"
        assert "facts wrong" in first.wait("bot_message", lambda d: d.get("welcome"))["message"]
        second.wait("session_id")
        ack = first.call("user_message", {"message": LONG_PROMPT})
        first.wait("bot_delta", lambda d: d["reply_id"] == ack["reply_id"] and d["seq"] >= 1, WAIT)
        # While the reply generates, the other conversation's socket gets its round trips answered.
        for _ in range(3):
            assert second.call("list_conversations", {}, timeout=WAIT)["ok"] is True
        assert not [d for d in first.of("bot_message") if d.get("reply_id") == ack["reply_id"]], \
            "the reply ended before the other socket's round trips: nothing was proven"
        assert first.call("stop", {"reply_id": ack["reply_id"]}) == {"ok": True, "stopped": True}
        final = first.final(ack["reply_id"], WAIT)
        assert final["finish_reason"] == "stopped"
        assert len(deltas_of(first, ack["reply_id"])) >= 2
        assert final["message"] == first.text_of(ack["reply_id"]) and final["message"]
        ready = requests.get(server.url + "/readyz", timeout=5).json()
        assert ready["provider"] == "local" and ready["model"] == "SmolLM2-135M-Instruct.Q4_1"
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_local_queued_reply_reports_its_position(live_server, local_model, async_mode):
    server = live_server(async_mode, LOCAL_CONCURRENCY="1", **LOCAL)
    clients = [LiveClient(server.url) for _ in range(3)]
    try:
        for client in clients:
            client.wait("session_id")
        running = clients[0].call("user_message", {"message": LONG_PROMPT})
        clients[0].wait("bot_delta", lambda d: d["reply_id"] == running["reply_id"], WAIT)
        second = clients[1].call("user_message", {"message": LONG_PROMPT})
        clients[1].wait("bot_status", lambda d: d == {"reply_id": second["reply_id"], "status": "queued",
                                                      "position": 1}, WAIT)
        third = clients[2].call("user_message", {"message": LONG_PROMPT})
        clients[2].wait("bot_status", lambda d: d == {"reply_id": third["reply_id"], "status": "queued",
                                                      "position": 2}, WAIT)
        assert deltas_of(clients[1], second["reply_id"]) == []
        clients[0].call("stop", {"reply_id": running["reply_id"]})
        assert clients[0].final(running["reply_id"], WAIT)["finish_reason"] == "stopped"
        # The slot goes to the second reply, and the third moves up the line.
        clients[1].wait("bot_delta", lambda d: d["reply_id"] == second["reply_id"], WAIT)
        clients[2].wait("bot_status", lambda d: d.get("reply_id") == third["reply_id"] and d["position"] == 1,
                        WAIT)
        assert deltas_of(clients[2], third["reply_id"]) == []
        clients[1].call("stop", {"reply_id": second["reply_id"]})
        clients[2].wait("bot_delta", lambda d: d["reply_id"] == third["reply_id"], WAIT)
        clients[2].call("stop", {"reply_id": third["reply_id"]})
        assert clients[2].final(third["reply_id"], WAIT)["finish_reason"] == "stopped"
    finally:
        for client in clients:
            client.close()


def test_server_auto_without_a_usable_local_model_starts_on_the_demo_and_says_why(live_server, tmp_path):
    missing = tmp_path / "missing.gguf"
    server = live_server("eventlet", LLM_PROVIDER="auto", GROQ_API_KEY="", LOCAL_MODEL_PATH=str(missing))
    client = LiveClient(server.url)
    try:
        assert client.wait("session_id")["provider"] == "demo"
    finally:
        client.close()
    said = [line for line in server.log().splitlines() if "offline demo answers because" in line]
    assert said == [f"chatbotws: the offline demo answers because LOCAL_MODEL_PATH={missing} is not a file "
                    "(expected a .gguf model)"]
    assert requests.get(server.url + "/readyz", timeout=5).json()["provider"] == "demo"


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_local_sigterm_while_generating_stores_the_reply_and_exits_0(live_server, local_model, async_mode):
    """SIGTERM may reach llama.cpp's or the offload pool's thread rather than the main one: it is still handled (as
    PID 1 in a container an unhandled SIGTERM does nothing at all; here it would kill the process)."""
    server = live_server(async_mode, SHUTDOWN_SECONDS="0", **LOCAL)
    client = LiveClient(server.url)
    store = Store(server.env["DATABASE_URL"])
    try:
        session = client.wait("session_id")
        ack = client.call("user_message", {"message": LONG_PROMPT})
        client.wait("bot_delta", lambda d: d["reply_id"] == ack["reply_id"] and d["seq"] >= 1, WAIT)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(WAIT) == 0, server.log()
        final = client.final(ack["reply_id"], WAIT)
        assert final["finish_reason"] == "interrupted", "the reply ended before SIGTERM: nothing was proven"
        stored = store.get_message(session["session_id"], ack["reply_id"])
        assert (stored["status"], stored["content"]) == ("interrupted", final["message"]) and final["message"]
    finally:
        client.close()
        store.close()
