"""Tools in the engine: a reply's steps on the wire (numbered `bot_tool`, logged for resume, stored as they change),
approvals asked of the conversation's tabs, and the work of the tool events (list, choose, approve, resume).

The tool loop itself is `chatbot.tools`; this module connects it to the rooms, the reply registry and the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from ..protocol import ChatError
from .rooms import conversation_room, owner_room

log = logging.getLogger("chatbot.tools")


class ReplySteps:
    """One reply's tool steps as the conversation's tabs see them: `emit(step)` and `ask(approval)` for the loop."""

    def __init__(self, reply_id: int, conversation_id: str, *, replies, socketio, store):
        """Number this reply's steps from 0."""
        self.reply_id, self.room = reply_id, conversation_room(conversation_id)
        self.replies, self.socketio, self.store = replies, socketio, store
        self.seq = 0
        self.steps: dict[str, dict] = {}

    def emit(self, step: dict) -> None:
        """One change of a step: logged for resume, sent to the room as `bot_tool`, and stored with the reply."""
        seq, self.seq = self.seq, self.seq + 1
        self.replies.append(self.reply_id, seq, json.dumps(step), "tool")
        self.socketio.emit("bot_tool", {"reply_id": self.reply_id, "seq": seq, "step": step}, to=self.room)
        self.steps[step["id"]] = step
        try:
            # Steps are few (two writes per call), so each change is stored at once rather than at the next beat.
            self.store.checkpoint_tools(self.reply_id, list(self.steps.values()))
        except Exception:
            log.exception("reply=%s could not store its tool steps", self.reply_id)

    def ask(self, approval: dict) -> None:
        """A destructive step waits: every tab showing the conversation is asked."""
        self.socketio.emit("tool_approval", approval, to=self.room)

    def final(self) -> list[dict] | None:
        """Every step in its last state, or None when the reply used no tools."""
        return list(self.steps.values()) or None


class ToolActions:
    """The tool events' work, for the edges: list the tools, store a conversation's choice, answer approvals."""

    def __init__(self, tools, *, store, provider, replies, socketio, state: Callable):
        """Work with the tool service, store, provider, reply registry and sockets (`state(sid)` of a socket)."""
        self.tools, self.store, self.provider = tools, store, provider
        self.replies, self.socketio, self.state = replies, socketio, state

    def list_tools(self, sid: str, conversation_id: str | None) -> dict:
        """The tools the conversation's (else the socket's conversation's) provider and model can use."""
        state = self.state(sid)
        conversation = self.store.get_conversation(state.owner_id, conversation_id or state.conversation_id)
        return {"ok": True, **self.tools.list_tools(self.provider, conversation["model"] or self.provider.model)}

    def choose(self, sid: str, conversation_id: str, tool_ids: list[str] | None) -> dict:
        """Store which tools a conversation's replies may use (None: no change); every tab gets the changed
        conversation."""
        state = self.state(sid)
        if tool_ids is None:
            return {"ok": True, "conversation": self.store.get_conversation(state.owner_id, conversation_id)}
        choice = self.tools.choice(tool_ids)
        self.store.set_conversation_tools(state.owner_id, conversation_id, choice)
        conversation = self.store.get_conversation(state.owner_id, conversation_id)
        self.socketio.emit("conversation_updated", {"conversation": conversation}, to=owner_room(state.owner_id))
        return {"ok": True, "conversation": conversation}

    def approve(self, sid: str, reply_id: int, step_id: str, approve: bool) -> dict:
        """A tab's answer to a waiting step of one of the session's replies; the first answer wins."""
        state = self.state(sid)
        owner = self.replies.owner_of(reply_id)
        if owner is None or owner[0] != state.owner_id:
            raise ChatError("not_found", "No step of that reply is waiting for approval.")
        return {"ok": True, "first": self.tools.answer(reply_id, step_id, approve)}

    def resume(self, sid: str, reply_id: int, after_tool_seq: int) -> None:
        """Re-send a reply's steps after `after_tool_seq`, and ask again for every approval still waiting."""
        known = self.replies.since(reply_id, -1, "tool")
        if known is None:
            return
        latest: dict[str, dict] = {}
        for seq, text in enumerate(known[0]):
            step = json.loads(text)
            latest[step["id"]] = step
            if seq > after_tool_seq:
                self.socketio.emit("bot_tool", {"reply_id": reply_id, "seq": seq, "step": step}, to=sid)
        if known[1] is not None:
            return
        for step in latest.values():
            if step["status"] == "running" and self.tools.waiting(reply_id, step["id"]):
                self.socketio.emit("tool_approval", {"reply_id": reply_id, "step_id": step["id"],
                                                     "name": step["name"], "input": step["input"]}, to=sid)
