"""Messages: one by id, by client_id, the reply after a message, and recovery of dead streams (the writes are the turn
path's, in turns.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .rows import _MESSAGE_COLUMNS, NotFound, _is_client_id, _message, _now, _seconds, _valid_id, _valid_message_id
from .schema import conversations, messages


class MessageQueries:
    """Message queries (mixed into Store, which provides `_transaction` and `_owned_conversation`)."""

    # messages

    def _find_by_client_id(self, conn: Connection, conversation_id: str, client_id: str) -> sa.Row | None:
        """Return the conversation's message carrying client_id, if any."""
        query = sa.select(*_MESSAGE_COLUMNS).where(
            messages.c.conversation_id == conversation_id, messages.c.client_id == client_id
        )
        return conn.execute(query).first()

    def find_client_message(self, owner_id: str, conversation_id: str, client_id: str) -> dict | None:
        """Return the conversation's message sent with client_id, or None; NotFound if not the owner's."""
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            if not _is_client_id(client_id):
                return None
            row = self._find_by_client_id(conn, conversation_id, client_id)
        return None if row is None else _message(row)

    def reply_after(self, message_id: int) -> dict | None:
        """Return the first reply to message_id (its oldest child, if that is a reply), or None."""
        if not _valid_message_id(message_id):
            return None
        query = sa.select(*_MESSAGE_COLUMNS).where(messages.c.parent_id == message_id).order_by(messages.c.id).limit(1)
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        return _message(row) if row is not None and row.role == "assistant" else None

    def _owner_conversation_ids(self, owner_id: str) -> sa.Select:
        """Select the ids of the owner's conversations, to scope statements on messages."""
        return sa.select(conversations.c.id).where(conversations.c.owner_id == owner_id)

    def get_message(self, owner_id: str, message_id: int) -> dict:
        """Return one of the owner's messages; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_message_id(message_id)):
            raise NotFound(message_id)
        query = sa.select(*_MESSAGE_COLUMNS).where(
            messages.c.id == message_id,
            messages.c.conversation_id.in_(self._owner_conversation_ids(owner_id)),
        )
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(message_id)
        return _message(row)

    def interrupt_streaming(self, *, stale_after: float | None = None) -> int:
        """Mark replies left "streaming" as "interrupted" and return how many.

        By default every one (a single process at start-up); with stale_after, only those not checkpointed for
        that many seconds, so a process starting next to live ones leaves their replies alone.
        """
        query = sa.update(messages).where(messages.c.status == "streaming")
        if stale_after is not None:
            query = query.where(messages.c.updated_at < _now() - _seconds(stale_after, "stale_after"))
        with self._transaction() as conn:
            return conn.execute(query.values(status="interrupted", updated_at=_now())).rowcount
