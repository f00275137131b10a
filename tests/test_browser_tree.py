"""The page's versions and search in real headless Chromium: edit a message, flip ‹ 1/2 › ‹ 2/2 ›, reload; search
with Ctrl+K and open a result on a branch that is not shown (fixtures from test_browser)."""

from __future__ import annotations

import pytest

from tests import test_browser
from tests.test_browser import assert_clean, expect, send, wait_final

# The module's Chromium, the page factory and its SQLite database, shared with test_browser.
browser, open_chat, database_url = test_browser.browser, test_browser.open_chat, test_browser.database_url

pytestmark = [pytest.mark.browser, pytest.mark.server]


def user_message(page):
    """The (only) user message of the path shown."""
    return page.locator(".msg--user").last


def test_page_edit_flip_versions_and_reload(live_server, fake_groq, open_chat):
    server = live_server()
    page = open_chat(server)
    fake_groq.script(text="Kumquats are small citrus fruits.")
    send(page, "What is a kumquat?")
    wait_final(page, "Kumquats are small citrus fruits.")
    expect(user_message(page).locator(".msg-versions")).to_have_count(0)

    # Esc cancels an edit and leaves the message as it was.
    user_message(page).locator(".msg-edit").click()
    editor = user_message(page).locator(".msg-editor-input")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("What is a kumquat?")
    editor.press("Escape")
    expect(user_message(page).locator(".msg-editor")).to_have_count(0)
    expect(user_message(page).locator(".msg-body")).to_have_text("What is a kumquat?")

    fake_groq.script(text="Loquats are yellow fruits.")
    user_message(page).locator(".msg-edit").click()
    user_message(page).locator(".msg-editor-input").fill("What is a loquat?")
    user_message(page).locator(".msg-editor-input").press("Enter")
    wait_final(page, "Loquats are yellow fruits.")
    expect(page.locator(".msg--user")).to_have_count(1)
    expect(user_message(page).locator(".msg-body")).to_have_text("What is a loquat?")
    expect(user_message(page).locator(".version-count")).to_have_text("2/2")
    # Upstream saw the edited path only.
    assert [m["content"] for m in fake_groq.requests[-1]["messages"][1:]] == ["What is a loquat?"]

    def shows(question: str, answer: str, count: str) -> None:
        """The path shown is `question` → `answer`, at version `count`."""
        expect(user_message(page).locator(".msg-body")).to_have_text(question)
        expect(user_message(page).locator(".version-count")).to_have_text(count)
        expect(page.locator(".msg--bot:not(.msg--welcome) .msg-body")).to_have_text([answer])

    user_message(page).get_by_role("button", name="Previous version").click()
    shows("What is a kumquat?", "Kumquats are small citrus fruits.", "1/2")
    expect(user_message(page).get_by_role("button", name="Previous version")).to_be_disabled()
    user_message(page).get_by_role("button", name="Next version").click()
    shows("What is a loquat?", "Loquats are yellow fruits.", "2/2")
    user_message(page).get_by_role("button", name="Previous version").click()
    shows("What is a kumquat?", "Kumquats are small citrus fruits.", "1/2")

    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    shows("What is a kumquat?", "Kumquats are small citrus fruits.", "1/2")
    # A new message continues the path shown.
    fake_groq.script(text="Yes, you can.")
    send(page, "Can I eat the peel?")
    wait_final(page, "Yes, you can.")
    assert [m["content"] for m in fake_groq.requests[-1]["messages"][1:]] == [
        "What is a kumquat?", "Kumquats are small citrus fruits.", "Can I eat the peel?"]
    assert_clean(page, server)


def test_page_search_and_open_a_result_on_another_branch(live_server, fake_groq, open_chat):
    server = live_server()
    page = open_chat(server)
    fake_groq.script(text="Axolotls <b>regrow</b> their limbs.")
    send(page, "Tell me about axolotls")
    wait_final(page, "Axolotls <b>regrow</b> their limbs.")
    fake_groq.script(text="Frogs jump far.")
    user_message(page).locator(".msg-edit").click()
    user_message(page).locator(".msg-editor-input").fill("Tell me about frogs")
    user_message(page).locator(".msg-editor-input").press("Enter")
    wait_final(page, "Frogs jump far.")
    page.locator("#new-conversation").click()
    expect(page.locator(".msg")).to_have_count(1)  # the new, empty conversation shows (its welcome)
    expect(page.locator(".msg--welcome")).to_be_visible()
    send(page, "something else entirely")
    wait_final(page)
    expect(page.locator("#conversation-list .conversation")).to_have_count(2)

    page.keyboard.press("Control+KeyK")
    search = page.locator("#search-input")
    expect(search).to_be_focused()
    search.press_sequentially("axolotl")
    results = page.locator("#search-results .search-result")
    expect(results).to_have_count(3)  # the title, the question, the reply
    expect(page.locator("#conversation-nav")).to_be_hidden()
    reply = results.filter(has_text="assistant said")
    # Snippets are text with <mark>s made by the page: the model's <b> is shown, not parsed.
    expect(reply.locator(".search-snippet")).to_have_text("Axolotls <b>regrow</b> their limbs.")
    expect(reply.locator(".search-snippet mark")).to_have_text(["Axolotls"])
    expect(page.locator("#search-results b")).to_have_count(0)

    reply.locator(".search-open").click()
    found = page.locator(".msg--bot.msg--found")
    expect(found.locator(".msg-body")).to_have_text("Axolotls <b>regrow</b> their limbs.")
    expect(found).to_be_in_viewport()
    expect(page.locator("#conversation-title")).to_have_text("Tell me about axolotls")
    expect(user_message(page).locator(".version-count")).to_have_text("1/2")

    search.fill("")
    expect(page.locator("#conversation-nav")).to_be_visible()
    search.press_sequentially("nothing like this")
    expect(page.locator("#search-empty")).to_be_visible()
    search.press("Escape")
    expect(search).to_have_value("")
    expect(page.locator("#conversation-nav")).to_be_visible()
    assert_clean(page, server)
