"""The message tree: every message has a parent (None for a first message) and a conversation has an active leaf.
What a conversation shows and sends upstream is the path from its active leaf up to the root; a message's siblings
(same parent) are its versions. Paths are walked with a recursive CTE, one primary-key step per message."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .rows import _MESSAGE_COLUMNS, NotFound, _message, _valid_id, _valid_message_id
from .schema import conversations, messages, owners


@dataclass
class Branch:
    """The path a switch made active: its conversation, its leaf, and the newest page of it."""

    conversation_id: str
    leaf_id: int
    messages: list[dict]  # oldest first, with versions
    more: bool  # older messages exist on the path


def active_leaf() -> sa.ColumnElement:
    """The active leaf of the conversations row in the enclosing query; a conversation filled outside the store
    (no leaf recorded) ends in its newest message."""
    newest = sa.select(sa.func.max(messages.c.id)).where(messages.c.conversation_id == conversations.c.id)
    return sa.func.coalesce(conversations.c.active_leaf_id, newest.scalar_subquery())


def _path_query(bounded: bool) -> sa.Select:
    """The messages on the path from message :start up towards the root (at most :limit when `bounded`), oldest
    first. Built once: a fresh recursive construct per call costs more Python than its SQL costs the database."""
    conversation_id = sa.bindparam("conversation_id", type_=messages.c.conversation_id.type)
    anchor = sa.select(messages.c.id, messages.c.parent_id, sa.literal_column("1").label("depth")).where(
        messages.c.id == sa.bindparam("start", type_=sa.Integer), messages.c.conversation_id == conversation_id)
    path = anchor.cte("path", recursive=True)
    parent = messages.alias("parent")
    # Each step reads the parent's parent by primary key alone, in a scalar subquery: as a join, or with the
    # conversation in the condition, Postgres may plan a scan of the conversation per step. Parents never cross
    # conversations (the store writes them), and the outer query keeps to the conversation all the same.
    above = sa.select(parent.c.parent_id).where(parent.c.id == path.c.parent_id).scalar_subquery()
    step = sa.select(path.c.parent_id, above, (path.c.depth + 1).label("depth")).where(path.c.parent_id.is_not(None))
    if bounded:
        # Bounds the recursion itself, on both backends.
        step = step.where(path.c.depth < sa.bindparam("limit", type_=sa.Integer))
    path = path.union_all(step)
    return (sa.select(*_MESSAGE_COLUMNS).join(path, path.c.id == messages.c.id)
            .where(messages.c.conversation_id == conversation_id).order_by(path.c.depth.desc()))


_PATH = _path_query(bounded=True)
_WHOLE_PATH = _path_query(bounded=False)
# The children of the page's parents (and the roots, when the page reaches one), oldest first: every version.
_SIBLINGS = (sa.select(messages.c.id, messages.c.parent_id)
             .where(messages.c.conversation_id == sa.bindparam("conversation_id"),
                    sa.or_(messages.c.parent_id.in_(sa.bindparam("parents", expanding=True)),
                           sa.and_(sa.bindparam("roots", type_=sa.Boolean), messages.c.parent_id.is_(None))))
             .order_by(messages.c.id))


def read_path(conn: Connection, conversation_id: str, start: int | None, limit: int | None
              ) -> tuple[list[dict], bool]:
    """The path from message `start` up towards the root: at most `limit` messages (all with None), oldest first,
    and whether older ones exist above them."""
    if start is None or limit == 0:
        return [], False
    params = {"conversation_id": conversation_id, "start": start}
    query = _WHOLE_PATH if limit is None else _PATH
    if limit is not None:
        params["limit"] = limit
    page = [_message(row) for row in conn.execute(query, params)]
    return page, bool(page) and page[0]["parent_id"] is not None


def add_versions(conn: Connection, conversation_id: str, page: list[dict]) -> list[dict]:
    """Mark each message of a path with its siblings: `version` (1-based, by age), `versions`, `sibling_ids`."""
    if not page:
        return page
    parents = {message["parent_id"] for message in page}
    siblings: dict[int | None, list[int]] = defaultdict(list)
    params = {"conversation_id": conversation_id, "parents": [p for p in parents if p is not None],
              "roots": None in parents}
    for row in conn.execute(_SIBLINGS, params):
        siblings[row.parent_id].append(row.id)
    for message in page:
        ids = siblings[message["parent_id"]] or [message["id"]]
        message["sibling_ids"] = ids
        message["versions"] = len(ids)
        message["version"] = ids.index(message["id"]) + 1 if message["id"] in ids else len(ids)
    return page


def newest_leaf_under(conn: Connection, conversation_id: str, message_id: int) -> int:
    """The newest message in the subtree under `message_id` (itself included): always a leaf, as children are
    younger than their parents. One ordered range read of the younger messages: a parent comes before its children,
    so one pass finds the subtree (a recursive CTE downwards makes Postgres scan the table once per level)."""
    younger = (sa.select(messages.c.id, messages.c.parent_id)
               .where(messages.c.conversation_id == conversation_id, messages.c.id > message_id)
               .order_by(messages.c.id))
    under, newest = {message_id}, message_id
    for row in conn.execute(younger):
        if row.parent_id in under:
            under.add(row.id)
            newest = row.id
    return newest


class TreeQueries:
    """Branch queries (mixed into Store, which provides `_transaction` and `_owned_conversation`)."""

    def switch_branch(self, owner_id: str, message_id: int, page_size: int) -> Branch:
        """Make the newest path under one of the owner's messages its conversation's active path (and that
        conversation the owner's active one); NotFound if the message is not the owner's."""
        if not (_valid_id(owner_id) and _valid_message_id(message_id)):
            raise NotFound(message_id)
        with self._transaction() as conn:
            conversation_id = conn.scalar(
                sa.select(messages.c.conversation_id)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(messages.c.id == message_id, conversations.c.owner_id == owner_id))
            if conversation_id is None:
                raise NotFound(message_id)
            leaf = newest_leaf_under(conn, conversation_id, message_id)
            conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id)
                         .values(active_leaf_id=leaf))
            conn.execute(sa.update(owners).where(owners.c.id == owner_id)
                         .values(active_conversation_id=conversation_id))
            page, more = read_path(conn, conversation_id, leaf, page_size)
            return Branch(conversation_id, leaf, add_versions(conn, conversation_id, page), more)

    def active_path(self, owner_id: str, conversation_id: str) -> list[dict]:
        """Every message on the conversation's active path, oldest first; NotFound if it is not the owner's."""
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            return read_path(conn, conversation_id, self._leaf_of(conn, conversation_id), None)[0]

    def tree(self, owner_id: str, conversation_id: str) -> tuple[int | None, list[dict]]:
        """The conversation's active leaf and every message of its tree (all branches, oldest first)."""
        with self._transaction(write=False) as conn:
            self._owned_conversation(conn, owner_id, conversation_id)
            leaf = self._leaf_of(conn, conversation_id)
            query = (sa.select(*_MESSAGE_COLUMNS).where(messages.c.conversation_id == conversation_id)
                     .order_by(messages.c.id))
            return leaf, [_message(row) for row in conn.execute(query)]

    def _leaf_of(self, conn: Connection, conversation_id: str) -> int | None:
        """The conversation's active leaf id (read)."""
        return conn.scalar(sa.select(active_leaf()).where(conversations.c.id == conversation_id))
