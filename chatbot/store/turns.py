"""The turn engine's queries: a whole turn's writes in one transaction, a connect in one read, paged history, and
every streaming reply's checkpoint in one statement batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .rows import (
    _MESSAGE_COLUMNS,
    DEFAULT_TITLE,
    NotFound,
    _check_text,
    _clean_stream_text,
    _is_client_id,
    _iso,
    _message,
    _now,
    _title_from_content,
    _valid_id,
    _valid_message_id,
)
from .schema import MESSAGE_FIELDS, conversations, messages, owners, users


@dataclass
class TurnStart:
    """What one transaction made of a turn: the user message, the streaming reply row, the context's messages."""

    message: dict | None  # the user message (None for a regenerate)
    reply: dict | None  # the new streaming reply; for a duplicate, the reply that followed it (may be None)
    history: list[dict]  # the newest messages up to the user message, oldest first (the context's raw material)
    conversation: dict  # {id, title, created_at, updated_at, message_count} after the turn
    duplicate: bool = False  # the client_id was known: nothing was written


@dataclass
class Session:
    """A connecting owner as one read sees it."""

    owner_id: str
    last_seen_at: datetime
    conversation_id: str | None  # the active conversation, if it still exists
    messages: list[dict]  # its newest page, oldest first
    more: bool  # older messages exist
    user: tuple[str, int] | None = None  # the account's (state, session version), when one was asked about


class NothingToRegenerate(Exception):
    """The conversation does not end with a reply."""


