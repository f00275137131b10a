"""Approvals of destructive steps: in memory, and in Redis when TEST_REDIS_URL is set (the same contract)."""

import os
import uuid

import pytest

from chatbot.tools.approvals import MemoryApprovals, RedisApprovals


@pytest.fixture(params=["memory", "redis"])
def approvals(request):
    """Each implementation, empty."""
    if request.param == "memory":
        yield MemoryApprovals()
        return
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15)")
    store = RedisApprovals(url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    yield store
    for key in store._redis.scan_iter(f"{store._prefix}:*"):
        store._redis.delete(key)


def test_the_first_answer_wins_and_later_ones_are_told(approvals):
    assert approvals.answer(1, "step-1", True) is None  # nothing waits there
    approvals.open(1, "step-1", 60)
    assert approvals.waiting(1, "step-1") and approvals.result(1, "step-1") is None
    assert approvals.answer(1, "step-1", False) is True
    assert approvals.answer(1, "step-1", True) is False
    assert approvals.result(1, "step-1") is False and not approvals.waiting(1, "step-1")
    approvals.close(1, "step-1")
    assert approvals.answer(1, "step-1", True) is None and not approvals.waiting(1, "step-1")


def test_steps_are_apart(approvals):
    approvals.open(1, "step-1", 60)
    approvals.open(2, "step-1", 60)
    assert approvals.answer(2, "step-1", True) is True
    assert approvals.waiting(1, "step-1") and approvals.result(2, "step-1") is True
