"""Batched checkpoints: one background task per process stores the text so far of every streaming reply in one
transaction per beat (and keeps their registry reservations alive in one round trip), instead of one write per
reply per second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .beat import Beat


@dataclass
class LiveReply:
    """A reply streaming in this process: its text so far, as the pump appends it."""

    reply_id: int
    conversation_id: str
    owner_id: str
    user_id: str | None = None  # the account whose usage the reply counts to
    parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    saved: tuple[int, int] = (0, 0)  # how many parts of each were in the last checkpoint

    def text(self) -> str:
        """The answer so far."""
        return "".join(self.parts)

    def reasoning(self) -> str | None:
        """The reasoning so far, if any."""
        return "".join(self.reasoning_parts) or None


class Checkpointer:
    """Every `interval` seconds while replies stream: one store transaction and one registry heartbeat for all."""

    def __init__(self, store, replies, start_task: Callable, sleep: Callable[[float], None], interval: float):
        """Use the store's `checkpoint_many`, the registry's `heartbeat_many`, and the async framework's task/sleep."""
        self._store, self._replies = store, replies
        self._beat = Beat(start_task, sleep, interval, self.beat, "checkpoint")
        self.beats = 0  # checkpoint transactions written (for tests and metrics)

    def track(self, live: LiveReply) -> None:
        """Checkpoint `live` on every beat until `forget`."""
        self._beat.add(live.reply_id, live)

    def forget(self, reply_id: int) -> None:
        """The reply is over (its final state is written by the pump)."""
        self._beat.remove(reply_id)

    def beat(self, live: list[LiveReply]) -> None:
        """Write the replies whose text grew since their last checkpoint, and heartbeat every one of them."""
        changed = []
        for reply in live:
            counts = (len(reply.parts), len(reply.reasoning_parts))
            if counts != reply.saved:
                changed.append((reply, counts))
        if changed:
            self._store.checkpoint_many([(r.reply_id, r.text(), r.reasoning()) for r, _ in changed])
            for reply, counts in changed:
                reply.saved = counts
            self.beats += 1
        self._replies.heartbeat_many([(r.reply_id, r.conversation_id) for r in live])
