"""Imported conversations (a ChatGPT export, or our own JSON export): every conversation of a file, with its
branches, written in one transaction — all of them or, on any failure, none."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from .rows import DEFAULT_TITLE, NotFound, _check_text, _clean_stream_text, _clean_title, _now, _valid_id, insert_row
from .schema import conversations, messages, owners
from .settings import check_settings


@dataclass
class ImportedMessage:
    """One message of an imported conversation; `parent` is the key of the message it follows (None: a root)."""

    key: str
    parent: str | None
    role: str  # "user" | "assistant"
    content: str
    created_at: datetime | None = None
    model: str | None = None


@dataclass
class ImportedConversation:
    """One imported conversation: its messages, parents before children, and the key of the leaf it shows."""

    title: str
    messages: list[ImportedMessage] = field(default_factory=list)
    leaf: str | None = None
    created_at: datetime | None = None
    settings: dict = field(default_factory=dict)  # instructions, temperature, max_tokens, reasoning_effort


class ImportQueries:
    """Import queries (mixed into Store, which provides `_transaction` and `get_conversation`)."""

    def import_conversations(self, owner_id: str, imported: list[ImportedConversation]) -> list[str]:
        """Write every conversation (messages parents first; the leaf becomes its active leaf) for the owner in one
        transaction and return their ids; NotFound if the owner does not exist, ValueError for unstorable text."""
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        now = _now()
        made = []
        with self._transaction() as conn:
            if conn.scalar(sa.select(owners.c.id).where(owners.c.id == owner_id)) is None:
                raise NotFound(owner_id)
            for conversation in imported:
                conversation_id = uuid.uuid4().hex
                try:
                    title = _clean_title(conversation.title)
                except ValueError:
                    title = DEFAULT_TITLE
                started = conversation.created_at or now
                insert_row(conn, conversations, id=conversation_id, owner_id=owner_id, title=title,
                           created_at=started, updated_at=now, model=None, **check_settings(conversation.settings))
                ids: dict[str, int] = {}
                for message in conversation.messages:
                    if message.parent is not None and message.parent not in ids:
                        raise ValueError("a message's parent must come before it")
                    content = _clean_stream_text(_check_text(message.content, "content"))
                    created = message.created_at or started
                    ids[message.key] = insert_row(
                        conn, messages, conversation_id=conversation_id, role=message.role, content=content,
                        reasoning=None, status="complete", created_at=created, updated_at=created, client_id=None,
                        usage=None, finish_reason=None, error_code=None, model=message.model, speed=None,
                        parent_id=None if message.parent is None else ids[message.parent],
                    ).inserted_primary_key[0]
                leaf = ids.get(conversation.leaf) if conversation.leaf is not None else None
                if leaf is None and ids:
                    leaf = max(ids.values())
                conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id)
                             .values(active_leaf_id=leaf))
                made.append(conversation_id)
        return made
