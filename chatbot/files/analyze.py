"""One upload, start to end, in-process: sniff its type, then extract and chunk a document or re-encode a picture.

`process.analyze_bounded` runs this in a child process with hard time and memory limits; tests call it directly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .chunking import Chunk, chunk_sections
from .errors import FileRejected
from .extract import extract
from .pictures import Picture, reencode
from .sniff import sniff


@dataclass
class Analysis:
    """What an upload turned out to be: kind, MIME type, pages (PDF), chunks (documents) or picture (images)."""

    kind: str
    mime: str
    pages: int | None = None
    chunks: list[Chunk] = field(default_factory=list)
    picture: Picture | None = None

    def header(self) -> dict:
        """Everything but the picture's bytes, as JSON-ready data."""
        return {"kind": self.kind, "mime": self.mime, "pages": self.pages,
                "chunks": [[c.n, c.text, c.page, c.heading] for c in self.chunks],
                "picture": None if self.picture is None else {"mime": self.picture.mime, "width": self.picture.width,
                                                              "height": self.picture.height,
                                                              "size": len(self.picture.data)}}

    @classmethod
    def from_header(cls, header: dict, picture_bytes: bytes) -> Analysis:
        """Rebuild an Analysis from `header()` and the picture's bytes."""
        picture = header.get("picture")
        return cls(header["kind"], header["mime"], header.get("pages"),
                   [Chunk(n, text, page, heading) for n, text, page, heading in header.get("chunks", [])],
                   None if picture is None else Picture(picture_bytes, picture["mime"], picture["width"],
                                                        picture["height"]))


def analyze(data: bytes) -> Analysis:
    """Classify and process one complete upload; FileRejected (with its sentence) when it cannot be used."""
    if not data:
        raise FileRejected("This file is empty.")
    found = sniff(data)
    if found.kind == "image":
        picture = reencode(data, found.mime)
        return Analysis("image", picture.mime, picture=picture)
    sections, pages = extract(data, found.mime)
    return Analysis("document", found.mime, pages, chunk_sections(sections))


def encode_result(analysis: Analysis | None, error: FileRejected | None) -> bytes:
    """The worker's answer: a JSON line, then the picture's bytes (if any)."""
    if error is not None:
        return json.dumps({"error": error.message, "code": error.code}).encode() + b"\n"
    body = analysis.picture.data if analysis.picture else b""
    return json.dumps(analysis.header(), ensure_ascii=False).encode() + b"\n" + body


def decode_result(output: bytes) -> Analysis:
    """Read the worker's answer back; FileRejected when it reported one."""
    line, _, rest = output.partition(b"\n")
    header = json.loads(line)
    if "error" in header:
        raise FileRejected(header["error"], header.get("code", "file_unsupported"))
    return Analysis.from_header(header, rest)
