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


def read_path(conn: Connection, conversation_id: str, start, limit: int | None) -> tuple[list[dict], bool]:
    """The path from message `start` (an id or an SQL expression) up towards the root: at most `limit` messages
    (all with None), oldest first, and whether older ones exist above them."""
    if start is None or limit == 0:
        return [], False
    anchor = sa.select(messages.c.id, messages.c.parent_id, sa.literal_column("1").label("depth")).where(
        messages.c.id == start, messages.c.conversation_id == conversation_id)
    path = anchor.cte("path", recursive=True)
    parent = messages.alias("parent")
    step = sa.select(parent.c.id, parent.c.parent_id, (path.c.depth + 1).label("depth")).where(
        parent.c.id == path.c.parent_id, parent.c.conversation_id == conversation_id)
    if limit is not None:
        step = step.where(path.c.depth < limit)  # bounds the recursion itself, on both backends
    path = path.union_all(step)
    query = sa.select(*_MESSAGE_COLUMNS).join(path, path.c.id == messages.c.id).order_by(path.c.depth.desc())
    page = [_message(row) for row in conn.execute(query)]
    return page, bool(page) and page[0]["parent_id"] is not None


def add_versions(conn: Connection, conversation_id: str, page: list[dict]) -> list[dict]:
    """Mark each message of a path with its siblings: `version` (1-based, by age), `versions`, `sibling_ids`."""
    if not page:
        return page
    parents = {message["parent_id"] for message in page}
    known = [parent for parent in parents if parent is not None]
    same_parent = [messages.c.parent_id.in_(known)] if known else []
    if None in parents:
        same_parent.append(messages.c.parent_id.is_(None))
    query = (sa.select(messages.c.id, messages.c.parent_id)
             .where(messages.c.conversation_id == conversation_id, sa.or_(*same_parent)).order_by(messages.c.id))
    siblings: dict[int | None, list[int]] = defaultdict(list)
    for row in conn.execute(query):
        siblings[row.parent_id].append(row.id)
    for message in page:
        ids = siblings[message["parent_id"]] or [message["id"]]
        message["sibling_ids"] = ids
        message["versions"] = len(ids)
        message["version"] = ids.index(message["id"]) + 1 if message["id"] in ids else len(ids)
    return page


def newest_leaf_under(conn: Connection, conversation_id: str, message_id: int) -> int | None:
    """The newest message in the subtree under `message_id` (itself included): always a leaf, as children are
    younger than their parents."""
    anchor = sa.select(messages.c.id).where(messages.c.id == message_id, messages.c.conversation_id == conversation_id)
    below = anchor.cte("below", recursive=True)
    child = messages.alias("child")
    below = below.union_all(sa.select(child.c.id).where(child.c.parent_id == below.c.id,
                                                        child.c.conversation_id == conversation_id))
    return conn.scalar(sa.select(sa.func.max(below.c.id)))


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
