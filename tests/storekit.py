"""The store test kit: conversations made through the production write path, and reads that only tests need.

Messages are written the way the app writes them: `begin_turn` (the user message and a streaming reply, one
transaction), `checkpoint_many` (text so far), `finish_reply` (the reply's final write). So a store test breaks when
that path breaks, not only when a test-only method does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from chatbot.store import Store, owners
from chatbot.store.schema import usage_hourly


def new_owner(store: Store) -> str:
    """A new anonymous owner, as a first visit makes it (with one empty, active conversation)."""
    return store.create_session()[0]


def owner_exists(store: Store, owner_id: str) -> bool:
    """Whether the owner's row exists (read past the store's scoping; anything but a 32-hex id cannot)."""
    if not isinstance(owner_id, str) or re.fullmatch(r"[0-9a-f]{32}", owner_id) is None:
        return False
    with store.engine.connect() as conn:
        return conn.scalar(sa.select(owners.c.id).where(owners.c.id == owner_id)) is not None


def turn(store: Store, owner_id: str, conversation_id: str, question: str, answer: str | None = "", *,
         client_id: str | None = None, status: str = "complete", **fields) -> tuple[dict, dict]:
    """One turn: begin_turn, then (unless `answer` is None, which leaves the reply streaming) the reply's final write
    with `answer`, `status` and `fields`. Returns (user message, reply) as stored."""
    started = store.begin_turn(owner_id, conversation_id, question, client_id=client_id, context_limit=0)
    if answer is not None:
        store.finish_reply(started.reply["id"], user_id=None, tokens=0, content=answer, status=status, **fields)
    return started.message, store.get_message(owner_id, started.reply["id"])


def fill(store: Store, owner_id: str, conversation_id: str, texts: list[str]) -> list[dict]:
    """Alternating question and answer `texts` as finished turns (an odd last question leaves its reply streaming);
    returns the stored messages, oldest first."""
    made: list[dict] = []
    for index in range(0, len(texts), 2):
        answer = texts[index + 1] if index + 1 < len(texts) else None
        message, reply = turn(store, owner_id, conversation_id, texts[index], answer)
        made += [message, reply] if answer is not None else [message]
    return made


def messages_of(store: Store, owner_id: str, conversation_id: str) -> list[dict]:
    """Every message of one of the owner's conversations (all branches), oldest first."""
    return store.tree(owner_id, conversation_id)[1]


def tokens_today(store: Store, user_id: str) -> int:
    """Tokens the account spent since midnight UTC, as the quota counts them."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    query = sa.select(sa.func.coalesce(sa.func.sum(usage_hourly.c.tokens), 0)).where(
        usage_hourly.c.user_id == user_id, usage_hourly.c.hour >= midnight)
    with store.engine.connect() as conn:
        return int(conn.scalar(query))


def count_rows(store, table):
    """Count the rows of a table, bypassing the Store's scoping."""
    with store.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def backdate(store, table, column, row_id, seconds):
    """Move a timestamp into the past instead of waiting."""
    with store.engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=seconds)
        conn.execute(sa.update(table).where(table.c.id == row_id).values({column: past}))
