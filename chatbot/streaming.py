"""Pacing a streaming reply: coalesced, gap-free `bot_delta` events, and one pacer task per process.

The stream's own task sends the first piece at once and then at most one delta per window as text arrives. When the
upstream pauses, text already received must not wait for the next chunk: the pacer flushes it once its window has
passed, and it also applies stop requests made in other processes (a flag in the reply registry) to a stream that
is waiting on a silent upstream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("chatbot.streaming")

# How often the pacer looks for stop requests from other processes.
STOP_CHECK_SECONDS = 0.1


class ReplyOutbox:
    """One reply's coalescing buffer; `send(seq, text)` publishes a delta (log for resume, emit to the room)."""

    def __init__(self, reply_id: int, send: Callable[[int, str], None], window: float):
        """Start empty; deltas are numbered from 0."""
        self.reply_id = reply_id
        self.window = window
        self.seq = 0
        self.last_sent = 0.0
        self._send = send
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        """Buffer text; send now if it is the first piece or the window has passed."""
        with self._lock:
            self._pending.append(text)
            if self.seq == 0 or time.monotonic() - self.last_sent >= self.window:
                self._flush_locked()

    def flush(self, *, only_if_due: bool = False) -> None:
        """Send what is buffered (when `only_if_due`, only if its window has passed)."""
        with self._lock:
            if self._pending and (not only_if_due or time.monotonic() - self.last_sent >= self.window):
                self._flush_locked()

    def _flush_locked(self) -> None:
        """Send the buffer as the next delta (the lock keeps seq order across the stream task and the pacer)."""
        text = "".join(self._pending)
        self._pending.clear()
        self._send(self.seq, text)
        self.seq += 1
        self.last_sent = time.monotonic()


class Pacer:
    """A background task that runs while replies stream: flushes due text and applies remote stop requests."""

    def __init__(self, start_task: Callable, sleep: Callable[[float], None], window: float,
                 stop_requested: Callable[[int], bool]):
        """Use the async framework's `start_task`/`sleep`; `stop_requested(reply_id)` asks the registry."""
        self._start_task, self._sleep = start_task, sleep
        self._interval = window if window > 0 else 0.05
        self._stop_requested = stop_requested
        self._active: dict[int, tuple[ReplyOutbox, object]] = {}
        self._lock = threading.Lock()
        self._running = False

    def watch(self, box: ReplyOutbox, stream) -> None:
        """Pace `box` and watch its stream for stop requests until `forget`."""
        with self._lock:
            self._active[box.reply_id] = (box, stream)
            if self._running:
                return
            self._running = True
        self._start_task(self._run)

    def forget(self, reply_id: int) -> None:
        """The reply is over."""
        with self._lock:
            self._active.pop(reply_id, None)

    def _run(self) -> None:
        """Loop while any reply streams; exit when none does (the next reply starts it again)."""
        last_stop_check = 0.0
        while True:
            self._sleep(self._interval)
            with self._lock:
                if not self._active:
                    self._running = False
                    return
                active = list(self._active.values())
            check_stops = time.monotonic() - last_stop_check >= STOP_CHECK_SECONDS
            if check_stops:
                last_stop_check = time.monotonic()
            for box, stream in active:
                try:
                    box.flush(only_if_due=True)
                    if check_stops and self._stop_requested(box.reply_id):
                        stream.close()
                except Exception:  # one reply's trouble (e.g. Redis away) must not stop the pacing of the others
                    log.exception("reply=%s pacing failed", box.reply_id)
