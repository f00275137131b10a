"""The in-flight reply registry: who is busy, the delta log for resume, and stop flags.

In memory for one process; in Redis when REDIS_URL is set, so every process sees the same replies.
No Flask imports.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

# How long a finished reply stays resumable from the registry; later the store answers.
FINISHED_TTL = 300.0
# A reservation whose process died expires this long after its last heartbeat (sent at every checkpoint).
RESERVATION_TTL = 90.0


class Replies(Protocol):
    """What the engine needs of a reply registry (MemoryReplies in one process, RedisReplies across several)."""

    def reserve(self, conversation_id: str, owner_id: str, max_per_owner: int) -> str | None:
        """Claim the conversation for one reply: None, or why not (`busy`, `too_many`)."""

    def begin(self, reply_id: int, conversation_id: str, owner_id: str) -> None:
        """Record a reply that starts streaming in a claimed conversation."""

    def heartbeat_many(self, replies: list[tuple[int, str]]) -> None:
        """Keep these (reply id, conversation id) claims alive."""

    def release(self, conversation_id: str, owner_id: str) -> None:
        """Give a conversation's claim back."""

    def active(self, conversation_id: str) -> int | None:
        """The reply streaming in a conversation, if any."""

    def append(self, reply_id: int, seq: int, text: str, kind: str = "text") -> None:
        """Log one delta (`text` or `reasoning`) for resume."""

    def finish(self, reply_id: int, final: dict[str, Any]) -> None:
        """Record a reply's final message."""

    def since(self, reply_id: int, after_seq: int, kind: str = "text") -> tuple[list[str], dict | None] | None:
        """The deltas after `after_seq` and the final message, or None when the registry no longer knows it."""

    def owner_of(self, reply_id: int) -> tuple[str, str] | None:
        """(owner id, conversation id) of a known reply."""

    def request_stop(self, reply_id: int) -> None:
        """Ask the process streaming a reply to stop it."""

    def stop_requested(self, reply_id: int) -> bool:
        """Whether a stop was asked for."""

    def in_flight(self) -> int:
        """How many replies are streaming now."""


@dataclass
class ReplyState:
    """What the registry knows of one reply."""

    owner_id: str
    conversation_id: str
    deltas: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # each `bot_tool` step as JSON, in seq order
    final: dict[str, Any] | None = None
    stop: bool = False
    finished_at: float | None = None


