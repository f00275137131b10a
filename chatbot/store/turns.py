"""The turn path, the store's one write path for messages: a whole turn's writes in one transaction (begin_turn,
begin_regenerate), every streaming reply's checkpoint in one statement batch (checkpoint_many), a reply's final write
(finish_reply); and a connect in one read, paged history along the active path."""

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
    NEW_CONVERSATION_SETTINGS,
    STATUSES,
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
    insert_row,
    update_row,
)
from .schema import MESSAGE_FIELDS, conversations, messages, owners, users
from .settings import TURN_SETTING_COLUMNS, WITH_PROJECT, setting_fields
from .tree import active_leaf, add_versions, read_path

# The namespace of first_conversation_id.
FIRST_CONVERSATION = uuid.UUID("6b0c1a52-3f7e-4d1b-9a0e-2c5d8e4f7a31")


def first_conversation_id(owner_id: str) -> str:
    """The id of an owner's first conversation, derived from the owner's: a new visitor's tabs (on any process) show
    it before its rows exist, and whatever writes them first makes that one. (Ids are owner-scoped: knowing one
    reveals nothing.)"""
    return uuid.uuid5(FIRST_CONVERSATION, owner_id).hex


@dataclass
class TurnStart:
    """What one transaction made of a turn: the user message, the streaming reply row, the context's messages."""

    message: dict | None  # the user message (None for a regenerate)
    reply: dict | None  # the new streaming reply; for a duplicate, the reply that answered it (may be None)
    history: list[dict]  # the active path's newest messages up to the user message, oldest first (the context)
    conversation: dict  # {id, title, created_at, updated_at, message_count} after the turn
    duplicate: bool = False  # the client_id was known: nothing was written
    page: list[dict] | None = None  # when asked for: the path's newest page up to the reply, with versions
    more: bool = False  # older messages exist above `page`


@dataclass
class OwnerState:
    """A connecting owner as one read sees it."""

    owner_id: str
    last_seen_at: datetime
    conversation_id: str | None  # the active conversation, if it still exists
    messages: list[dict]  # its newest page, oldest first
    more: bool  # older messages exist
    user: tuple[str, int] | None = None  # the account's (state, session version), when one was asked about


class NothingToRegenerate(Exception):
    """The conversation's active path does not end with a reply."""


class NotEditable(Exception):
    """The message to edit is not a user message."""


def _owner_state_query(with_user: bool) -> sa.Select:
    """A connect's one read: the owner's last-seen time, its active conversation and that one's leaf (and, for an
    account, its state and session version)."""
    columns = [owners.c.last_seen_at, conversations.c.id, active_leaf().label("leaf_id")]
    if with_user:
        columns += [users.c.state, users.c.session_version]
    query = (
        sa.select(*columns)
        .select_from(owners)
        .outerjoin(conversations, sa.and_(conversations.c.id == owners.c.active_conversation_id,
                                          conversations.c.owner_id == owners.c.id))
        .where(owners.c.id == sa.bindparam("owner_id"))
    )
    if with_user:
        query = query.join(users, users.c.id == owners.c.user_id).where(users.c.id == sa.bindparam("user_id"))
    return query


def _turn_conversation_query(lock: bool) -> sa.Select:
    """The owner's conversation with its message count and active leaf (row-locked for a turn)."""
    count = (sa.select(sa.func.count()).where(messages.c.conversation_id == conversations.c.id)
             .correlate(conversations).scalar_subquery())
    query = sa.select(conversations.c.id, conversations.c.title, conversations.c.created_at,
                      conversations.c.model, count.label("message_count"), active_leaf().label("leaf_id"),
                      *TURN_SETTING_COLUMNS, conversations.c.tools).select_from(WITH_PROJECT).where(
        conversations.c.id == sa.bindparam("conversation_id"), conversations.c.owner_id == sa.bindparam("owner_id"))
    return query.with_for_update(of=conversations) if lock else query