class TurnQueries:
    """Turn-path queries (mixed into Store, which provides `_transaction` and `_owned_conversation`)."""

    def open_session(self, owner_id: str, page_size: int, *, user_id: str | None = None) -> Session | None:
        """One read for a connect: the owner, its active conversation and that conversation's newest page.

        With `user_id`, the owner must be that account's, and the account's state and session version come along
        in the same read (None when the owner is not that account's).
        """
        if not _valid_id(owner_id) or (user_id is not None and not _valid_id(user_id)):
            return None
        columns = [owners.c.last_seen_at, conversations.c.id]
        if user_id is not None:
            columns += [users.c.state, users.c.session_version]
        query = (
            sa.select(*columns)
            .select_from(owners)
            .outerjoin(conversations, sa.and_(conversations.c.id == owners.c.active_conversation_id,
                                              conversations.c.owner_id == owners.c.id))
            .where(owners.c.id == owner_id)
        )
        if user_id is not None:
            query = query.join(users, users.c.id == owners.c.user_id).where(users.c.id == user_id)
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            page, more = ([], False) if row.id is None else self._page(conn, row.id, None, page_size)
        user = (row.state, row.session_version) if user_id is not None else None
        return Session(owner_id, row.last_seen_at, row.id, page, more, user)

    def create_session(self, owner_id: str | None = None) -> tuple[str, dict]:
        """A new owner (the given id, or a fresh one) with one empty, active conversation: (owner id, conversation)."""
        owner_id = owner_id or uuid.uuid4().hex
        if not _valid_id(owner_id):
            raise ValueError("owner id must be 32 lowercase hex characters")
        now = _now()
        conversation = {"id": uuid.uuid4().hex, "title": DEFAULT_TITLE, "created_at": now, "updated_at": now,
                        "model": None}
        try:
            with self._transaction() as conn:
                conn.execute(sa.insert(owners).values(id=owner_id, created_at=now, last_seen_at=now,
                                                      active_conversation_id=conversation["id"]))
                conn.execute(sa.insert(conversations).values(owner_id=owner_id, **conversation))
        except IntegrityError:
            # Two tabs restoring one unknown session at once: the other made it; use what it made.
            self.touch_owner(owner_id)
            active = self.get_active_conversation(owner_id)
            if active is None:
                active = self.create_conversation(owner_id)["id"]
                self.set_active_conversation(owner_id, active)
            return owner_id, self.get_conversation(owner_id, active)
        return owner_id, {**conversation, "created_at": _iso(now), "updated_at": _iso(now), "message_count": 0}

    def message_page(self, owner_id: str, conversation_id: str, before_id: int | None, limit: int
                     ) -> tuple[list[dict], bool]:
        """The newest `limit` messages older than `before_id` (all when None), oldest first, and whether more exist."""
        if before_id is not None and not _valid_message_id(before_id):
            raise NotFound(before_id)
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            return self._page(conn, conversation_id, before_id, limit)

    def _page(self, conn: Connection, conversation_id: str, before_id: int | None, limit: int
              ) -> tuple[list[dict], bool]:
        """Read one page (limit + 1 rows tell whether more exist)."""
        query = sa.select(*_MESSAGE_COLUMNS).where(messages.c.conversation_id == conversation_id)
        if before_id is not None:
            query = query.where(messages.c.id < before_id)
        rows = conn.execute(query.order_by(messages.c.id.desc()).limit(limit + 1)).all()
        more = len(rows) > limit
        return [_message(row) for row in reversed(rows[:limit])], more

    def begin_turn(self, owner_id: str, conversation_id: str, content: str, *, client_id: str | None,
                   context_limit: int, quota: int | None = None) -> TurnStart:
        """In one transaction: the idempotency check, the user message, the streaming reply row, the conversation's
        order/title and the owner's active conversation, and the context's newest `context_limit` messages.

        With `quota` (the default daily tokens, 0 = none), the owner's account must have tokens left today
        (QuotaExceeded otherwise; a resend of a stored message is answered first)."""
        content = _check_text(content, "content")
        if client_id is not None and not _is_client_id(client_id):
            raise ValueError("client_id must be a short string")
        now = _now()
        try:
            with self._transaction() as conn:
                # The row lock queues a concurrent resend behind this transaction, so it then sees our row.
                conversation = self._turn_conversation(conn, owner_id, conversation_id)
                if client_id is not None:
                    duplicate = self._duplicate(conn, conversation, client_id)
                    if duplicate is not None:
                        return duplicate
                if quota is not None:
                    self._check_quota(conn, owner_id, quota)
                message = self._insert(conn, conversation_id, "user", content, "complete", now, client_id)
                reply = self._insert(conn, conversation_id, "assistant", "", "streaming", now, None)
                title = _title_from_content(content)
                if title and conversation["title"] == DEFAULT_TITLE:
                    conversation["title"] = title
                return self._started(conn, owner_id, conversation, message, reply, now, context_limit)
        except IntegrityError as err:
            # A concurrent resend committed the same client_id first, or the conversation was just deleted.
            if client_id is not None:
                with self._transaction(write=False) as conn:
                    conversation = self._turn_conversation(conn, owner_id, conversation_id, lock=False)
                    duplicate = self._duplicate(conn, conversation, client_id)
                if duplicate is not None:
                    return duplicate
            raise NotFound(conversation_id) from err

    def begin_regenerate(self, owner_id: str, conversation_id: str, *, context_limit: int,
                         quota: int | None = None) -> TurnStart:
        """In one transaction: drop the conversation's last reply and start a new streaming one in its place
        (with `quota`, as begin_turn checks it)."""
        now = _now()
        with self._transaction() as conn:
            conversation = self._turn_conversation(conn, owner_id, conversation_id)
            if quota is not None:
                self._check_quota(conn, owner_id, quota)
            last = conn.execute(sa.select(messages.c.id, messages.c.role)
                                .where(messages.c.conversation_id == conversation_id)
                                .order_by(messages.c.id.desc()).limit(1)).first()
            if last is None or last.role != "assistant":
                raise NothingToRegenerate(conversation_id)
            conn.execute(sa.delete(messages).where(messages.c.id == last.id))
            conversation["message_count"] -= 1
            reply = self._insert(conn, conversation_id, "assistant", "", "streaming", now, None)
            return self._started(conn, owner_id, conversation, None, reply, now, context_limit)

    def checkpoint_many(self, replies: list[tuple[int, str, str | None]]) -> None:
        """Store the text so far of every streaming reply in `replies` [(id, content, reasoning)], one transaction."""
        if not replies:
            return
        now = _now()
        # Only while streaming: a beat that lands after the reply's final write must not shorten its text.
        statement = (sa.update(messages).where(messages.c.id == sa.bindparam("b_id"), messages.c.status == "streaming")
                     .values(content=sa.bindparam("b_content"), reasoning=sa.bindparam("b_reasoning"), updated_at=now))
        rows = [{"b_id": reply_id, "b_content": _clean_stream_text(content),
                 "b_reasoning": None if reasoning is None else _clean_stream_text(reasoning)}
                for reply_id, content, reasoning in replies]
        with self._transaction() as conn:
            conn.execute(statement, rows)

    def touch_owner_if_before(self, owner_id: str, cutoff: datetime) -> None:
        """Record that the owner was seen, only when its last-seen time is older than `cutoff` (throttled writes)."""
        with self._transaction() as conn:
            conn.execute(sa.update(owners).where(owners.c.id == owner_id, owners.c.last_seen_at < cutoff)
                         .values(last_seen_at=_now()))

    # internals

    def _turn_conversation(self, conn: Connection, owner_id: str, conversation_id: str, *, lock: bool = True
                           ) -> dict:
        """The owner's conversation with its message count (row-locked for a turn); NotFound if not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        count = (sa.select(sa.func.count()).where(messages.c.conversation_id == conversations.c.id)
                 .correlate(conversations).scalar_subquery())
        query = sa.select(conversations.c.id, conversations.c.title, conversations.c.created_at,
                          conversations.c.model, count.label("message_count")).where(
            conversations.c.id == conversation_id, conversations.c.owner_id == owner_id)
        row = conn.execute(query.with_for_update(of=conversations) if lock else query).first()
        if row is None:
            raise NotFound(conversation_id)
        return {"id": row.id, "title": row.title, "created_at": _iso(row.created_at), "model": row.model,
                "message_count": row.message_count}

    def _duplicate(self, conn: Connection, conversation: dict, client_id: str) -> TurnStart | None:
        """The turn already stored under `client_id` (with the reply that followed it), or None."""
        row = conn.execute(sa.select(*_MESSAGE_COLUMNS).where(messages.c.conversation_id == conversation["id"],
                                                              messages.c.client_id == client_id)).first()
        if row is None:
            return None
        after = conn.execute(sa.select(*_MESSAGE_COLUMNS)
                             .where(messages.c.conversation_id == conversation["id"], messages.c.id > row.id)
                             .order_by(messages.c.id).limit(1)).first()
        reply = _message(after) if after is not None and after.role == "assistant" else None
        return TurnStart(_message(row), reply, [], conversation, duplicate=True)

    def _insert(self, conn: Connection, conversation_id: str, role: str, content: str, status: str,
                now: datetime, client_id: str | None) -> dict:
        """Insert one message and return it as a dict (built from the values, sparing a read-back)."""
        row = {"conversation_id": conversation_id, "role": role, "content": content, "reasoning": None,
               "status": status, "created_at": now, "updated_at": now, "client_id": client_id, "usage": None,
               "finish_reason": None, "error_code": None, "model": None, "speed": None}
        row["id"] = conn.execute(sa.insert(messages).values(**row)).inserted_primary_key[0]
        return {**{name: row[name] for name in MESSAGE_FIELDS}, "created_at": _iso(now)}

    def _started(self, conn: Connection, owner_id: str, conversation: dict, message: dict | None, reply: dict,
                 now: datetime, context_limit: int) -> TurnStart:
        """Finish a turn's transaction: conversation order and title, active conversation, the context's messages."""
        conn.execute(sa.update(conversations).where(conversations.c.id == conversation["id"])
                     .values(updated_at=now, title=conversation["title"]))
        conn.execute(sa.update(owners).where(owners.c.id == owner_id)
                     .values(active_conversation_id=conversation["id"], last_seen_at=now))
        history, _ = self._page(conn, conversation["id"], reply["id"], context_limit)
        added = 2 if message is not None else 1
        conversation = {**conversation, "updated_at": _iso(now),
                        "message_count": conversation["message_count"] + added}
        return TurnStart(message, reply, history, conversation)


# Seconds between two writes of an owner's last-seen time on connect (the idle clean-up needs no finer grain).
LAST_SEEN_EVERY = timedelta(hours=1)