class MemoryReplies:
    """Reply registry for a single process."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._replies: dict[int, ReplyState] = {}
        self._busy: dict[str, int] = {}
        self._per_owner: dict[str, int] = {}

    def reserve(self, conversation_id: str, owner_id: str, max_per_owner: int) -> str | None:
        """Claim the conversation for a new reply; returns None, or 'busy' / 'too_many' when refused."""
        with self._lock:
            self._expire()
            if conversation_id in self._busy:
                return "busy"
            if self._per_owner.get(owner_id, 0) >= max_per_owner:
                return "too_many"
            self._busy[conversation_id] = 0
            self._per_owner[owner_id] = self._per_owner.get(owner_id, 0) + 1
            return None

    def begin(self, reply_id: int, conversation_id: str, owner_id: str) -> None:
        """Record that `reply_id` now streams in the reserved conversation."""
        with self._lock:
            self._busy[conversation_id] = reply_id
            self._replies[reply_id] = ReplyState(owner_id, conversation_id)

    def heartbeat_many(self, replies: list[tuple[int, str]]) -> None:
        """The replies [(reply id, conversation id)] are alive (nothing to do in one process: it cannot die without
        the registry)."""

    def release(self, conversation_id: str, owner_id: str) -> None:
        """Free a reservation that never began (the user message could not be stored)."""
        with self._lock:
            if self._busy.get(conversation_id) == 0:
                del self._busy[conversation_id]
                self._uncount(owner_id)

    def _uncount(self, owner_id: str) -> None:
        """One reservation of the owner ended (called with the lock held)."""
        left = self._per_owner.get(owner_id, 1) - 1
        if left > 0:
            self._per_owner[owner_id] = left
        else:
            self._per_owner.pop(owner_id, None)

    def active(self, conversation_id: str) -> int | None:
        """The reply streaming in a conversation, if any."""
        with self._lock:
            return self._busy.get(conversation_id) or None

    def append(self, reply_id: int, seq: int, text: str, kind: str = "text") -> None:
        """Log delta `seq` of a reply's answer (kind "text"), reasoning ("reasoning") or tool steps ("tool", JSON);
        seq is its index."""
        with self._lock:
            _log_of(self._replies[reply_id], kind).append(text)

    def finish(self, reply_id: int, final: dict[str, Any]) -> None:
        """Mark the reply done with its final payload and free its conversation."""
        with self._lock:
            state = self._replies[reply_id]
            state.final, state.finished_at = final, time.monotonic()
            if self._busy.get(state.conversation_id) == reply_id:
                del self._busy[state.conversation_id]
                self._uncount(state.owner_id)

    def since(self, reply_id: int, after_seq: int, kind: str = "text") -> tuple[list[str], dict | None] | None:
        """(deltas of `kind` after `after_seq`, final or None), or None when the registry has no such reply."""
        with self._lock:
            state = self._replies.get(reply_id)
            if state is None:
                return None
            return _log_of(state, kind)[max(after_seq + 1, 0) :], state.final

    def owner_of(self, reply_id: int) -> tuple[str, str] | None:
        """(owner, conversation) of a reply the registry knows, else None."""
        with self._lock:
            state = self._replies.get(reply_id)
            return (state.owner_id, state.conversation_id) if state else None

    def request_stop(self, reply_id: int) -> None:
        """Ask the process streaming the reply to stop it."""
        with self._lock:
            if reply_id in self._replies:
                self._replies[reply_id].stop = True

    def stop_requested(self, reply_id: int) -> bool:
        """Whether someone asked to stop the reply."""
        with self._lock:
            state = self._replies.get(reply_id)
            return bool(state and state.stop)

    def in_flight(self) -> int:
        """How many replies are streaming now."""
        with self._lock:
            return sum(1 for reply_id in self._busy.values() if reply_id)

    def _expire(self) -> None:
        """Forget finished replies older than FINISHED_TTL (called with the lock held)."""
        cutoff = time.monotonic() - FINISHED_TTL
        for reply_id in [r for r, s in self._replies.items() if s.finished_at and s.finished_at < cutoff]:
            del self._replies[reply_id]


def _log_of(state: ReplyState, kind: str) -> list[str]:
    """A reply's log of one kind of delta."""
    return state.reasoning if kind == "reasoning" else state.tools if kind == "tool" else state.deltas


# The Redis list that logs each kind of delta.
_LOG_KEYS = {"text": "deltas", "reasoning": "reasoning", "tool": "tools"}


