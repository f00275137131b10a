"""Versions of a conversation: edit a sent message (a new sibling and its reply), regenerate a reply (the old one
stays as an earlier version), and switch the path a conversation shows. Each ends with a new `history` for every tab
showing the conversation."""

from __future__ import annotations

import chatbot.protocol as protocol

from ..protocol import ChatError
from .context import CONTEXT_MESSAGES
from .rooms import conversation_room
from .starter import TurnStarter

# A switch holds its conversation only for its one transaction, whatever else of the session is streaming.
_NO_REPLY_CAP = 2**31


class BranchService:
    """Edits, regenerations and version switches; works through the shared TurnStarter's store, sockets and pump."""

    def __init__(self, turns: TurnStarter):
        """Work through the engine's shared TurnStarter."""
        self.turns = turns
        self.store, self.replies, self.settings = turns.store, turns.replies, turns.settings

    def edit(self, sid: str, message_id: int, text: str, client_id: str | None,
             attachments: list[str] | None = None) -> dict:
        """Store `text` as a new version of one of the session's user messages and stream its reply; returns the ack.
        The new version carries `attachments` when given, else the same files as the old one. Busy and idempotency
        as for a user message."""
        state = self.turns.saved(sid)
        original = self.store.get_message(state.owner_id, message_id)  # NotFound for a foreign or unknown id
        if original["role"] != "user":
            raise ChatError("invalid_message", "Only your own messages can be edited.")
        conversation_id = original["conversation_id"]
        if attachments is None:
            files = self.turns.attachments.files_of(state.owner_id, original)
        else:
            files = self.turns.check_files(state, conversation_id, attachments)
        turn, ack = self.turns.take_turn(sid, state, conversation_id, text, client_id, edit_of=message_id)
        if turn is not None:
            self.turns.attachments.attach(state.owner_id, turn, files)
            self.turns.start_reply(state, turn)
            self._show(conversation_id, turn.page, turn.more)
        return ack

    def regenerate(self, sid: str, conversation_id: str | None) -> dict:
        """Stream a new version of the last reply of a conversation (the old one is kept); returns the ack."""
        state = self.turns.saved(sid)
        conversation_id = conversation_id or state.conversation_id
        self.turns.reserve(state, conversation_id)
        # Each one is one more upstream request: limits and quota as for a message.
        with self.turns.claimed(state, conversation_id) as quota:
            turn = self.store.begin_regenerate(state.owner_id, conversation_id, context_limit=CONTEXT_MESSAGES,
                                               page_size=self.settings["HISTORY_PAGE"], quota=quota)
        self.turns.limiter.count_message(state.owner_id, state.ip)
        self.turns.join_conversation(sid, state, conversation_id)
        self.turns.start_reply(state, turn)
        self._show(conversation_id, turn.page, turn.more)
        return {"ok": True, "reply_id": turn.reply["id"], "conversation_id": conversation_id}

    def switch(self, sid: str, message_id: int) -> dict:
        """Make the newest path under one of the session's messages active and show it in this socket; every tab
        showing that conversation gets the new `history`. Refused as busy while a reply streams there."""
        state = self.turns.saved(sid)
        conversation_id = self.store.get_message(state.owner_id, message_id)["conversation_id"]  # NotFound
        # Held like a turn, so that no reply can start on the path being left while the switch writes.
        if self.replies.reserve(conversation_id, state.owner_id, _NO_REPLY_CAP):
            raise ChatError("busy")
        try:
            branch = self.store.switch_branch(state.owner_id, message_id, self.settings["HISTORY_PAGE"])
        finally:
            self.replies.release(conversation_id, state.owner_id)
        self.turns.join_conversation(sid, state, conversation_id)
        self._show(conversation_id, branch.messages, branch.more)
        return {"ok": True, "conversation_id": conversation_id, "message_id": message_id, "leaf_id": branch.leaf_id}

    def _show(self, conversation_id: str, page: list[dict], more: bool) -> None:
        """Send the conversation's new path to every socket showing it."""
        self.turns.socketio.emit("history", protocol.history(conversation_id, page, more,
                                                            reasoning=self.turns.show_reasoning),
                                to=conversation_room(conversation_id))
