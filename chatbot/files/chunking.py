"""Chunks: a document's sections cut into pieces of about CHUNK_CHARS characters at paragraph (then line, then
sentence, then word) boundaries, never across a page or heading, each knowing its page or heading."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .extract import Section

CHUNK_CHARS = 1000
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+"))


@dataclass(frozen=True)
class Chunk:
    """One indexed piece of a document: its number (from 0, in document order), text, page and heading."""

    n: int
    text: str
    page: int | None = None
    heading: str | None = None


def chunk_sections(sections: list[Section], size: int = CHUNK_CHARS) -> list[Chunk]:
    """Every section cut into chunks of at most about `size` characters, numbered in order."""
    chunks: list[Chunk] = []
    for section in sections:
        for piece in split_text(section.text, size):
            chunks.append(Chunk(len(chunks), piece, section.page, section.heading))
    return chunks


def split_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """`text` in pieces of at most `size` characters, packed greedily from its paragraphs (a paragraph too long is
    cut at lines, sentences, words, and as a last resort anywhere)."""
    text = text.strip()
    if not text:
        return []
    if len(text) <= size:
        return [text]
    return _pack(_units(text, size, 0), size)


def _units(text: str, size: int, level: int) -> list[tuple[str, str]]:
    """(separator before, piece) pairs, each piece at most `size`, split at the coarsest boundary that works."""
    if len(text) <= size:
        return [("", text)]
    if level == len(_BREAKS):
        return [("", text[at:at + size]) for at in range(0, len(text), size)]
    units: list[tuple[str, str]] = []
    at = 0
    separator = ""
    for match in _BREAKS[level].finditer(text):
        piece = text[at:match.start()]
        if piece:
            sub = _units(piece, size, level + 1)
            units.append((separator, sub[0][1]))
            units.extend(sub[1:])
        separator, at = match.group(), match.end()
    piece = text[at:]
    if piece:
        sub = _units(piece, size, level + 1)
        units.append((separator, sub[0][1]))
        units.extend(sub[1:])
    return units


def _pack(units: list[tuple[str, str]], size: int) -> list[str]:
    """Join consecutive units while they fit in `size`."""
    pieces: list[str] = []
    current = ""
    for separator, unit in units:
        if current and len(current) + len(separator) + len(unit) <= size:
            current += separator + unit
        else:
            if current.strip():
                pieces.append(current.strip())
            current = unit
    if current.strip():
        pieces.append(current.strip())
    return pieces