class RedisReplies:
    """Reply registry shared by every process through Redis."""

    def __init__(self, url: str, prefix: str = "chatbotws") -> None:
        """Connect lazily to Redis at `url`."""
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def _key(self, *parts: Any) -> str:
        """Build a namespaced key."""
        return ":".join([self._prefix, *map(str, parts)])

    def reserve(self, conversation_id: str, owner_id: str, max_per_owner: int) -> str | None:
        """Claim the conversation for a new reply; returns None, or 'busy' / 'too_many' when refused."""
        if not self._redis.set(self._key("busy", conversation_id), 0, nx=True, ex=int(RESERVATION_TTL)):
            return "busy"
        owner_key = self._key("owner", owner_id)
        count = self._redis.incr(owner_key)
        self._redis.expire(owner_key, int(RESERVATION_TTL))
        if count > max_per_owner:
            self._redis.decr(owner_key)
            self._redis.delete(self._key("busy", conversation_id))
            return "too_many"
        return None

    def begin(self, reply_id: int, conversation_id: str, owner_id: str) -> None:
        """Record that `reply_id` now streams in the reserved conversation."""
        pipe = self._redis.pipeline()
        pipe.set(self._key("busy", conversation_id), reply_id, ex=int(RESERVATION_TTL))
        pipe.hset(self._key("reply", reply_id), mapping={"owner": owner_id, "conversation": conversation_id})
        pipe.expire(self._key("reply", reply_id), int(RESERVATION_TTL))
        pipe.execute()

    def heartbeat_many(self, replies: list[tuple[int, str]]) -> None:
        """Keep the reservations and logs of the replies [(reply id, conversation id)] alive, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for reply_id, conversation_id in replies:
            for key in (self._key("busy", conversation_id), self._key("reply", reply_id),
                        *(self._key(name, reply_id) for name in _LOG_KEYS.values())):
                pipe.expire(key, int(RESERVATION_TTL))
        pipe.execute()

    def release(self, conversation_id: str, owner_id: str) -> None:
        """Free a reservation that never began."""
        key = self._key("busy", conversation_id)
        if self._redis.get(key) == "0" and self._redis.delete(key):
            self._redis.decr(self._key("owner", owner_id))

    def active(self, conversation_id: str) -> int | None:
        """The reply streaming in a conversation, if any."""
        value = self._redis.get(self._key("busy", conversation_id))
        return int(value) if value and value != "0" else None

    def append(self, reply_id: int, seq: int, text: str, kind: str = "text") -> None:
        """Log delta `seq` of a reply's answer (kind "text"), reasoning ("reasoning") or tool steps ("tool")."""
        key = self._key(_LOG_KEYS.get(kind, "deltas"), reply_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(key, text)
        if seq == 0:
            pipe.expire(key, int(RESERVATION_TTL))
        pipe.execute()

    def finish(self, reply_id: int, final: dict[str, Any]) -> None:
        """Mark the reply done with its final payload and free its conversation."""
        info = self._redis.hgetall(self._key("reply", reply_id))
        pipe = self._redis.pipeline()
        pipe.hset(self._key("reply", reply_id), "final", json.dumps(final))
        for key in (self._key("reply", reply_id), *(self._key(name, reply_id) for name in _LOG_KEYS.values())):
            pipe.expire(key, int(FINISHED_TTL))
        if info:
            pipe.delete(self._key("busy", info["conversation"]))
            pipe.decr(self._key("owner", info["owner"]))
        pipe.execute()

    def since(self, reply_id: int, after_seq: int, kind: str = "text") -> tuple[list[str], dict | None] | None:
        """(deltas of `kind` after `after_seq`, final or None), or None when the registry has no such reply."""
        pipe = self._redis.pipeline()
        pipe.hgetall(self._key("reply", reply_id))
        pipe.lrange(self._key(_LOG_KEYS.get(kind, "deltas"), reply_id), max(after_seq + 1, 0), -1)
        info, deltas = pipe.execute()
        if not info:
            return None
        final = json.loads(info["final"]) if "final" in info else None
        return deltas, final

    def owner_of(self, reply_id: int) -> tuple[str, str] | None:
        """(owner, conversation) of a reply the registry knows, else None."""
        owner, conversation = self._redis.hmget(self._key("reply", reply_id), "owner", "conversation")
        return (owner, conversation) if owner else None

    def request_stop(self, reply_id: int) -> None:
        """Ask the process streaming the reply to stop it."""
        self._redis.set(self._key("stop", reply_id), 1, ex=int(RESERVATION_TTL))

    def stop_requested(self, reply_id: int) -> bool:
        """Whether someone asked to stop the reply."""
        return bool(self._redis.exists(self._key("stop", reply_id)))

    def in_flight(self) -> int:
        """How many replies are streaming now (approximate across processes)."""
        return sum(1 for _ in self._redis.scan_iter(self._key("busy", "*"), count=1000))

    def ping(self) -> bool:
        """Whether Redis answers."""
        return bool(self._redis.ping())


def make_replies(redis_url: str | None, prefix: str = "chatbotws") -> Replies:
    """The Redis registry when REDIS_URL is set, else the in-memory one."""
    return RedisReplies(redis_url, prefix) if redis_url else MemoryReplies()
