"""Several processes on Redis + Postgres: one session's tabs on different processes share every reply."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from chatbot.store import isolated_database
from tests.live_client import LiveClient

pytestmark = [pytest.mark.server, pytest.mark.redis, pytest.mark.postgres]

REDIS_URL = os.environ.get("TEST_REDIS_URL")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def database_url():
    """One Postgres schema for every process of the test (overrides conftest's SQLite/Postgres pair)."""
    if not (REDIS_URL and DATABASE_URL):
        pytest.skip("TEST_REDIS_URL and TEST_DATABASE_URL are not both set (e.g. redis://127.0.0.1:6379/15 and "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    with isolated_database(DATABASE_URL) as url:
        yield url


@pytest.fixture
def two_processes(live_server):
    """An eventlet and a gevent server process sharing one Postgres schema and one Redis."""
    shared = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}
    return live_server("eventlet", **shared), live_server("gevent", **shared)


def test_scaling_reply_reaches_tabs_on_other_process(two_processes, fake_groq):
    first, second = two_processes
    tab1 = LiveClient(first.url)
    session = tab1.wait("session_id")
    tab2 = LiveClient(second.url, session["token"])
    assert tab2.wait("session_id")["session_id"] == session["session_id"]
    fake_groq.script(tokens=60, delay=0.002, hold_after=20)
    ack = tab1.call("user_message", {"message": "across processes"})
    fake_groq.wait_streamed(20)
    # The conversation is busy everywhere, not only in the process streaming the reply.
    busy = tab2.call("user_message", {"message": "me too"})
    assert busy["ok"] is False and busy["error"]["code"] == "busy"
    # A third tab joins late on the other process and resumes from the shared delta log.
    tab3 = LiveClient(second.url, session["token"])
    assert tab3.wait("history")["messages"][-1]["status"] == "streaming"
    assert tab3.call("resume", {"reply_id": ack["reply_id"], "after_seq": -1})["ok"] is True
    fake_groq.release()
    for tab in (tab1, tab2, tab3):
        final = tab.final(ack["reply_id"])
        assert tab.text_of(ack["reply_id"]) == final["message"] == fake_groq.last_text
        tab.close()


def test_scaling_stop_from_other_process(two_processes, fake_groq):
    first, second = two_processes
    tab1 = LiveClient(first.url)
    session = tab1.wait("session_id")
    tab2 = LiveClient(second.url, session["token"])
    tab2.wait("history")
    fake_groq.script(tokens=500, delay=0.01)
    ack = tab1.call("user_message", {"message": "stop me from elsewhere"})
    tab2.wait("bot_delta", lambda d: d["reply_id"] == ack["reply_id"])
    assert tab2.call("stop", {"reply_id": ack["reply_id"]}) == {"ok": True, "stopped": True}
    final = tab1.final(ack["reply_id"])
    assert final["finish_reason"] == "stopped"
    whole = "".join(f"tok{i} " for i in range(500))
    assert tab1.text_of(ack["reply_id"]) == final["message"]
    assert whole.startswith(final["message"]) and len(final["message"]) < len(whole)
    fake_groq.wait_disconnected(1)
    # The conversation is free again, from either process.
    fake_groq.script(text="Next one.")
    again = tab2.call("user_message", {"message": "next"})
    assert tab1.final(again["reply_id"])["message"] == "Next one."
    tab1.close()
    tab2.close()


def test_scaling_tool_step_resumed_and_approved_on_another_process_runs_once(live_server, fake_groq, mcp_orders):
    """A destructive step started on one process (eventlet) is resumed mid-step and approved by a tab on another
    (gevent); it runs once and every tab sees the same steps."""
    shared = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
              "MCP_SERVERS": json.dumps([{"name": "orders", "url": mcp_orders.url}]), "TOOL_APPROVAL_SECONDS": "60"}
    first, second = live_server("eventlet", **shared), live_server("gevent", **shared)
    tab1 = LiveClient(first.url)
    session = tab1.wait("session_id")
    conversation_id = tab1.wait("history")["conversation_id"]
    enabled = tab1.call("update_conversation", {"conversation_id": conversation_id,
                                                "tools": ["mcp:orders/cancel_order"]})
    assert enabled["ok"] is True, enabled
    fake_groq.script(tool_calls=[{"name": "orders__cancel_order", "arguments": {"order_id": "900"}}])
    fake_groq.script(text="Order 900 is cancelled.")
    ack = tab1.call("user_message", {"message": "Cancel order 900"})
    reply_id = ack["reply_id"]
    asked = tab1.wait("tool_approval", lambda a: a["reply_id"] == reply_id)
    # A tab on the other process arrives mid-step: resume replays the step and asks it too.
    tab2 = LiveClient(second.url, session["token"])
    assert tab2.wait("history")["messages"][-1]["status"] == "streaming"
    assert tab2.call("resume", {"reply_id": reply_id, "after_seq": -1, "after_tool_seq": -1})["done"] is False
    assert tab2.wait("tool_approval", lambda a: a["reply_id"] == reply_id) == asked
    running = tab2.wait("bot_tool", lambda e: e["reply_id"] == reply_id)
    assert running["seq"] == 0 and running["step"]["status"] == "running"
    assert mcp_orders.calls().count({"tool": "cancel_order", "order_id": "900"}) == 0
    assert tab2.call("approve_tool", {"reply_id": reply_id, "step_id": asked["step_id"], "approve": True}) == {
        "ok": True, "first": True}
    for tab in (tab1, tab2):
        final = tab.final(reply_id, timeout=30)
        assert final["message"] == "Order 900 is cancelled." and final["tools"][0]["status"] == "done"
        steps = sorted((e for e in tab.of("bot_tool") if e["reply_id"] == reply_id), key=lambda e: e["seq"])
        assert [e["seq"] for e in steps] == [0, 1] and steps[-1]["step"] == final["tools"][0]
    assert mcp_orders.calls().count({"tool": "cancel_order", "order_id": "900"}) == 1
    tab1.close()
    tab2.close()
