"""The chunk index of documents: which pieces of an owner's documents best match a question, with the project's
full-text machinery (SQLite FTS5 with bm25, Postgres tsvector with ts_rank, as in search.py), owner-scoped.

A question is not a search box: any of its words may match (OR), and the rank decides. Its words are taken out
and quoted one by one, so nothing in it is query syntax."""

from __future__ import annotations

import re

import sqlalchemy as sa

from .rows import _valid_id
from .schema import blobs, file_chunks, files

MAX_QUESTION_WORDS = 32
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both backends' tokenizers count as a word

_SQLITE_BEST = sa.text("""
    SELECT c.blob_id AS blob_id, c.n AS n, c.page AS page, c.heading AS heading, c.text AS text
    FROM file_chunks_fts JOIN file_chunks AS c ON c.id = file_chunks_fts.rowid
         JOIN blobs AS b ON b.id = c.blob_id
    WHERE file_chunks_fts MATCH :query AND b.owner_id = :owner AND c.blob_id IN :blobs
    ORDER BY file_chunks_fts.rank, c.n LIMIT :limit""").bindparams(sa.bindparam("blobs", expanding=True))
_PG_BEST = sa.text("""
    SELECT c.blob_id AS blob_id, c.n AS n, c.page AS page, c.heading AS heading, c.text AS text
    FROM file_chunks AS c JOIN blobs AS b ON b.id = c.blob_id, to_tsquery('simple', :query) AS q
    WHERE b.owner_id = :owner AND c.blob_id IN :blobs AND c.search @@ q
    ORDER BY ts_rank(c.search, q) DESC, c.n LIMIT :limit""").bindparams(sa.bindparam("blobs", expanding=True))


def question_words(text: str) -> list[str]:
    """The distinct words of a question (lower-cased, at most MAX_QUESTION_WORDS, longest first: rare words carry
    the meaning, and a long question is cut where it matters least)."""
    words = dict.fromkeys(match.group().lower() for match in _WORD.finditer(text))
    return sorted(words, key=len, reverse=True)[:MAX_QUESTION_WORDS]


class ChunkQueries:
    """Chunk reads (mixed into Store, which provides `_transaction` and `dialect`)."""

    def best_chunks(self, owner_id: str, blob_ids: list[int], question: str, limit: int = 20) -> list[dict]:
        """The chunks of the owner's blobs `blob_ids` that best match `question`, best first:
        [{blob_id, n, page, heading, text}]."""
        words = question_words(question)
        if not words or not blob_ids or not _valid_id(owner_id):
            return []
        if self.dialect == "sqlite":
            query, statement = " OR ".join(f'"{word}"' for word in words), _SQLITE_BEST
        else:
            query, statement = " | ".join(f"'{word}'" for word in words), _PG_BEST
        with self._transaction(write=False) as conn:
            rows = conn.execute(statement, {"query": query, "owner": owner_id, "blobs": list(blob_ids),
                                            "limit": limit})
            return [dict(row._mapping) for row in rows]

    def blob_chunks(self, owner_id: str, blob_id: int) -> list[dict]:
        """Every chunk of one of the owner's blobs, in document order: [{blob_id, n, page, heading, text}]."""
        query = (sa.select(file_chunks.c.blob_id, file_chunks.c.n, file_chunks.c.page, file_chunks.c.heading,
                           file_chunks.c.text)
                 .join(blobs, blobs.c.id == file_chunks.c.blob_id)
                 .where(file_chunks.c.blob_id == blob_id, blobs.c.owner_id == owner_id)
                 .order_by(file_chunks.c.n))
        with self._transaction(write=False) as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def file_texts(self, owner_id: str, file_ids: list[str]) -> dict[str, str]:
        """The extracted text of the owner's documents among `file_ids` (for export): {file_id: text}."""
        wanted = [file_id for file_id in file_ids if _valid_id(file_id)]
        if not wanted or not _valid_id(owner_id):
            return {}
        query = (sa.select(files.c.id, file_chunks.c.text)
                 .join(file_chunks, file_chunks.c.blob_id == files.c.blob_id)
                 .where(files.c.owner_id == owner_id, files.c.id.in_(wanted))
                 .order_by(files.c.id, file_chunks.c.n))
        texts: dict[str, list[str]] = {}
        with self._transaction(write=False) as conn:
            for row in conn.execute(query):
                texts.setdefault(row.id, []).append(row.text)
        return {file_id: "\n\n".join(parts) for file_id, parts in texts.items()}
