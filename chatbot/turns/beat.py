"""A beat: one background task per process that wakes every `interval` while it has something to do, and ends when
it has nothing (the next `add` starts it again). The pacer and the checkpointer each run on one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("chatbot.beat")


class Beat:
    """Calls `on_beat(values)` every `interval` seconds while any entry is held; entries are keyed by reply id."""

    def __init__(self, start_task: Callable, sleep: Callable[[float], None], interval: float,
                 on_beat: Callable[[list], None], what: str):
        """Use the async framework's `start_task`/`sleep`; `what` names the beat in the log."""
        self._start_task, self._sleep, self._interval = start_task, sleep, interval
        self._on_beat, self._what = on_beat, what
        self._entries: dict[int, object] = {}
        self._lock = threading.Lock()
        self._running = False

    def add(self, key: int, value: object) -> None:
        """Hold `value` under `key` until `remove`, starting the task if it is not running."""
        with self._lock:
            self._entries[key] = value
            if self._running:
                return
            self._running = True
        self._start_task(self._run)

    def remove(self, key: int) -> None:
        """Stop holding `key`."""
        with self._lock:
            self._entries.pop(key, None)

    def _run(self) -> None:
        """Loop while anything is held; exit when nothing is."""
        while True:
            self._sleep(self._interval)
            with self._lock:
                if not self._entries:
                    self._running = False
                    return
                values = list(self._entries.values())
            try:
                self._on_beat(values)
            except Exception:  # one failed beat (database or Redis away) must not end the task for good
                log.exception("%s beat over %d replies failed", self._what, len(values))
