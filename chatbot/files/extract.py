"""Text out of documents, in sections that know their page (PDF) or heading (DOCX, Markdown, HTML): pypdf page by
page, python-docx in body order, and plain decoding for text, Markdown, CSV, JSON, HTML (text only) and code.

Every reader is bounded: pages, parts of a zip and characters have ceilings, so a hostile file ends as a clear
error rather than hours of work or gigabytes of memory (the worker process adds hard time and memory limits)."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser

from .errors import FileRejected
from .sniff import DOCX_MIME, decode_text

MAX_PAGES = 2000
MAX_TEXT_CHARS = 2_000_000  # characters kept from one document
DOCX_MAX_UNCOMPRESSED = 100 * 2**20  # bytes of all parts of a DOCX, as its zip directory declares them
DOCX_MAX_PARTS = 2000
DOCX_MAX_RATIO = 200  # uncompressed / compressed of one part: text compresses ~10x, a bomb ~1000x
PASSWORD = "This PDF is password-protected."
SCAN = "No text in this PDF — it may be a scan."
DAMAGED_PDF = "This PDF could not be read: it may be damaged or truncated."
DAMAGED_DOCX = "This Word document could not be read: it may be damaged or truncated."
BOMB = "This Word document expands to far more than its size: it was refused."
PDF_BOMB = "This PDF expands to far more than its size: it was refused."


@dataclass(frozen=True)
class Section:
    """A stretch of a document's text with where it is: a page number (from 1) or the heading it falls under."""

    text: str
    page: int | None = None
    heading: str | None = None


def extract(data: bytes, mime: str) -> tuple[list[Section], int | None]:
    """The document's sections and its page count (PDF only); FileRejected when there is nothing usable."""
    if mime == "application/pdf":
        sections, pages = extract_pdf(data)
    elif mime == DOCX_MIME:
        sections, pages = extract_docx(data), None
    else:
        sections, pages = extract_text(decode_text(data), mime), None
    if not any(section.text.strip() for section in sections):
        raise FileRejected(SCAN if mime == "application/pdf" else "There is no text in this file.")
    return _capped(sections), pages


def _capped(sections: list[Section]) -> list[Section]:
    """The sections up to MAX_TEXT_CHARS characters in all (a huge document is read as far as that)."""
    kept, used = [], 0
    for section in sections:
        if used >= MAX_TEXT_CHARS:
            break
        text = section.text[:MAX_TEXT_CHARS - used]
        kept.append(Section(text, section.page, section.heading))
        used += len(text)
    return kept


def extract_pdf(data: bytes) -> tuple[list[Section], int]:
    """One section per page with text, numbered from 1; encrypted (with a real password) or broken PDFs refused."""
    import pypdf
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    # pypdf 7 caps what a stream may inflate to, and much more (its Configuration, ~75 MB each): a PDF bomb ends
    # as an error here, and the worker's memory limit covers the rest.
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRejected(PASSWORD)
        pages = len(reader.pages)
    except FileRejected:
        raise
    except FileNotDecryptedError:
        raise FileRejected(PASSWORD) from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            NotImplementedError, OSError, AssertionError, ZeroDivisionError):
        raise FileRejected(DAMAGED_PDF) from None
    if pages > MAX_PAGES:
        raise FileRejected(f"This PDF has {pages} pages: at most {MAX_PAGES} can be read.")
    sections, used = [], 0
    for number in range(pages):
        try:
            text = reader.pages[number].extract_text() or ""
        except FileNotDecryptedError:
            raise FileRejected(PASSWORD) from None
        except LimitReachedError:  # a stream that inflates past pypdf's caps: a PDF bomb
            raise FileRejected(PDF_BOMB) from None
        except Exception:  # one unreadable page (a broken font, a bad stream) does not spoil the others
            continue
        text = _tidy(text)
        if text:
            sections.append(Section(text, page=number + 1))
            used += len(text)
            if used >= MAX_TEXT_CHARS:
                break
    return sections, pages


