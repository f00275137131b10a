"""Approvals of destructive tool steps: a step asks, the first answer from any tab (any process) wins.

In memory for one process; in Redis when REDIS_URL is set, so a tab connected to another process can answer. A
step that nobody answers in time is settled as declined by the waiting side, through the same first-answer-wins
write, so a late "approve" cannot run it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

OPEN_TTL_EXTRA = 120  # an approval's record outlives its deadline by this much (seconds), then Redis forgets it


class MemoryApprovals:
    """Approvals for a single process."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._answers: dict[tuple[int, str], bool | None] = {}

    def open(self, reply_id: int, step_id: str, seconds: float) -> None:
        """A step now waits for an answer (for at most `seconds`)."""
        with self._lock:
            self._answers[(reply_id, step_id)] = None

    def answer(self, reply_id: int, step_id: str, approve: bool) -> bool | None:
        """Record an answer: True if it was the first, False if one came first, None for no such open step."""
        with self._lock:
            key = (reply_id, step_id)
            if key not in self._answers:
                return None
            if self._answers[key] is not None:
                return False
            self._answers[key] = bool(approve)
            return True

    def result(self, reply_id: int, step_id: str) -> bool | None:
        """The winning answer, or None while there is none."""
        with self._lock:
            return self._answers.get((reply_id, step_id))

    def waiting(self, reply_id: int, step_id: str) -> bool:
        """Whether the step still waits for its first answer."""
        with self._lock:
            return (reply_id, step_id) in self._answers and self._answers[(reply_id, step_id)] is None

    def close(self, reply_id: int, step_id: str) -> None:
        """Forget a settled step."""
        with self._lock:
            self._answers.pop((reply_id, step_id), None)


class RedisApprovals:
    """Approvals shared by every process through Redis."""

    def __init__(self, url: str, prefix: str = "chatbotws") -> None:
        """Connect lazily to Redis at `url`."""
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def _key(self, reply_id: int, step_id: str) -> str:
        """The step's hash: `open` while it waits, `answer` once answered."""
        return f"{self._prefix}:approval:{reply_id}:{step_id}"

    def open(self, reply_id: int, step_id: str, seconds: float) -> None:
        """A step now waits for an answer (for at most `seconds`)."""
        key = self._key(reply_id, step_id)
        pipe = self._redis.pipeline()
        pipe.hset(key, "open", int(time.time()))
        pipe.expire(key, int(seconds) + OPEN_TTL_EXTRA)
        pipe.execute()

    def answer(self, reply_id: int, step_id: str, approve: bool) -> bool | None:
        """Record an answer: True if it was the first, False if one came first, None for no such open step."""
        key = self._key(reply_id, step_id)
        if not self._redis.hexists(key, "open"):
            return None
        return bool(self._redis.hsetnx(key, "answer", "1" if approve else "0"))

    def result(self, reply_id: int, step_id: str) -> bool | None:
        """The winning answer, or None while there is none."""
        value: Any = self._redis.hget(self._key(reply_id, step_id), "answer")
        return None if value is None else value == "1"

    def waiting(self, reply_id: int, step_id: str) -> bool:
        """Whether the step still waits for its first answer."""
        opened, answer = self._redis.hmget(self._key(reply_id, step_id), "open", "answer")
        return opened is not None and answer is None

    def close(self, reply_id: int, step_id: str) -> None:
        """Forget a settled step."""
        self._redis.delete(self._key(reply_id, step_id))


def make_approvals(redis_url: str | None, prefix: str = "chatbotws") -> MemoryApprovals | RedisApprovals:
    """The Redis approvals when REDIS_URL is set, else the in-memory ones."""
    return RedisApprovals(redis_url, prefix) if redis_url else MemoryApprovals()
