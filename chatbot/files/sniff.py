"""What an upload is, from its bytes alone: magic numbers and structure, never its name or the client's MIME type.

The few formats we take have short, fixed signatures, so they are checked here by hand rather than with a
signature database (puremagic would add a dependency whose thousands of guesses we would then have to narrow
down again): PDF, PNG, JPEG, GIF, WebP, DOCX (a zip with a Word document inside) and UTF-8 text. Anything else,
SVG included (it can carry script), is refused.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass

from .errors import FileRejected

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PICTURE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_HTML = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE | re.DOTALL)
_SVG = re.compile(rb"<svg[\s>]", re.IGNORECASE)
_XML_OR_SVG_START = re.compile(rb"^\s*<(\?xml|svg|!doctype\s+svg)", re.IGNORECASE)
_MARKDOWN = re.compile(r"^(#{1,6} |```|[-*] |\d+\. |> )", re.MULTILINE)
UNSUPPORTED = "This file type is not supported: send a PDF, Word (DOCX), text or a PNG, JPEG, WebP or GIF picture."


@dataclass(frozen=True)
class Sniffed:
    """What the bytes are: `kind` image or document, the MIME type we stand behind."""

    kind: str
    mime: str


def sniff(data: bytes) -> Sniffed:
    """Classify `data` by content; FileRejected(file_unsupported) for anything we do not take."""
    head = data[:64]
    for signature, mime in PICTURE_SIGNATURES:
        if head.startswith(signature):
            return Sniffed("image", mime)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    if head.startswith(b"%PDF-"):
        return Sniffed("document", "application/pdf")
    if head.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return Sniffed("document", DOCX_MIME)
        raise FileRejected(UNSUPPORTED)
    return Sniffed("document", _text_mime(data))


def _is_docx(data: bytes) -> bool:
    """A zip whose directory names a Word main document (only the directory is read, nothing inflated)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return "word/document.xml" in names and "[Content_Types].xml" in names


def decode_text(data: bytes) -> str:
    """The text of UTF-8 (or UTF-16 with a byte order mark) bytes; FileRejected when they are not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise FileRejected(UNSUPPORTED) from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FileRejected(UNSUPPORTED) from None
    # NUL and most C0 controls do not occur in text people write: this is a binary format we do not know.
    controls = sum(1 for char in text[:65536] if ord(char) < 32 and char not in "\t\n\r\f")
    if "\x00" in text or controls > max(8, len(text[:65536]) // 100):
        raise FileRejected(UNSUPPORTED)
    return text


def _text_mime(data: bytes) -> str:
    """Which kind of text: JSON, HTML, CSV, Markdown or plain (source code is plain text); SVG is refused."""
    start = data[:4096]
    if _XML_OR_SVG_START.match(start.lstrip(b"\xef\xbb\xbf")) and _SVG.search(data[:65536]):
        raise FileRejected("SVG pictures are not supported: send a PNG, JPEG, WebP or GIF.")
    text = decode_text(data)
    if not text.strip():
        raise FileRejected("This file is empty.")
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            json.loads(stripped)
            return "application/json"
        except ValueError:
            pass
    if _HTML.match(start.lstrip(b"\xef\xbb\xbf")):
        return "text/html"
    if _looks_like_csv(text):
        return "text/csv"
    if len(_MARKDOWN.findall(text[:20000])) >= 2:
        return "text/markdown"
    return "text/plain"


def _looks_like_csv(text: str) -> bool:
    """Several lines that split into the same number (>1) of fields on one delimiter."""
    lines = [line for line in text[:20000].splitlines() if line.strip()][:20]
    if len(lines) < 2:
        return False
    for delimiter in (",", ";", "\t"):
        try:
            widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() > 1:
            return True
    return False
