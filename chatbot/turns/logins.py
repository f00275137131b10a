"""Live logins: every PING_INTERVAL, one read of the login generations of this process's signed-in sockets, and
the sockets of an account that was disabled, deleted or signed out everywhere since they connected are dropped.
With several processes each one sweeps its own sockets."""

from __future__ import annotations

import logging

from ..protocol import ChatError
from .starter import TurnStarter

log = logging.getLogger("chatbot.logins")


class LoginWatch:
    """Drops sockets whose login has ended; `sweep` runs on a timer and right after a change in this process."""

    def __init__(self, turns: TurnStarter):
        """Work on the TurnStarter's sockets, store and Socket.IO server."""
        self.turns = turns

    def sweep(self) -> int:
        """Disconnect every signed-in socket whose account is no longer active at the generation it connected with;
        return how many were dropped."""
        sockets = [(sid, state) for sid, state in list(self.turns.sockets.items()) if state.user_id is not None]
        if not sockets:
            return 0
        current = self.turns.store.login_states([state.user_id for _, state in sockets])
        dropped = 0
        for sid, state in sockets:
            if current.get(state.user_id) != ("active", state.generation):
                self._drop(sid)
                dropped += 1
        return dropped

    def loop(self) -> None:
        """Forever: sweep once per ping round (run as a background task)."""
        while True:
            self.turns.socketio.sleep(self.turns.settings["PING_INTERVAL"])
            try:
                self.sweep()
            except Exception:  # a failed sweep (database away) must not end the watch for good
                log.exception("login sweep failed")

    def _drop(self, sid: str) -> None:
        """Tell the socket why, then disconnect it (its replies still finish and are stored)."""
        error = ChatError("auth_required", "You were signed out. Please sign in again.")
        # The socket is this process's own: straight to it, so the reason arrives before the disconnect does
        # (through a message queue it could come after).
        self.turns.socketio.emit("error", error.payload(), to=sid, ignore_queue=True)
        self.turns.forget(sid)
        self.turns.socketio.server.disconnect(sid)
        log.info("event=signed_out sid=%s dropped", sid)
