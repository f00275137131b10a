"""Messages: add (idempotent by client_id, after the active leaf), checkpoint, read, delete, and recovery of dead
streams."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .rows import (
    _MESSAGE_COLUMNS,
    DEFAULT_TITLE,
    ROLES,
    STATUSES,
    NotFound,
    _check_text,
    _clean_stream_text,
    _is_client_id,
    _iso,
    _message,
    _now,
    _seconds,
    _title_from_content,
    _valid_id,
    _valid_message_id,
    update_row,
)
from .schema import CLIENT_ID_MAX, MESSAGE_FIELDS, conversations, messages
from .tree import active_leaf


class MessageQueries:
    """Message queries (mixed into Store, which provides `_transaction` and `_owned_conversation`)."""

    # messages

    def _find_by_client_id(self, conn: Connection, conversation_id: str, client_id: str) -> sa.Row | None:
        """Return the conversation's message carrying client_id, if any."""
        query = sa.select(*_MESSAGE_COLUMNS).where(
            messages.c.conversation_id == conversation_id, messages.c.client_id == client_id
        )
        return conn.execute(query).first()

    def add_message(
        self,
        owner_id: str,
        conversation_id: str,
        role: str,
        content: str,
        *,
        status: str = "complete",
        client_id: str | None = None,
    ) -> tuple[dict, bool]:
        """Store a message after the conversation's active leaf (it becomes the new one) and return (message,
        created); a known client_id returns the stored one instead."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}")
        content = _check_text(content, "content")
        if client_id is not None and not _is_client_id(client_id):
            raise ValueError(f"client_id must be a string of 1 to {CLIENT_ID_MAX} characters")
        now = _now()
        row = {
            "conversation_id": conversation_id, "role": role, "content": content, "reasoning": None,
            "status": status, "created_at": now, "updated_at": now, "client_id": client_id, "usage": None,
            "finish_reason": None, "error_code": None, "model": None, "speed": None, "parent_id": None,
            "tools": None,
        }  # fmt: skip
        try:
            with self._transaction() as conn:
                # The row lock queues a concurrent resend behind this transaction, so it then sees our row.
                conversation = self._owned_conversation(conn, owner_id, conversation_id, lock=True)
                if client_id is not None:
                    existing = self._find_by_client_id(conn, conversation_id, client_id)
                    if existing is not None:
                        return _message(existing), False
                row["parent_id"] = conn.scalar(sa.select(active_leaf()).where(conversations.c.id == conversation_id))
                row["id"] = conn.execute(sa.insert(messages).values(**row)).inserted_primary_key[0]
                changes: dict[str, Any] = {"updated_at": now, "active_leaf_id": row["id"]}
                title = _title_from_content(content) if role == "user" else None
                if title and conversation.title == DEFAULT_TITLE:
                    changes["title"] = title
                conn.execute(
                    sa.update(conversations).where(conversations.c.id == conversation_id).values(**changes)
                )
        except IntegrityError as err:
            # A concurrent resend committed the same client_id first, or the conversation was just deleted.
            if client_id is not None:
                with self._transaction(write=False) as conn:
                    self._owned_conversation(conn, owner_id, conversation_id)
                    existing = self._find_by_client_id(conn, conversation_id, client_id)
                if existing is not None:
                    return _message(existing), False
            raise NotFound(conversation_id) from err
        # Built from the inserted values, sparing a read-back.
        return {**{name: row[name] for name in MESSAGE_FIELDS}, "created_at": _iso(now)}, True

    def find_client_message(self, owner_id: str, conversation_id: str, client_id: str) -> dict | None:
        """Return the conversation's message sent with client_id, or None; NotFound if not the owner's."""
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            if not _is_client_id(client_id):
                return None
            row = self._find_by_client_id(conn, conversation_id, client_id)
        return None if row is None else _message(row)

    def reply_after(self, message_id: int) -> dict | None:
        """Return the first reply to message_id (its oldest child, if that is an assistant message), or None."""
        if not _valid_message_id(message_id):
            return None
        query = sa.select(*_MESSAGE_COLUMNS).where(messages.c.parent_id == message_id).order_by(messages.c.id).limit(1)
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        return _message(row) if row is not None and row.role == "assistant" else None

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        reasoning: str | None = None,
        status: str | None = None,
        usage: dict | None = None,
        finish_reason: str | None = None,
        error_code: str | None = None,
        model: str | None = None,
        speed: dict | None = None,
    ) -> None:
        """Checkpoint a reply with one UPDATE by primary key; None leaves a field as is; NotFound if gone."""
        changes = self._message_changes(message_id, content=content, reasoning=reasoning, status=status,
                                        usage=usage, finish_reason=finish_reason, error_code=error_code,
                                        model=model, speed=speed)
        if changes is None:
            return
        with self._transaction() as conn:
            result = update_row(conn, messages, message_id, **changes)
        if result.rowcount == 0:
            raise NotFound(message_id)

    def _message_changes(self, message_id: int, **fields) -> dict | None:
        """The checked columns to set on one message for its given fields (None leaves a field as is), with its
        `updated_at`; None when nothing changes."""
        if fields.get("status") is not None and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}")
        if not _valid_message_id(message_id):
            raise NotFound(message_id)
        for name in ("content", "reasoning"):
            if fields.get(name) is not None:
                fields[name] = _clean_stream_text(fields[name])
        changes = {key: value for key, value in fields.items() if value is not None}
        if not changes:
            return None
        return {"updated_at": _now(), **changes}

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

    def list_messages(self, owner_id: str, conversation_id: str, *, limit: int | None = None) -> list[dict]:
        """Return the conversation's messages oldest first; with limit, only the newest `limit` of them."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError("limit must be an integer >= 0")
        query = sa.select(*_MESSAGE_COLUMNS).where(messages.c.conversation_id == conversation_id)
        if limit is not None:
            newest = query.order_by(messages.c.id.desc()).limit(limit).subquery()
            query = sa.select(newest)
            order = newest.c.id
        else:
            order = messages.c.id
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            return [_message(row) for row in conn.execute(query.order_by(order))]

    def last_messages(self, owner_id: str, conversation_id: str, n: int) -> list[dict]:
        """Return the newest n messages of the conversation, oldest first."""
        return self.list_messages(owner_id, conversation_id, limit=n)

    def delete_message(self, owner_id: str, message_id: int) -> None:
        """Delete one of the owner's messages, its children moving up to its parent (the tree stays whole; an active
        leaf deleted gives way to its parent); NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_message_id(message_id)):
            raise NotFound(message_id)
        with self._transaction() as conn:
            row = conn.execute(sa.select(messages.c.conversation_id, messages.c.parent_id).where(
                messages.c.id == message_id,
                messages.c.conversation_id.in_(self._owner_conversation_ids(owner_id)),
            )).first()
            if row is None:
                raise NotFound(message_id)
            conn.execute(sa.delete(messages).where(messages.c.id == message_id))
            conn.execute(sa.update(messages).where(messages.c.conversation_id == row.conversation_id,
                                                   messages.c.parent_id == message_id)
                         .values(parent_id=row.parent_id))
            conn.execute(sa.update(conversations).where(conversations.c.id == row.conversation_id,
                                                        conversations.c.active_leaf_id == message_id)
                         .values(active_leaf_id=row.parent_id))

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