def check_zip(data: bytes) -> None:
    """Refuse a zip whose parts, as its directory declares them, are too many or inflate too far (a zip bomb).

    zipfile never inflates a part past its declared size (it stops and the CRC check fails), so the declared
    sizes are a real bound."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise FileRejected(DAMAGED_DOCX) from None
    if len(infos) > DOCX_MAX_PARTS or sum(info.file_size for info in infos) > DOCX_MAX_UNCOMPRESSED:
        raise FileRejected(BOMB)
    for info in infos:
        if info.file_size > 2**20 and info.file_size > DOCX_MAX_RATIO * max(1, info.compress_size):
            raise FileRejected(BOMB)


def extract_docx(data: bytes) -> list[Section]:
    """Paragraphs and tables in body order; a heading paragraph starts a new section under that heading."""
    check_zip(data)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except Exception:  # python-docx raises many kinds (KeyError for a missing part, lxml errors, zip errors)
        raise FileRejected(DAMAGED_DOCX) from None
    sections: list[Section] = []
    heading, lines = None, []

    def close() -> None:
        text = _tidy("\n".join(lines))
        if text:
            sections.append(Section(text, heading=heading))

    for block in blocks:
        if isinstance(block, Table):
            for row in block.rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
            continue
        style = (block.style.name if block.style is not None else "") or ""
        text = block.text.strip()
        if text and (style.startswith("Heading") or style == "Title"):
            close()
            heading, lines = text[:200], [text]
        elif text:
            lines.append(text)
    close()
    return sections


_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def extract_text(text: str, mime: str) -> list[Section]:
    """Text as sections: HTML reduced to its text (headings start sections), Markdown split at headings, anything
    else (plain, CSV, JSON, code) one section."""
    if mime == "text/html":
        return _html_sections(text)
    if mime == "text/markdown":
        sections, heading, lines = [], None, []
        for line in text.splitlines():
            match = _MD_HEADING.match(line)
            if match:
                if "\n".join(lines).strip():
                    sections.append(Section("\n".join(lines).strip(), heading=heading))
                heading, lines = match.group(1)[:200], [line]
            else:
                lines.append(line)
        if "\n".join(lines).strip():
            sections.append(Section("\n".join(lines).strip(), heading=heading))
        return sections
    return [Section(text.strip())]


class _HTMLText(HTMLParser):
    """Collects an HTML page's visible text (no script, style or template), breaking lines at blocks."""

    BLOCKS = {"p", "div", "br", "li", "tr", "section", "article", "header", "footer", "pre", "blockquote", "table",
              "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "title"}
    HIDDEN = {"script", "style", "template", "noscript", "head"}

    def __init__(self) -> None:
        """Start with nothing collected."""
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.heading: str | None = None
        self.parts: list[str] = []
        self.hidden = 0
        self.in_heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        """Note hidden regions, headings and line breaks."""
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6") and not self.hidden:
            self._close()
            self.in_heading = []
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        """Leave hidden regions; a finished heading names the section that follows."""
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self.in_heading is not None:
            self.heading = " ".join("".join(self.in_heading).split())[:200] or None
            self.in_heading = None
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        """Keep visible text."""
        if not self.hidden:
            self.parts.append(data)
            if self.in_heading is not None:
                self.in_heading.append(data)

    def _close(self) -> None:
        """End the current section."""
        text = _tidy("".join(self.parts))
        if text:
            self.sections.append(Section(text, heading=self.heading))
        self.parts = []


def _html_sections(text: str) -> list[Section]:
    """The visible text of an HTML document, split at its headings."""
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    parser._close()
    return parser.sections


def _tidy(text: str) -> str:
    """Trim trailing spaces and runs of blank lines (keeping paragraph breaks), and drop NUL."""
    text = text.replace("\x00", "")
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