def _reply_changes(reply_id: int, **fields) -> dict | None:
    """The checked columns a reply's final write sets (None leaves a field as is), with its `updated_at`; None when
    nothing changes."""
    if fields.get("status") is not None and fields["status"] not in STATUSES:
        raise ValueError(f"status must be one of {sorted(STATUSES)}")
    if not _valid_message_id(reply_id):
        raise NotFound(reply_id)
    for name in ("content", "reasoning"):
        if fields.get(name) is not None:
            fields[name] = _clean_stream_text(fields[name])
    changes = {key: value for key, value in fields.items() if value is not None}
    if not changes:
        return None
    return {"updated_at": _now(), **changes}


# Built once (see rows.py): the statements every connect, turn and checkpoint runs.
_OWNER_STATE = _owner_state_query(with_user=False)
_OWNER_STATE_OF_USER = _owner_state_query(with_user=True)
_TURN_CONVERSATION = _turn_conversation_query(lock=True)
_TURN_CONVERSATION_UNLOCKED = _turn_conversation_query(lock=False)
_BY_CLIENT_ID = sa.select(*_MESSAGE_COLUMNS).where(messages.c.conversation_id == sa.bindparam("conversation_id"),
                                                   messages.c.client_id == sa.bindparam("client_id"))
_FIRST_CHILD = (sa.select(*_MESSAGE_COLUMNS)
                .where(messages.c.conversation_id == sa.bindparam("conversation_id"),
                       messages.c.parent_id == sa.bindparam("parent_id"))
                .order_by(messages.c.id).limit(1))
# Only while streaming: a beat that lands after the reply's final write must not shorten its text.
_CHECKPOINT = (sa.update(messages).where(messages.c.id == sa.bindparam("b_id"), messages.c.status == "streaming")
               .values(content=sa.bindparam("b_content"), reasoning=sa.bindparam("b_reasoning"),
                       updated_at=sa.bindparam("b_updated_at", type_=messages.c.updated_at.type)))
_TOUCH_OWNER_IF_BEFORE = (sa.update(owners)
                          .where(owners.c.id == sa.bindparam("owner_id"),
                                 owners.c.last_seen_at < sa.bindparam("cutoff", type_=owners.c.last_seen_at.type))
                          .values(last_seen_at=sa.bindparam("now", type_=owners.c.last_seen_at.type)))


