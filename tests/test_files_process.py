"""The bounded worker process: the same analysis as in-process, and hard limits that end as clear failures."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from chatbot.files.analyze import analyze
from chatbot.files.errors import FileRejected
from chatbot.files.process import TOO_BIG, TOO_SLOW, analyze_bounded
from tests import files_kit


def test_worker_reads_a_pdf_like_in_process():
    """Pages, chunks and their page numbers come back from the child process intact."""
    data = files_kit.make_pdf(4)
    bounded, direct = analyze_bounded(data), analyze(data)
    assert bounded == direct
    assert bounded.kind == "document" and bounded.pages == 4
    assert [c.page for c in bounded.chunks] == [1, 2, 3, 4]


def test_worker_reencodes_a_picture():
    """The picture's re-encoded bytes come back whole, without GPS."""
    result = analyze_bounded(files_kit.make_jpeg_with_gps())
    assert result.kind == "image" and result.mime == "image/jpeg"
    assert not Image.open(io.BytesIO(result.picture.data)).getexif()


@pytest.mark.parametrize(("data", "needle"), [
    (files_kit.make_encrypted_pdf(), "password-protected"),
    (files_kit.SVG_WITH_SCRIPT, "SVG"),
    (files_kit.make_docx_bomb(200), "expands"),
    (b"", "empty"),
])
def test_worker_reports_rejections(data, needle):
    """A refusal inside the worker arrives as the same sentence."""
    with pytest.raises(FileRejected) as caught:
        analyze_bounded(data)
    assert needle in caught.value.message


def test_wall_clock_limit():
    """A worker that does not finish in time is killed and the file fails with a clear sentence."""
    with pytest.raises(FileRejected) as caught:
        analyze_bounded(files_kit.make_pdf(2), timeout=0.001)
    assert caught.value.message == TOO_SLOW


def test_memory_limit():
    """A worker that runs out of its address space fails the file instead of growing the server."""
    with pytest.raises(FileRejected) as caught:
        analyze_bounded(files_kit.make_pdf(2), memory_mb=40)
    assert caught.value.message in (TOO_BIG, "This file needs too much memory to read.")
