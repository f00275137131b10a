"""Search an owner's conversation titles and message text: SQLite FTS5 or Postgres full text behind one call.

The user's query is never handed to a query language: its words (runs of letters and digits) are taken out and
quoted one by one, so FTS syntax, quotes or `%` in it are just text. Every word must match, as a whole word, case
folded (accents count); the last one also as a prefix while it is still being typed. Titles come first (up to a
quarter of the results), then messages by relevance (FTS5's bm25, Postgres's ts_rank), newest first among equals.
A reply that is still streaming is found once it is finished. Snippets come back as pieces `{text, match}`, marked
here in Python, never as markup.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from .rows import _iso, _valid_id
from .schema import UTCDateTime

QUERY_MAX = 200  # characters of a query
MAX_WORDS = 8  # words of a query used (the rest are ignored)
MAX_RESULTS = 50
_WORD = re.compile(r"[^\W_]+")  # what both backends' tokenizers count as a word (letters and digits)
_SNIPPET_TOKENS = 14
_SNIPPET_SOURCE_MAX = 100_000  # characters of a message in which a Postgres snippet is looked for

_SQLITE_TITLES = sa.text("""
    SELECT c.id AS conversation_id, c.title AS title, c.updated_at AS created_at
    FROM conversations_fts JOIN conversations AS c ON c.id = conversations_fts.conversation_key
    WHERE conversations_fts MATCH :query AND c.owner_id = :owner
    ORDER BY conversations_fts.rank, c.updated_at DESC LIMIT :limit""").columns(created_at=UTCDateTime)
_SQLITE_MESSAGES = sa.text("""
    SELECT m.id AS message_id, m.conversation_id AS conversation_id, m.role AS role, m.created_at AS created_at,
           c.title AS title
    FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid
         JOIN conversations AS c ON c.id = m.conversation_id
    WHERE messages_fts MATCH :query AND c.owner_id = :owner
    ORDER BY messages_fts.rank, m.id DESC LIMIT :limit""").columns(created_at=UTCDateTime)
# Snippets only for the hits shown, not for every match.
_SQLITE_SNIPPETS = sa.text(f"""
    SELECT rowid AS message_id, snippet(messages_fts, 0, '', '', '…', {_SNIPPET_TOKENS}) AS snippet
    FROM messages_fts WHERE messages_fts MATCH :query AND rowid IN :ids""").bindparams(
    sa.bindparam("ids", expanding=True))

_PG_TITLES = sa.text("""
    SELECT c.id AS conversation_id, c.title AS title, c.updated_at AS created_at
    FROM conversations AS c, to_tsquery('simple', :query) AS q
    WHERE c.owner_id = :owner AND c.search @@ q
    ORDER BY ts_rank(c.search, q) DESC, c.updated_at DESC LIMIT :limit""").columns(created_at=UTCDateTime)
_PG_MESSAGES = sa.text("""
    SELECT m.id AS message_id, m.conversation_id AS conversation_id, m.role AS role, m.created_at AS created_at,
           c.title AS title
    FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id, to_tsquery('simple', :query) AS q
    WHERE c.owner_id = :owner AND m.search @@ q
    ORDER BY ts_rank(m.search, q) DESC, m.id DESC LIMIT :limit""").columns(created_at=UTCDateTime)
# Postgres's ts_headline would drop anything its parser takes for markup (`<b>`), so the window is cut here.
_PG_SNIPPETS = sa.text(f"""
    SELECT id AS message_id, left(content, {_SNIPPET_SOURCE_MAX}) AS content
    FROM messages WHERE id IN :ids""").bindparams(sa.bindparam("ids", expanding=True))


def query_words(query: str) -> tuple[list[str], bool]:
    """The query's words, lower-cased (at most MAX_WORDS), and whether the last one is matched as a prefix (it
    touches the end of the query: the user may still be typing it)."""
    found = list(_WORD.finditer(query))[:MAX_WORDS]
    words = [match.group().lower() for match in found]
    return words, bool(found) and found[-1].end() == len(query)


def mark(text: str, words: list[str], prefix: bool) -> list[dict]:
    """Split `text` into pieces `{text, match}`; a piece matches when it is one of `words` (the last one may be a
    prefix). Neighbouring unmatched text is one piece."""
    whole, last = set(words), (words[-1] if prefix and words else None)
    pieces: list[dict] = []
    at = 0

    def add(piece: str, match: bool) -> None:
        if not piece:
            return
        if pieces and not pieces[-1]["match"] and not match:
            pieces[-1]["text"] += piece
        else:
            pieces.append({"text": piece, "match": match})

    for token in _WORD.finditer(text):
        word = token.group().lower()
        if word in whole or (last is not None and word.startswith(last)):
            add(text[at:token.start()], False)
            add(token.group(), True)
            at = token.end()
    add(text[at:], False)
    return pieces


def window(text: str, words: list[str], prefix: bool, size: int = _SNIPPET_TOKENS) -> str:
    """About `size` words of `text` around its first match, with an ellipsis where the text goes on (as FTS5's
    snippet() does)."""
    whole, last = set(words), (words[-1] if prefix and words else None)
    tokens = list(_WORD.finditer(text))
    hit = next((i for i, token in enumerate(tokens) if token.group().lower() in whole
                or (last is not None and token.group().lower().startswith(last))), 0)
    if len(tokens) <= size:
        return text.strip()
    first = min(max(0, hit - size // 3), len(tokens) - size)
    start, end = tokens[first].start(), tokens[first + size - 1].end()
    return ("…" if text[:start].strip() else "") + text[start:end] + ("…" if text[end:].strip() else "")


def _fts5(words: list[str], prefix: bool) -> str:
    """An FTS5 query: every word quoted (so nothing in it is syntax), all required, the last maybe a prefix."""
    terms = [f'"{word}"' for word in words]
    if prefix:
        terms[-1] += "*"
    return " ".join(terms)


def _tsquery(words: list[str], prefix: bool) -> str:
    """A to_tsquery() text: every word quoted as a lexeme (words hold only letters and digits), all required."""
    terms = [f"'{word}'" for word in words]
    if prefix:
        terms[-1] += ":*"
    return " & ".join(terms)


class SearchQueries:
    """Full-text search (mixed into Store, which provides `_transaction` and `dialect`)."""

    def search(self, owner_id: str, query: str, limit: int = 20) -> list[dict]:
        """The owner's conversations and messages matching `query`, best first: [{conversation_id, message_id
        (None for a title), title, role, created_at, snippet: [{text, match}]}]. Never another owner's."""
        if not isinstance(query, str) or len(query) > QUERY_MAX:
            raise ValueError(f"query must be a string of at most {QUERY_MAX} characters")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_RESULTS:
            raise ValueError(f"limit must be an integer from 1 to {MAX_RESULTS}")
        words, prefix = query_words(query)
        if not words or not _valid_id(owner_id):
            return []
        if self.dialect == "sqlite":
            title_query, text_query = f"title : ({_fts5(words, prefix)})", _fts5(words, prefix)
            statements = _SQLITE_TITLES, _SQLITE_MESSAGES, _SQLITE_SNIPPETS
        else:
            title_query = text_query = _tsquery(words, prefix)
            statements = _PG_TITLES, _PG_MESSAGES, _PG_SNIPPETS
        with self._transaction(write=False) as conn:
            titles = conn.execute(statements[0], {"query": title_query, "owner": owner_id,
                                                  "limit": max(1, limit // 4)}).all()
            hits = conn.execute(statements[1], {"query": text_query, "owner": owner_id,
                                                "limit": limit - len(titles)}).all()
            snippets = {row.message_id: row for row in conn.execute(
                statements[2], {"query": text_query, "ids": [hit.message_id for hit in hits]})} if hits else {}
        results = [{"conversation_id": row.conversation_id, "message_id": None, "title": row.title, "role": None,
                    "created_at": _iso(row.created_at), "snippet": mark(row.title, words, prefix)}
                   for row in titles]
        for hit in hits:
            results.append({"conversation_id": hit.conversation_id, "message_id": hit.message_id, "title": hit.title,
                            "role": hit.role, "created_at": _iso(hit.created_at),
                            "snippet": mark(self._snippet(snippets.get(hit.message_id), words, prefix), words,
                                            prefix)})
        return results

    def _snippet(self, row, words: list[str], prefix: bool) -> str:
        """A hit's snippet text: FTS5's, or on Postgres a window cut from the message's text."""
        if row is None:
            return ""
        return row.snippet if self.dialect == "sqlite" else window(row.content, words, prefix)