class TurnQueries:
    """Turn-path queries (mixed into Store, which provides `_transaction`, `_owned_conversation` and `_count_usage`)."""

    def open_session(self, owner_id: str, page_size: int, *, user_id: str | None = None) -> OwnerState | None:
        """One read for a connect: the owner, its active conversation and that conversation's newest page.

        With `user_id`, the owner must be that account's, and the account's state and session version come along
        in the same read (None when the owner is not that account's).
        """
        if not _valid_id(owner_id) or (user_id is not None and not _valid_id(user_id)):
            return None
        query, params = (_OWNER_STATE, {"owner_id": owner_id}) if user_id is None else \
            (_OWNER_STATE_OF_USER, {"owner_id": owner_id, "user_id": user_id})
        with self._transaction(write=False) as conn:
            row = conn.execute(query, params).first()
            if row is None:
                return None
            page, more = ([], False) if row.id is None else self._page(conn, row.id, row.leaf_id, page_size)
        user = (row.state, row.session_version) if user_id is not None else None
        return OwnerState(owner_id, row.last_seen_at, row.id, page, more, user)

    def create_session(self, owner_id: str | None = None, conversation_id: str | None = None) -> tuple[str, dict]:
        """A new owner (the given id, or a fresh one) with one empty, active conversation (the given id, or the
        owner's first_conversation_id): (owner id, conversation)."""
        owner_id = owner_id or uuid.uuid4().hex
        if not _valid_id(owner_id) or (conversation_id is not None and not _valid_id(conversation_id)):
            raise ValueError("owner and conversation ids must be 32 lowercase hex characters")
        now = _now()
        conversation = {"id": conversation_id or first_conversation_id(owner_id), "title": DEFAULT_TITLE,
                        "created_at": now, "updated_at": now, "model": None}
        try:
            with self._transaction() as conn:
                insert_row(conn, owners, id=owner_id, created_at=now, last_seen_at=now,
                           active_conversation_id=conversation["id"])
                insert_row(conn, conversations, owner_id=owner_id, **conversation)
        except IntegrityError:
            # Two tabs restoring one unknown session at once: the other made it; use what it made.
            self.touch_owner(owner_id)
            if conversation_id is not None:  # ... the conversation this tab shows too, or else add it, active
                try:
                    return owner_id, self.get_conversation(owner_id, conversation_id)
                except NotFound:
                    conversation = self.create_conversation(owner_id, conversation_id=conversation_id)
                    self.set_active_conversation(owner_id, conversation_id)
                    return owner_id, conversation
            active = self.get_active_conversation(owner_id)
            if active is None:
                active = self.create_conversation(owner_id)["id"]
                self.set_active_conversation(owner_id, active)
            return owner_id, self.get_conversation(owner_id, active)
        return owner_id, {**conversation, **NEW_CONVERSATION_SETTINGS, "tools": None, "created_at": _iso(now),
                          "updated_at": _iso(now), "message_count": 0}

    def message_page(self, owner_id: str, conversation_id: str, before_id: int | None, limit: int
                     ) -> tuple[list[dict], bool]:
        """The newest `limit` messages of the active path (None) or of the path above message `before_id`, oldest
        first, with versions, and whether more exist; NotFound if the conversation or message is not the owner's."""
        if before_id is not None and not _valid_message_id(before_id):
            raise NotFound(before_id)
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            if before_id is None:
                start = conn.scalar(sa.select(active_leaf()).where(conversations.c.id == conversation_id))
            else:
                above = conn.execute(sa.select(messages.c.parent_id).where(
                    messages.c.id == before_id, messages.c.conversation_id == conversation_id)).first()
                if above is None:
                    raise NotFound(before_id)
                start = above.parent_id
            return self._page(conn, conversation_id, start, limit)

    def _page(self, conn: Connection, conversation_id: str, start: int | None, limit: int) -> tuple[list[dict], bool]:
        """One page of the path ending at message `start`, with versions."""
        page, more = read_path(conn, conversation_id, start, limit)
        return add_versions(conn, conversation_id, page), more

    def begin_turn(self, owner_id: str, conversation_id: str, content: str, *, client_id: str | None,
                   context_limit: int, edit_of: int | None = None, page_size: int | None = None,
                   quota: int | None = None, create: bool = False) -> TurnStart:
        """In one transaction: the idempotency check, the user message (after the active leaf, or beside the user
        message `edit_of`), the streaming reply row (the new active leaf), the conversation's order/title and the
        owner's active conversation, and the context: the path's newest `context_limit` messages (and its newest
        `page_size` with versions, to show).

        With `create` (a new visitor's first message), the owner and the empty conversation are made first, in the
        same transaction (NotFound if another tab made the owner meanwhile: create_session then sorts it out).

        With `quota` (the default daily tokens, 0 = none), the owner's account must have tokens left today
        (QuotaExceeded otherwise; a resend of a stored message is answered first)."""
        content = _check_text(content, "content")
        if client_id is not None and not _is_client_id(client_id):
            raise ValueError("client_id must be a short string")
        if edit_of is not None and not _valid_message_id(edit_of):
            raise NotFound(edit_of)
        now = _now()
        try:
            with self._transaction() as conn:
                if create:
                    insert_row(conn, owners, id=owner_id, created_at=now, last_seen_at=now,
                               active_conversation_id=conversation_id)
                    insert_row(conn, conversations, owner_id=owner_id, id=conversation_id, title=DEFAULT_TITLE,
                               created_at=now, updated_at=now, model=None)
                # The row lock queues a concurrent resend behind this transaction, so it then sees our row.
                conversation, leaf = self._turn_conversation(conn, owner_id, conversation_id)
                if client_id is not None:
                    duplicate = self._duplicate(conn, conversation, client_id)
                    if duplicate is not None:
                        return duplicate
                if quota is not None:
                    self._check_quota(conn, owner_id, quota)
                parent = leaf if edit_of is None else self._edited(conn, conversation_id, edit_of)
                message = self._insert(conn, conversation_id, "user", content, "complete", now, client_id, parent)
                reply = self._insert(conn, conversation_id, "assistant", "", "streaming", now, None, message["id"])
                title = _title_from_content(content)
                if title and conversation["title"] == DEFAULT_TITLE:
                    conversation["title"] = title
                return self._started(conn, owner_id, conversation, message, reply, now, context_limit, page_size)
        except IntegrityError as err:
            # A concurrent resend committed the same client_id first, or the conversation was just deleted.
            if client_id is not None and not create:
                with self._transaction(write=False) as conn:
                    conversation, _ = self._turn_conversation(conn, owner_id, conversation_id, lock=False)
                    duplicate = self._duplicate(conn, conversation, client_id)
                if duplicate is not None:
                    return duplicate
            raise NotFound(conversation_id) from err

    def begin_regenerate(self, owner_id: str, conversation_id: str, *, context_limit: int,
                         page_size: int | None = None, quota: int | None = None) -> TurnStart:
        """In one transaction: a new streaming reply beside the active path's last reply (which is kept, as an
        earlier version), made the active leaf (with `quota`, as begin_turn checks it)."""
        now = _now()
        with self._transaction() as conn:
            conversation, leaf = self._turn_conversation(conn, owner_id, conversation_id)
            if quota is not None:
                self._check_quota(conn, owner_id, quota)
            last = conn.execute(sa.select(messages.c.role, messages.c.parent_id)
                                .where(messages.c.id == leaf,
                                       messages.c.conversation_id == conversation_id)).first()
            if last is None or last.role != "assistant" or last.parent_id is None:
                raise NothingToRegenerate(conversation_id)
            reply = self._insert(conn, conversation_id, "assistant", "", "streaming", now, None, last.parent_id)
            return self._started(conn, owner_id, conversation, None, reply, now, context_limit, page_size)

    def checkpoint_many(self, replies: list[tuple[int, str, str | None]]) -> None:
        """Store the text so far of every streaming reply in `replies` [(id, content, reasoning)], one transaction."""
        if not replies:
            return
        now = _now()
        rows = [{"b_id": reply_id, "b_content": _clean_stream_text(content), "b_updated_at": now,
                 "b_reasoning": None if reasoning is None else _clean_stream_text(reasoning)}
                for reply_id, content, reasoning in replies]
        with self._transaction() as conn:
            conn.execute(_CHECKPOINT, rows)

    def finish_reply(self, reply_id: int, *, user_id: str | None, tokens: int, content: str | None = None,
                     reasoning: str | None = None, status: str | None = None, usage: dict | None = None,
                     finish_reason: str | None = None, error_code: str | None = None, model: str | None = None,
                     speed: dict | None = None, tools: list[dict] | None = None) -> None:
        """A reply's final write, one transaction: its fields (None leaves a field as is; `tools`: its tool steps)
        with one UPDATE by primary key and, for an account, one more reply and `tokens` in this hour's usage.
        NotFound if the reply is gone."""
        changes = _reply_changes(reply_id, content=content, reasoning=reasoning, status=status, usage=usage,
                                 finish_reason=finish_reason, error_code=error_code, model=model, speed=speed,
                                 tools=tools)
        with self._transaction() as conn:
            if changes is not None and update_row(conn, messages, reply_id, **changes).rowcount == 0:
                raise NotFound(reply_id)
            if user_id is not None:
                # A reply's tool steps count as tool calls, except the ones the person declined (never run).
                calls = sum(1 for step in tools or () if step.get("status") != "declined")
                self._count_usage(conn, user_id, tokens, calls)

    def touch_owner_if_before(self, owner_id: str, cutoff: datetime) -> None:
        """Record that the owner was seen, only when its last-seen time is older than `cutoff` (throttled writes)."""
        with self._transaction() as conn:
            conn.execute(_TOUCH_OWNER_IF_BEFORE, {"owner_id": owner_id, "cutoff": cutoff, "now": _now()})

    # internals

    def _turn_conversation(self, conn: Connection, owner_id: str, conversation_id: str, *, lock: bool = True
                           ) -> tuple[dict, int | None]:
        """The owner's conversation with its message count, and its active leaf (row-locked for a turn); NotFound
        if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(conversation_id)):
            raise NotFound(conversation_id)
        query = _TURN_CONVERSATION if lock else _TURN_CONVERSATION_UNLOCKED
        row = conn.execute(query, {"conversation_id": conversation_id, "owner_id": owner_id}).first()
        if row is None:
            raise NotFound(conversation_id)
        return {"id": row.id, "title": row.title, "created_at": _iso(row.created_at), "model": row.model,
                "message_count": row.message_count, **setting_fields(row), "tools": row.tools}, row.leaf_id

    def _edited(self, conn: Connection, conversation_id: str, message_id: int) -> int | None:
        """The parent of the user message being edited (its new version goes beside it)."""
        row = conn.execute(sa.select(messages.c.role, messages.c.parent_id).where(
            messages.c.id == message_id, messages.c.conversation_id == conversation_id)).first()
        if row is None:
            raise NotFound(message_id)
        if row.role != "user":
            raise NotEditable(message_id)
        return row.parent_id

    def _duplicate(self, conn: Connection, conversation: dict, client_id: str) -> TurnStart | None:
        """The turn already stored under `client_id` (with the first reply that answered it), or None."""
        row = conn.execute(_BY_CLIENT_ID, {"conversation_id": conversation["id"], "client_id": client_id}).first()
        if row is None:
            return None
        after = conn.execute(_FIRST_CHILD, {"conversation_id": conversation["id"], "parent_id": row.id}).first()
        reply = _message(after) if after is not None and after.role == "assistant" else None
        return TurnStart(_message(row), reply, [], conversation, duplicate=True)

    def _insert(self, conn: Connection, conversation_id: str, role: str, content: str, status: str,
                now: datetime, client_id: str | None, parent_id: int | None) -> dict:
        """Insert one message and return it as a dict (built from the values, sparing a read-back)."""
        row = {"conversation_id": conversation_id, "role": role, "content": content, "reasoning": None,
               "status": status, "created_at": now, "updated_at": now, "client_id": client_id, "usage": None,
               "finish_reason": None, "error_code": None, "model": None, "speed": None, "parent_id": parent_id,
               "attachments": None, "sources": None, "tools": None}
        row["id"] = insert_row(conn, messages, **row).inserted_primary_key[0]
        return {**{name: row[name] for name in MESSAGE_FIELDS}, "created_at": _iso(now)}

    def _started(self, conn: Connection, owner_id: str, conversation: dict, message: dict | None, reply: dict,
                 now: datetime, context_limit: int, page_size: int | None) -> TurnStart:
        """Finish a turn's transaction: the reply becomes the active leaf, conversation order and title, active
        conversation, the context's messages (and the page to show, when asked for)."""
        update_row(conn, conversations, conversation["id"], updated_at=now, title=conversation["title"],
                   active_leaf_id=reply["id"])
        update_row(conn, owners, owner_id, active_conversation_id=conversation["id"], last_seen_at=now)
        path, more = read_path(conn, conversation["id"], reply["id"], max(context_limit + 1, page_size or 0))
        history = path[:-1][-context_limit:] if context_limit else []
        page = None
        if page_size:
            more = more or len(path) > page_size
            page = add_versions(conn, conversation["id"], path[-page_size:])
        added = 2 if message is not None else 1
        conversation = {**conversation, "updated_at": _iso(now),
                        "message_count": conversation["message_count"] + added}
        return TurnStart(message, reply, history, conversation, page=page, more=more)


# Seconds between two writes of an owner's last-seen time on connect (the idle clean-up needs no finer grain).
LAST_SEEN_EVERY = timedelta(hours=1)
