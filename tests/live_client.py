"""A real Socket.IO client (python-socketio over websocket) that records every event and can wait for one."""

from __future__ import annotations

import threading

import socketio

EVENTS = ("session_id", "history", "conversations", "bot_message", "bot_start", "bot_delta", "bot_status",
          "error", "user_message_echo", "conversation_updated", "bot_reasoning", "bot_tool", "tool_approval")


class LiveClient:
    """Connects to a running server and records what it receives, in order."""

    def __init__(self, url: str, token: str | None = None, *, transports=("websocket",), headers=None):
        """Connect to `url` (with `token` in the Socket.IO auth when given)."""
        self.url = url
        self.events: list[tuple[str, object]] = []
        self._changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        for name in EVENTS:
            self.sio.on(name, self._recorder(name))
        self.sio.connect(url, transports=list(transports), auth={"token": token} if token else None,
                         headers=headers or {}, wait_timeout=10)

    def _recorder(self, name: str):
        """A handler that records event `name`."""

        def record(data=None):
            with self._changed:
                self.events.append((name, data))
                self._changed.notify_all()

        return record

    def of(self, name: str) -> list:
        """Payloads of every `name` event so far."""
        with self._changed:
            return [data for event, data in self.events if event == name]

    def wait(self, name: str, predicate=lambda data: True, timeout: float = 15.0):
        """Block until an event `name` matching `predicate` has arrived; return its payload."""
        def match():
            return next((data for event, data in self.events if event == name and predicate(data)), None)

        with self._changed:
            if not self._changed.wait_for(lambda: match() is not None, timeout):
                raise AssertionError(f"no {name!r} matched within {timeout} s; got {self.events!r}")
            return match()

    def call(self, event: str, payload=None, timeout: float = 15.0):
        """Emit `event` and return its ack."""
        return self.sio.call(event, payload if payload is not None else {}, timeout=timeout)

    def text_of(self, reply_id: int, after_seq: int = -1) -> str:
        """The reply's text from the deltas received, in seq order, each seq once (as a browser applies them)."""
        pieces = {d["seq"]: d["text"] for d in self.of("bot_delta") if d["reply_id"] == reply_id}
        seqs = sorted(s for s in pieces if s > after_seq)
        assert seqs == list(range(after_seq + 1, after_seq + 1 + len(seqs))), f"gap in seqs {seqs}"
        return "".join(pieces[s] for s in seqs)

    def final(self, reply_id: int, timeout: float = 15.0) -> dict:
        """Wait for the final `bot_message` of a reply."""
        return self.wait("bot_message", lambda d: d.get("reply_id") == reply_id, timeout)

    def close(self) -> None:
        """Disconnect (quietly if already gone)."""
        try:
            self.sio.disconnect()
        except Exception:
            pass
