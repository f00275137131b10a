"""The reply registry: in memory, and in Redis when TEST_REDIS_URL is set (the same contract)."""

from __future__ import annotations

import os
import uuid

import pytest

from chatbot.turns.registry import MemoryReplies, RedisReplies


@pytest.fixture(params=["memory", "redis"])
def replies(request):
    """Each registry implementation, empty."""
    if request.param == "memory":
        yield MemoryReplies()
        return
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15)")
    registry = RedisReplies(url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    yield registry
    for key in registry._redis.scan_iter(registry._key("*")):
        registry._redis.delete(key)


def test_replies_reserve_then_busy_until_finished(replies):
    assert replies.reserve("c1", "o1", 3) is None
    assert replies.reserve("c1", "o1", 3) == "busy"
    replies.begin(11, "c1", "o1")
    assert replies.active("c1") == 11
    replies.finish(11, {"message": "done"})
    assert replies.active("c1") is None
    assert replies.reserve("c1", "o1", 3) is None


def test_replies_limit_concurrent_replies_per_owner(replies):
    assert replies.reserve("c1", "o1", 2) is None
    assert replies.reserve("c2", "o1", 2) is None
    assert replies.reserve("c3", "o1", 2) == "too_many"
    assert replies.reserve("c4", "o2", 2) is None  # another owner is not affected
    replies.release("c1", "o1")
    assert replies.reserve("c3", "o1", 2) is None


def test_replies_delta_log_and_final(replies):
    replies.reserve("c1", "o1", 3)
    replies.begin(5, "c1", "o1")
    for seq, text in enumerate(["a", "b", "c"]):
        replies.append(5, seq, text)
    assert replies.since(5, -1) == (["a", "b", "c"], None)
    assert replies.since(5, 1) == (["c"], None)
    replies.finish(5, {"message": "abc"})
    assert replies.since(5, 2) == ([], {"message": "abc"})
    assert replies.owner_of(5) == ("o1", "c1")


def test_replies_tool_steps_have_their_own_log(replies):
    replies.reserve("c1", "o1", 3)
    replies.begin(6, "c1", "o1")
    replies.append(6, 0, "answer")
    for seq, step in enumerate(['{"id": "step-1", "status": "running"}', '{"id": "step-1", "status": "done"}']):
        replies.append(6, seq, step, "tool")
    assert replies.since(6, 0, "tool") == (['{"id": "step-1", "status": "done"}'], None)
    assert replies.since(6, -1) == (["answer"], None)  # the answer's log is untouched
    replies.finish(6, {"message": "answer"})
    assert len(replies.since(6, -1, "tool")[0]) == 2


def test_replies_unknown_reply(replies):
    assert replies.since(999, -1) is None
    assert replies.owner_of(999) is None
    assert replies.stop_requested(999) is False


def test_replies_stop_flag(replies):
    replies.reserve("c1", "o1", 3)
    replies.begin(8, "c1", "o1")
    assert replies.stop_requested(8) is False
    replies.request_stop(8)
    assert replies.stop_requested(8) is True


def test_replies_release_ignores_a_begun_reply(replies):
    replies.reserve("c1", "o1", 3)
    replies.begin(9, "c1", "o1")
    replies.release("c1", "o1")
    assert replies.active("c1") == 9
