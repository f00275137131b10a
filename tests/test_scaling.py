"""Several processes on Redis + Postgres: one session's tabs on different processes share every reply."""

from __future__ import annotations

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
