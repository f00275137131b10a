"""Pacing a streaming reply: coalesced, gap-free `bot_delta` events, and one pacer task per process.

The stream's own task sends the first piece at once, then at most one delta per window, when its read of the upstream
had to wait (it is caught up); between deltas it sleeps out the window so that the next chunks gather in the socket
buffer and one wake-up reads them all. When the upstream pauses, text already received must not wait for the next
chunk: the pacer flushes it, and it also applies stop requests made in other processes (a flag in the reply
registry) to a stream that is waiting on a silent upstream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .beat import Beat

log = logging.getLogger("chatbot.streaming")

# How often the pacer flushes text left waiting by a silent upstream and looks for remote stop requests.
PACER_INTERVAL = 0.1


class ReplyOutbox:
    """One reply's coalescing buffer; `send(seq, text)` publishes a delta (log for resume, emit to the room)."""

    def __init__(self, reply_id: int, send: Callable[[int, str], None], window: float,
                 clock: Callable[[], float] = time.monotonic):
        """Start empty; deltas are numbered from 0."""
        self.reply_id = reply_id
        self.window = window
        self.seq = 0
        self.last_sent = 0.0
        self._send = send
        self._clock = clock
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: str, *, caught_up: bool = True) -> bool:
        """Buffer text; send it if it is the first piece, or if the window has passed and the reader is caught up
        (its last read had to wait for the network) or has been behind for two windows. True when sent."""
        with self._lock:
            self._pending.append(text)
            age = self._clock() - self.last_sent
            if self.seq == 0 or (age >= self.window and caught_up) or age >= 2 * self.window:
                self._flush_locked()
                return True
            return False

    def flush(self, *, only_if_due: bool = False) -> None:
        """Send what is buffered (when `only_if_due`, only if its window has passed)."""
        with self._lock:
            if self._pending and (not only_if_due or self._clock() - self.last_sent >= self.window):
                self._flush_locked()

    def _flush_locked(self) -> None:
        """Send the buffer as the next delta (the lock keeps seq order across the stream task and the pacer)."""
        text = "".join(self._pending)
        self._pending.clear()
        self._send(self.seq, text)
        self.seq += 1
        self.last_sent = self._clock()


class Pacer:
    """A background task that runs while replies stream: flushes due text and applies remote stop requests."""

    def __init__(self, start_task: Callable, sleep: Callable[[float], None], stop_requested: Callable[[int], bool]):
        """Use the async framework's `start_task`/`sleep`; `stop_requested(reply_id)` asks the registry."""
        self._stop_requested = stop_requested
        # Text waits for the pacer only while the upstream is silent, so a coarser beat than the window is enough
        # and keeps this task's wake-ups (and their CPU) low while many replies stream.
        self._beat = Beat(start_task, sleep, PACER_INTERVAL, self._pace, "pacing")

    def watch(self, box: ReplyOutbox, stream, *more: ReplyOutbox) -> None:
        """Pace `box` (and a reply's other outboxes, e.g. its reasoning) and watch its stream for stop requests until
        `forget`."""
        self._beat.add(box.reply_id, ((box, *more), stream))

    def forget(self, reply_id: int) -> None:
        """The reply is over."""
        self._beat.remove(reply_id)

    def _pace(self, active: list) -> None:
        """One beat: flush what is due in every outbox and close streams whose stop was asked for elsewhere."""
        for boxes, stream in active:
            try:
                for box in boxes:
                    box.flush(only_if_due=True)
                if self._stop_requested(boxes[0].reply_id):
                    stream.close()
            except Exception:  # one reply's trouble (e.g. Redis away) must not stop the pacing of the others
                log.exception("reply=%s pacing failed", boxes[0].reply_id)
