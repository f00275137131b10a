"""Extraction (PDF pages, DOCX headings, text kinds) and chunking, on real files made by the tests."""

from __future__ import annotations

import pytest

from chatbot.files import extract as extract_module
from chatbot.files.chunking import chunk_sections, split_text
from chatbot.files.errors import FileRejected
from chatbot.files.extract import BOMB, PASSWORD, SCAN, Section, extract
from chatbot.files.sniff import DOCX_MIME
from tests import files_kit


def test_pdf_pages_keep_their_numbers():
    """Each page's known text comes back with its page number."""
    sections, pages = extract(files_kit.make_pdf(5), "application/pdf")
    assert pages == 5
    assert [s.page for s in sections] == [1, 2, 3, 4, 5]
    assert "zebra003word" in sections[2].text and "zebra003word" not in sections[1].text


def test_encrypted_pdf_is_a_clear_failure():
    """A PDF behind a password fails with the sentence people are shown."""
    with pytest.raises(FileRejected) as caught:
        extract(files_kit.make_encrypted_pdf(), "application/pdf")
    assert caught.value.message == PASSWORD == "This PDF is password-protected."


def test_pdf_without_text_says_it_may_be_a_scan():
    """No text at all: probably a scan."""
    with pytest.raises(FileRejected) as caught:
        extract(files_kit.make_scanned_pdf(), "application/pdf")
    assert caught.value.message == SCAN


@pytest.mark.parametrize("cut", [40, 400])
def test_truncated_pdf_fails_cleanly(cut):
    """A PDF cut short is refused (or read as far as it goes), never an unhandled exception."""
    data = files_kit.make_pdf(3)[:cut]
    try:
        sections, _ = extract(data, "application/pdf")
    except FileRejected as exc:
        assert exc.message.endswith(".")
    else:
        assert sections


def test_pdf_bomb_fails_cleanly():
    """A content stream that would inflate to 200 MB is cut off by pypdf's caps: a clear failure, no text."""
    bomb = files_kit.make_pdf_bomb(200)
    assert len(bomb) < 1_000_000
    with pytest.raises(FileRejected) as caught:
        extract(bomb, "application/pdf")
    assert caught.value.message in (SCAN, extract_module.PDF_BOMB)


def test_docx_keeps_headings_and_tables():
    """Paragraphs fall under their heading; a table's cells are read."""
    sections = extract(files_kit.make_docx(), DOCX_MIME)[0]
    by_heading = {s.heading: s.text for s in sections}
    assert "walrusdays" in by_heading["Holidays"]
    assert "narwhal" in by_heading["Expenses"] and "Hotel | 120 EUR" in by_heading["Expenses"]


def test_docx_zip_bomb_refused_before_inflating():
    """A DOCX whose parts declare hundreds of megabytes is refused from its zip directory alone."""
    with pytest.raises(FileRejected) as caught:
        extract(files_kit.make_docx_bomb(200), DOCX_MIME)
    assert caught.value.message == BOMB


def test_docx_with_high_ratio_part_refused(monkeypatch):
    """A single part inflating far beyond its compressed size is a bomb even under the total ceiling."""
    monkeypatch.setattr(extract_module, "DOCX_MAX_UNCOMPRESSED", 10**12)
    with pytest.raises(FileRejected):
        extract(files_kit.make_docx_bomb(20), DOCX_MIME)


def test_truncated_docx_fails_cleanly():
    """Half a DOCX is a damaged document."""
    data = files_kit.make_docx()
    with pytest.raises(FileRejected):
        extract(data[: len(data) // 2], DOCX_MIME)


def test_html_text_only():
    """Script and style are dropped; headings start sections."""
    html = (b"<html><head><title>t</title><script>steal()</script><style>p{}</style></head><body>"
            b"<h1>Intro</h1><p>Hello <b>there</b></p><h2>More</h2><p>Second part</p></body></html>")
    sections = extract(html, "text/html")[0]
    text = " ".join(s.text for s in sections)
    assert "steal" not in text and "p{}" not in text
    assert {s.heading for s in sections} >= {"Intro", "More"}
    assert any(s.heading == "More" and "Second part" in s.text for s in sections)


def test_markdown_sections_and_plain_text():
    """Markdown splits at headings; CSV and JSON are read as they are."""
    sections = extract(b"# One\nalpha\n\n## Two\nbeta\n", "text/markdown")[0]
    assert [(s.heading, "alpha" in s.text) for s in sections] == [("One", True), ("Two", False)]
    assert extract(b"a,b\n1,2\n", "text/csv")[0] == [Section("a,b\n1,2")]


def test_chunks_respect_pages_and_size():
    """Chunks stay within their page, about CHUNK_CHARS long, cut at paragraph boundaries."""
    paragraph = "word " * 150  # ~750 characters
    sections = [Section(f"{paragraph}\n\n{paragraph}\n\n{paragraph}", page=1), Section("short", page=2)]
    chunks = chunk_sections(sections, 1000)
    assert [c.page for c in chunks] == [1, 1, 1, 2]
    assert all(len(c.text) <= 1000 for c in chunks)
    assert [c.n for c in chunks] == [0, 1, 2, 3]


def test_split_text_cuts_long_runs():
    """A paragraph with no break at all is still cut to size, and nothing is lost."""
    text = "x" * 2500
    pieces = split_text(text, 1000)
    assert [len(p) for p in pieces] == [1000, 1000, 500]
    sentences = " ".join(f"Sentence {i} ends here." for i in range(200))
    pieces = split_text(sentences, 300)
    assert all(len(p) <= 300 for p in pieces) and all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == sentences
