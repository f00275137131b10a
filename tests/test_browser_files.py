"""Files on the page in real headless Chromium: attach by the button and by drag-and-drop, see the chip's progress
and status, send, see the card or thumbnail, follow a citation to its excerpt, reload (fixtures from
test_browser)."""

from __future__ import annotations

import base64

import pytest

from chatbot.providers.groq import DEFAULT_MODEL
from tests import files_kit, test_browser
from tests.test_browser import assert_clean, expect, send, wait_final

browser, open_chat, database_url = test_browser.browser, test_browser.open_chat, test_browser.database_url

pytestmark = [pytest.mark.browser, pytest.mark.server]

DROP = """([name, type, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  for (const kind of ["dragover", "drop"]) {
    document.body.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}"""


def long_page(number: int) -> str:
    """A page of prose with one word only it has."""
    return files_kit.page_text(number) + " The committee met and agreed on the budget for the year. " * 8


def test_page_attach_pdf_send_and_follow_citation(live_server, fake_groq, open_chat, tmp_path):
    server = live_server()
    page = open_chat(server)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(files_kit.make_pdf(12, text=long_page))
    page.locator("#file-input").set_input_files(str(pdf))
    chip = page.locator(".file-chip")
    expect(chip.locator(".file-chip-name")).to_have_text("report.pdf")
    expect(chip).to_have_attribute("data-status", "ready")
    expect(chip.locator(".file-chip-status")).to_have_text("Ready")

    fake_groq.script(text="It is about zebras [1].")
    send(page, "What is zebra007word about?")
    reply = wait_final(page)
    expect(page.locator(".file-chip")).to_have_count(0)  # the tray empties once the message carried its files
    card = page.locator(".msg--user .file-card").last
    expect(card).to_contain_text("report.pdf")
    expect(card).to_contain_text("12 pages")
    assert "zebra007word" in fake_groq.requests[-1]["messages"][-2]["content"]

    citation = reply.locator("a.cite")
    expect(citation).to_have_text("[1]")
    citation.click()
    sources = reply.locator(".msg-sources")
    expect(sources).to_have_attribute("open", "")
    expect(sources.locator("li.is-cited strong")).to_have_text("report.pdf, page 7")
    expect(sources.locator("li.is-cited blockquote")).to_contain_text("zebra007word")

    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator(".msg--user .file-card").last).to_contain_text("report.pdf")
    expect(wait_final(page).locator("a.cite")).to_have_text("[1]")
    assert_clean(page, server)


def test_page_drop_picture_thumbnail_and_cannot_see(live_server, fake_groq, open_chat):
    picture = base64.b64encode(files_kit.make_jpeg_with_gps((120, 80))).decode()
    # A model that cannot see: refused, and the draft and its file stay in the composer.
    server = live_server()
    page = open_chat(server)
    page.evaluate(DROP, ["photo.jpg", "image/jpeg", picture])
    expect(page.locator(".file-chip")).to_have_attribute("data-status", "ready")
    send(page, "What is in this photo?")
    expect(page.locator(".toast")).to_contain_text("cannot see pictures")
    expect(page.locator("#composer-input")).to_have_value("What is in this photo?")
    expect(page.locator(".file-chip")).to_have_count(1)
    server.stop()

    # A vision model: the picture goes, and the message shows its thumbnail (the re-encoded copy).
    server = live_server(VISION_MODELS=DEFAULT_MODEL)
    page = open_chat(server)
    page.evaluate(DROP, ["photo.jpg", "image/jpeg", picture])
    expect(page.locator(".file-chip")).to_have_attribute("data-status", "ready")
    fake_groq.script(text="A red rectangle.")
    send(page, "What is in this photo?")
    wait_final(page, "A red rectangle.")
    thumb = page.locator(".msg--user .file-thumb img").last
    expect(thumb).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", thumb.element_handle()) == 120
    assert fake_groq.requests[-1]["messages"][-1]["content"][1]["type"] == "image_url"
    assert_clean(page, server)
