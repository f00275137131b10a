"""Tools in the store: the tool ids a conversation's replies may use, and a reply's tool steps as they change
(every query owner-scoped; the steps are written by the process streaming the reply)."""

from __future__ import annotations

import sqlalchemy as sa

from .rows import NotFound, _valid_message_id, update_row
from .schema import conversations, messages

TOOLS_MAX = 64  # tool ids per conversation
TOOL_ID_MAX = 200


class ToolQueries:
    """Tool settings and steps (mixed into Store, which provides `_transaction` and `_owned_conversation`)."""

    def set_conversation_tools(self, owner_id: str, conversation_id: str, tools: list[str]) -> None:
        """Set the tool ids one of the owner's conversations may use ([] or None: none); NotFound if not theirs."""
        tools = list(dict.fromkeys(tools or []))
        if len(tools) > TOOLS_MAX or any(not isinstance(t, str) or not 0 < len(t) <= TOOL_ID_MAX for t in tools):
            raise ValueError(f"tools must be at most {TOOLS_MAX} ids of at most {TOOL_ID_MAX} characters")
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id)
                         .values(tools=tools or None))

    def checkpoint_tools(self, reply_id: int, steps: list[dict]) -> None:
        """Store a streaming reply's tool steps so far (their latest state); NotFound if the reply is gone."""
        if not _valid_message_id(reply_id):
            raise NotFound(reply_id)
        with self._transaction() as conn:
            if update_row(conn, messages, reply_id, tools=steps or None).rowcount == 0:
                raise NotFound(reply_id)
