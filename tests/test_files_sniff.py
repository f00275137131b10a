"""Content sniffing and file names: the type comes from the bytes, names are made safe."""

from __future__ import annotations

import pytest

from chatbot.files.errors import FileRejected
from chatbot.files.names import ascii_filename, sanitize_filename
from chatbot.files.sniff import DOCX_MIME, sniff
from tests import files_kit


@pytest.mark.parametrize(("make", "kind", "mime"), [
    (lambda: files_kit.make_pdf(1), "document", "application/pdf"),
    (files_kit.make_docx, "document", DOCX_MIME),
    (files_kit.make_png, "image", "image/png"),
    (files_kit.make_jpeg_with_gps, "image", "image/jpeg"),
    (files_kit.make_gif, "image", "image/gif"),
    (files_kit.make_webp, "image", "image/webp"),
    (lambda: b"# Title\n\nSome text\n\n- a point\n", "document", "text/markdown"),
    (lambda: b'{"a": [1, 2]}', "document", "application/json"),
    (lambda: b"name,age\nAda,36\nAlan,41\n", "document", "text/csv"),
    (lambda: b"<!DOCTYPE html><html><body><p>hi</p></body></html>", "document", "text/html"),
    (lambda: b"def f(x):\n    return x + 1\n", "document", "text/plain"),
    (lambda: "Grüße aus Köln\n".encode("utf-16"), "document", "text/plain"),
])
def test_sniff_by_content(make, kind, mime):
    """Each type we take is recognised from its bytes."""
    found = sniff(make())
    assert (found.kind, found.mime) == (kind, mime)


@pytest.mark.parametrize("data", [
    files_kit.SVG_WITH_SCRIPT,
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,  # a program
    b"PK\x03\x04" + b"\x00" * 100,  # a broken zip
    b"\x00\x01\x02\x03" * 100,
    b"   \n\n",
])
def test_unsupported_or_hostile_refused(data):
    """SVG (it can carry script), programs, broken zips, binary junk and empty text are refused."""
    with pytest.raises(FileRejected) as caught:
        sniff(data)
    assert caught.value.code == "file_unsupported"
    assert caught.value.message.endswith(".")


def test_lying_name_does_not_matter():
    """A PNG called report.pdf is a picture and HTML called photo.png is HTML: sniff never sees a name."""
    assert sniff(files_kit.make_png()).mime == "image/png"
    assert sniff(b"<html><body><script>x()</script></body></html>").mime == "text/html"


@pytest.mark.parametrize(("raw", "clean"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ("evil\x00name\r\n.pdf", "evilname.pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("...hidden", "hidden"),
    ("", "file"),
    (None, "file"),
    ('say "hi".txt', "say 'hi'.txt"),
    ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
])
def test_sanitize_filename(raw, clean):
    """No path parts, controls, bidi overrides or leading dots; long names keep their extension."""
    assert sanitize_filename(raw) == clean


def test_ascii_filename():
    """The ASCII fallback keeps letters and replaces the rest."""
    assert ascii_filename("Über résumé;.pdf") == "Uber resume_.pdf"
