"""Share links: a read-only snapshot of a conversation's active path, as stored when shared, under an unguessable
id. The owner lists, refreshes (sharing again) and revokes them; anyone with the id reads a live one; a signed-in
reader can copy one into their own conversations."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .rows import DEFAULT_TITLE, NotFound, _iso, _now, _valid_id
from .schema import SHARE_ID_MAX, conversations, messages, owners, shares
from .tree import active_leaf, read_path

_SHARE_ID = re.compile(rf"[A-Za-z0-9_-]{{16,{SHARE_ID_MAX}}}")
SHARE_ID_BYTES = 24  # 192 bits of randomness: 32 URL-safe characters


def valid_share_id(value: object) -> bool:
    """Tell whether value can be a share id (anything else cannot exist)."""
    return isinstance(value, str) and _SHARE_ID.fullmatch(value) is not None


def _live(now: datetime) -> sa.ColumnElement:
    """Shares neither revoked nor expired at `now`."""
    return sa.and_(shares.c.revoked_at.is_(None), sa.or_(shares.c.expires_at.is_(None), shares.c.expires_at > now))


def _share(row: sa.Row) -> dict:
    """Turn a shares row into the owner's view of a share (without its snapshot)."""
    return {"share_id": row.id, "conversation_id": row.conversation_id, "title": row.title,
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
            "expires_at": None if row.expires_at is None else _iso(row.expires_at)}


def _snapshot(conn: Connection, conversation_id: str) -> list[dict]:
    """The conversation's active path as stored now: finished text only (a reply still streaming is left out), with
    a reply's tool steps."""
    leaf = conn.scalar(sa.select(active_leaf()).where(conversations.c.id == conversation_id))
    path, _ = read_path(conn, conversation_id, leaf, None)
    return [{"role": m["role"], "content": m["content"], "created_at": m["created_at"], "model": m["model"],
             **({"tools": m["tools"]} if m.get("tools") else {})}
            for m in path if m["status"] != "streaming" and m["content"]]


class ShareQueries:
    """Share link queries (mixed into Store, which provides `_transaction` and `_owned_conversation`)."""

    def share_conversation(self, owner_id: str, conversation_id: str, expires_at: datetime | None) -> dict:
        """Snapshot one of the owner's conversations under a link and return the share; a live link to it is
        refreshed (same id, the path as it is now, the new expiry). NotFound if the conversation is not the
        owner's."""
        now = _now()
        with self._transaction() as conn:
            conversation = self._owned_conversation(conn, owner_id, conversation_id, lock=True)
            snapshot = _snapshot(conn, conversation_id)
            existing = conn.scalar(sa.select(shares.c.id).where(shares.c.conversation_id == conversation_id,
                                                                shares.c.owner_id == owner_id, _live(now))
                                   .order_by(shares.c.created_at.desc()).limit(1))
            values = {"title": conversation.title, "snapshot": snapshot, "updated_at": now, "expires_at": expires_at}
            if existing is not None:
                share_id = existing
                conn.execute(sa.update(shares).where(shares.c.id == share_id).values(**values))
            else:
                share_id = secrets.token_urlsafe(SHARE_ID_BYTES)
                conn.execute(sa.insert(shares).values(id=share_id, owner_id=owner_id, conversation_id=conversation_id,
                                                      created_at=now, revoked_at=None, **values))
            return _share(conn.execute(sa.select(shares).where(shares.c.id == share_id)).one())

    def list_shares(self, owner_id: str) -> list[dict]:
        """The owner's live share links, newest first."""
        if not _valid_id(owner_id):
            return []
        query = (sa.select(shares).where(shares.c.owner_id == owner_id, _live(_now()))
                 .order_by(shares.c.created_at.desc()))
        with self._transaction(write=False) as conn:
            return [_share(row) for row in conn.execute(query)]

    def revoke_share(self, owner_id: str, share_id: str) -> None:
        """Revoke one of the owner's live links (its URL then finds nothing); NotFound if it is not the owner's or
        no longer live."""
        if not (_valid_id(owner_id) and valid_share_id(share_id)):
            raise NotFound(share_id)
        now = _now()
        with self._transaction() as conn:
            revoked = conn.execute(sa.update(shares)
                                   .where(shares.c.id == share_id, shares.c.owner_id == owner_id, _live(now))
                                   .values(revoked_at=now)).rowcount
        if not revoked:
            raise NotFound(share_id)

    def shared(self, share_id: str) -> dict | None:
        """A live share as anyone with its id sees it: {share_id, title, messages, created_at, updated_at,
        expires_at}; None when unknown, revoked or expired."""
        if not valid_share_id(share_id):
            return None
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(shares).where(shares.c.id == share_id, _live(_now()))).first()
        if row is None:
            return None
        share = _share(row)
        del share["conversation_id"]  # nothing of the owner's other data leaves with the link
        return {**share, "messages": list(row.snapshot)}

    def copy_share(self, owner_id: str, share_id: str) -> dict:
        """Copy a live share's snapshot into a new conversation of the owner's (one path, made the owner's active
        conversation) and return that conversation; NotFound if the share is not live or the owner unknown."""
        share = self.shared(share_id)
        if share is None or not _valid_id(owner_id):
            raise NotFound(share_id)
        now = _now()
        conversation_id = uuid.uuid4().hex
        with self._transaction() as conn:
            if conn.scalar(sa.select(owners.c.id).where(owners.c.id == owner_id)) is None:
                raise NotFound(owner_id)
            conn.execute(sa.insert(conversations).values(
                id=conversation_id, owner_id=owner_id, title=share["title"] or DEFAULT_TITLE, created_at=now,
                updated_at=now, model=None))
            parent = None
            for message in share["messages"]:
                parent = conn.execute(sa.insert(messages).values(
                    conversation_id=conversation_id, role=message["role"], content=message["content"],
                    reasoning=None, status="complete", created_at=now, updated_at=now, client_id=None, usage=None,
                    finish_reason=None, error_code=None, model=message.get("model"), speed=None, parent_id=parent,
                )).inserted_primary_key[0]
            conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id)
                         .values(active_leaf_id=parent))
            conn.execute(sa.update(owners).where(owners.c.id == owner_id)
                         .values(active_conversation_id=conversation_id))
        return self.get_conversation(owner_id, conversation_id)
