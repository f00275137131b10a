"""Owners (a visitor's or an account's conversation space) and conversations: every query scoped to its owner."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .rows import (
    _CONVERSATION_COLUMNS,
    DEFAULT_TITLE,
    NEW_CONVERSATION_SETTINGS,
    NotFound,
    _clean_title,
    _conversation,
    _iso,
    _now,
    _seconds,
    _valid_id,
)
from .schema import conversations, owners


class ConversationQueries:
    """Owner and conversation queries (mixed into Store, which provides `_transaction`)."""

    # owners

    def touch_owner(self, owner_id: str) -> None:
        """Record that the owner was just seen; NotFound if the owner does not exist."""
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        with self._transaction() as conn:
            result = conn.execute(
                sa.update(owners).where(owners.c.id == owner_id).values(last_seen_at=_now())
            )
        if result.rowcount == 0:
            raise NotFound(owner_id)

    def get_active_conversation(self, owner_id: str) -> str | None:
        """Return the owner's active conversation id, or None if unset, deleted or the owner is unknown."""
        if not _valid_id(owner_id):
            return None
        query = (
            sa.select(conversations.c.id)
            .join(owners, owners.c.active_conversation_id == conversations.c.id)
            .where(owners.c.id == owner_id, conversations.c.owner_id == owner_id)
        )
        with self._transaction(write=False) as conn:
            return conn.scalar(query)

    def set_active_conversation(self, owner_id: str, conversation_id: str) -> None:
        """Make one of the owner's conversations the active one; NotFound if it is not the owner's."""
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            conn.execute(
                sa.update(owners)
                .where(owners.c.id == owner_id)
                .values(active_conversation_id=conversation_id)
            )

    def delete_idle_owners(self, idle_seconds: float) -> int:
        """Delete anonymous owners not seen for longer than idle_seconds, with all their data; return how many.

        An account's conversation space is kept: only deleting the account removes it."""
        cutoff = _now() - _seconds(idle_seconds, "idle_seconds")
        with self._transaction() as conn:
            return conn.execute(sa.delete(owners).where(owners.c.last_seen_at < cutoff,
                                                        owners.c.user_id.is_(None))).rowcount

    # conversations

    def _owned_conversation(
        self, conn: Connection, owner_id: str, conversation_id: str, *, lock: bool = False
    ) -> sa.Row:
        """Return (id, title) of the owner's conversation, optionally row-locked; else NotFound."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        query = sa.select(conversations.c.id, conversations.c.title).where(
            conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(conversation_id)
        return row

    def create_conversation(self, owner_id: str, title: str = DEFAULT_TITLE, *, conversation_id: str | None = None
                            ) -> dict:
        """Create a conversation for the owner (with the given id, or a fresh one); NotFound if the owner does not
        exist."""
        title = _clean_title(title)
        if not _valid_id(owner_id) or (conversation_id is not None and not _valid_id(conversation_id)):
            raise NotFound(owner_id)
        now = _now()
        row = {"id": conversation_id or uuid.uuid4().hex, "title": title, "created_at": now, "updated_at": now,
               "model": None}
        try:
            with self._transaction() as conn:
                conn.execute(sa.insert(conversations).values(owner_id=owner_id, **row))
        except IntegrityError as err:
            raise NotFound(owner_id) from err
        return {**row, **NEW_CONVERSATION_SETTINGS, "tools": None, "created_at": _iso(now), "updated_at": _iso(now),
                "message_count": 0}

    def list_conversations(self, owner_id: str, limit: int = 200) -> list[dict]:
        """Return the owner's conversations, most recently active first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError("limit must be an integer >= 0")
        if not _valid_id(owner_id):
            return []
        query = (
            sa.select(*_CONVERSATION_COLUMNS)
            .where(conversations.c.owner_id == owner_id)
            .order_by(conversations.c.updated_at.desc(), conversations.c.created_at.desc())
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            return [_conversation(row) for row in conn.execute(query)]

    def get_conversation(self, owner_id: str, conversation_id: str) -> dict:
        """Return one of the owner's conversations; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        query = sa.select(*_CONVERSATION_COLUMNS).where(
            conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
        )
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(conversation_id)
        return _conversation(row)

    def rename_conversation(self, owner_id: str, conversation_id: str, title: str) -> dict:
        """Rename one of the owner's conversations (its updated_at, i.e. last activity, is kept)."""
        title = _clean_title(title)
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            conn.execute(
                sa.update(conversations).where(conversations.c.id == conversation_id).values(title=title)
            )
        return self.get_conversation(owner_id, conversation_id)

    def set_conversation_model(self, owner_id: str, conversation_id: str, model: str | None) -> dict:
        """Set the model one of the owner's conversations asks for (None: the provider's default)."""
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            conn.execute(
                sa.update(conversations).where(conversations.c.id == conversation_id).values(model=model)
            )
        return self.get_conversation(owner_id, conversation_id)

    def delete_conversation(self, owner_id: str, conversation_id: str) -> None:
        """Delete one of the owner's conversations and its messages; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        with self._transaction() as conn:
            result = conn.execute(
                sa.delete(conversations).where(
                    conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
                )
            )
            if result.rowcount == 0:
                raise NotFound(conversation_id)
            self.purge_detached_files(owner_id, conn)  # the files its messages carried go with them
            conn.execute(
                sa.update(owners)
                .where(owners.c.id == owner_id, owners.c.active_conversation_id == conversation_id)
                .values(active_conversation_id=None)
            )
