"""The team layer's pages in real headless Chromium against the real server: the shared page (hostile model output
inert, nothing fetched off the origin, noindex) and the settings panel (its values in the upstream request, a refusal
shown in the panel)."""
# ruff: noqa: F811  (the browser fixtures come from test_browser, and tests take them as arguments)

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_browser import (  # noqa: F401  (fixtures and helpers of the chat page's browser tests)
    HOSTILE_REPLY,
    assert_clean,
    browser,
    database_url,
    expect,
    open_chat,
    send,
    wait_final,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]


def recorded(page):
    """A page that records every request and script error (CSP violations included), for assert_clean."""
    page.requested, page.errors = [], []
    page.on("request", lambda request: page.requested.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    return page


def share_link(page) -> str:
    """Make the shown chat's link through the share dialog and return it."""
    page.locator("#share-open").click()
    page.locator("#share-create").click()
    url = page.locator("#share-url")
    expect(url).to_have_value(re.compile(r"/share/[A-Za-z0-9_-]{32}$"))
    return url.input_value()


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_shared_page_renders_hostile_output_inert_and_noindex(live_server, fake_groq, open_chat, browser, async_mode):
    server = live_server(async_mode)
    page = open_chat(server)
    fake_groq.script(text=HOSTILE_REPLY + "\n\n**strong words**")
    send(page, "be hostile <img src=x onerror=\"window.__pwned=1\">")
    wait_final(page)
    url = share_link(page)
    expect(page.locator("#share-list .share-item")).to_have_count(1)
    # A stranger: a fresh context, no cookies.
    context = browser.new_context(color_scheme="dark", viewport={"width": 390, "height": 800})
    try:
        reader = recorded(context.new_page())
        response = reader.goto(url)
        assert response.status == 200 and response.headers["x-robots-tag"].startswith("noindex")
        expect(reader.locator('meta[name="robots"]')).to_have_attribute("content", re.compile("noindex"))
        bot = reader.locator(".msg--bot .msg-body")
        expect(bot.locator("strong")).to_have_text("strong words")  # the Markdown is rendered
        expect(bot).to_contain_text("<script>window.__pwned=1</script>")  # raw HTML shown as text
        expect(reader.locator(".msg--user .msg-body")).to_have_text('be hostile <img src=x onerror="window.__pwned=1">')
        assert reader.evaluate("window.__pwned") is None
        assert reader.locator(".msg-body img, .msg-body iframe, .msg-body script").count() == 0
        assert reader.locator('a[href^="javascript:"]').count() == 0
        expect(reader.locator("#continue-share")).to_have_count(0)
        assert context.cookies() == []
        assert_clean(reader, server)
    finally:
        context.close()
    assert_clean(page, server)


def test_settings_panel_sets_the_request_and_shows_a_refusal(live_server, fake_groq, open_chat):
    server = live_server(SYSTEM_PROMPT="Operator says hi.")
    page = open_chat(server)
    page.locator("#settings-open").click()
    page.locator("#settings-instructions").fill("Answer like a pirate.")
    page.locator("#settings-temperature").fill("7")
    page.locator("#settings-save").click()
    expect(page.locator("#settings-error")).to_have_text("Temperature must be a number from 0 to 2.")
    expect(page.locator("#settings-dialog")).to_be_visible()
    page.locator("#settings-temperature").fill("0.3")
    page.locator("#settings-max-tokens").fill("99")
    page.locator("#settings-save").click()
    expect(page.locator("#settings-dialog")).to_be_hidden()
    send(page, "Ahoy?")
    wait_final(page)
    sent = fake_groq.requests[-1]
    assert sent["messages"][0]["content"] == "Operator says hi.\n\nAnswer like a pirate."
    assert (sent["temperature"], sent["max_completion_tokens"]) == (0.3, 99)
    # The panel shows what is stored when opened again.
    page.locator("#settings-open").click()
    expect(page.locator("#settings-instructions")).to_have_value("Answer like a pirate.")
    expect(page.locator("#settings-temperature")).to_have_value("0.3")
    assert_clean(page, server)


def new_project(page, name: str, instructions: str = ""):
    """Make a project with the sidebar's New project dialog; its sidebar item."""
    page.locator("#new-project").click()
    page.locator("#project-name").fill(name)
    page.locator("#project-instructions").fill(instructions)
    page.locator("#project-form button[type=submit]").click()
    project = page.locator(".project", has_text=name)
    expect(project).to_be_visible()
    return project


def test_a_chat_dragged_into_a_project_uses_its_instructions(live_server, fake_groq, open_chat):
    server = live_server(SYSTEM_PROMPT="Operator.")
    page = open_chat(server)
    project = new_project(page, "Handbook", "Cite the handbook.")
    send(page, "first question")
    wait_final(page)
    page.locator("#conversation-list .conversation").first.drag_to(project)
    expect(project.locator(".project-chat")).to_have_count(1)
    send(page, "second question")
    fake_groq.wait_for_requests(2)
    expect(page.locator(".msg--user")).to_have_count(2)
    wait_final(page)
    assert fake_groq.requests[1]["messages"][0]["content"] == "Operator.\n\nCite the handbook."
    assert fake_groq.requests[0]["messages"][0]["content"] == "Operator."
    assert_clean(page, server)


def test_text_sent_while_a_new_chat_opens_goes_to_the_new_chat(live_server, fake_groq, browser):
    """Issue 8's race: the new conversation's `history` is held back on the wire while the person types and sends;
    the message must go to the new conversation, not to the one still on screen."""
    server = live_server()
    context = browser.new_context()
    page = recorded(context.new_page())
    wire = {"client": None, "holding": False, "held": []}

    def route(ws):
        """Pass the socket through, holding server frames from the next `history` on while asked to."""
        wire["client"] = ws
        upstream = ws.connect_to_server()

        def from_server(message):
            if wire["holding"] and (wire["held"] or str(message).startswith('42["history"')):
                wire["held"].append(message)
                return
            ws.send(message)

        upstream.on_message(from_server)

    page.route_web_socket(re.compile(r".*/socket\.io/.*"), route)
    page.goto(server.url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    send(page, "in the old chat")
    wait_final(page)
    wire["holding"] = True
    page.locator("#new-conversation").click()
    for _ in range(500):  # each evaluate lets Playwright deliver the socket's frames to `route`
        if wire["held"]:
            break
        page.evaluate("0")
    assert wire["held"], "the new chat's history never came"
    expect(page.locator(".msg--user")).to_have_count(1)  # still the old chat on screen
    page.locator("#composer-input").fill("typed before the history came")
    page.locator("#composer-input").press("Enter")
    expect(page.locator("#composer-input")).to_have_value("")
    wire["holding"] = False
    for message in wire["held"]:
        wire["client"].send(message)
    wait_final(page)
    expect(page.locator(".msg--user .msg-body")).to_have_text(["typed before the history came"])
    assert fake_groq.requests[-1]["messages"][1:] == [{"role": "user", "content": "typed before the history came"}]
    assert page.errors == []
    context.close()


def test_admin_page_draws_the_usage_charts_from_its_own_origin(live_server, fake_groq, browser):
    from tests.test_browser_accounts import ACCOUNTS, connected, fill_signup
    from tests.test_browser_tools import choose_tool
    from tests.test_team import SEARCH

    server = live_server(**ACCOUNTS, SIGNUP="open")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = recorded(context.new_page())
    fill_signup(page, server, "root")  # the first account: the admin
    connected(page)
    choose_tool(page, "Web search")
    fake_groq.script(executed_tools=[SEARCH], text="Counted.",
                     usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12})
    send(page, "count me")
    wait_final(page)
    page.goto(server.url + "/admin")
    section = page.locator("#usage-charts")
    expect(section).to_have_attribute("data-ready", "true")
    # tokens, replies and tool calls by model; tokens and tool calls by account
    assert section.locator("canvas").count() >= 5
    expect(section.locator(".chart-table thead th")).to_have_text(
        ["", "Replies (30 days)", "Tokens (30 days)", "Tool calls (30 days)"])
    # replies, tokens, tool calls
    expect(section.locator(".chart-table tr", has_text="Account: root").locator("td")).to_have_text(["1", "12", "1"])
    page.goto(server.url + "/account")
    own = page.locator("#usage-charts")
    expect(own).to_have_attribute("data-ready", "true")
    expect(own.locator(".chart-title")).to_contain_text(["Your tokens per day", "Your tool calls per day"])
    expect(own.locator(".chart-table tr", has_text="Account: root").locator("td")).to_have_text(["1", "12", "1"])
    expect(own.locator(".charts-status")).to_have_text("Today: 12 tokens (no daily limit). 1 tool call today.")
    assert_clean(page, server)
    context.close()


def test_import_of_a_chatgpt_export_from_the_sidebar(live_server, fake_groq, open_chat, tmp_path):
    server = live_server()
    page = open_chat(server)
    export = Path(__file__).parent / "data" / "chatgpt_conversations.json"
    with page.expect_file_chooser() as chooser:
        page.locator("#import-open").click()
    chooser.value.set_files(str(export))
    titles = page.locator("#conversation-list .conversation-title")
    # Imported now, newest first by when each was started: the export's second chat, its first, then ours.
    expect(titles).to_have_text(["Second", "Loquats and <b>tags</b>", "New chat"])
    assert page.locator("#conversation-list b").count() == 0  # a title is text
    expect(page.locator("#announcer")).to_contain_text("Imported 2 chats.")
    bad = tmp_path / "bad.json"
    bad.write_text('{"nope": 1}')
    with page.expect_file_chooser() as chooser:
        page.locator("#import-open").click()
    chooser.value.set_files(str(bad))
    expect(page.locator(".toast").last).to_contain_text("Nothing was imported")
    expect(titles).to_have_count(3)
    # Chromium logs the refused upload's 400 itself; nothing else may be there.
    page.errors = [error for error in page.errors if "status of 400" not in error]
    assert_clean(page, server)


def test_an_uploaded_document_is_ticked_into_a_project_and_searched_in_its_chats(live_server, fake_groq, open_chat,
                                                                                  tmp_path):
    server = live_server()
    page = open_chat(server)
    project = new_project(page, "Handbook")
    notes = tmp_path / "leave.txt"
    notes.write_text("Every employee gets 31 days of leave, booked through Marigold.")
    page.locator("#file-input").set_input_files(str(notes))
    expect(page.locator(".file-chip")).to_have_attribute("data-status", "ready")
    project.locator('[data-action="edit"]').click()
    box = page.locator("#project-file-list label", has_text="leave.txt").locator("input")
    expect(box).not_to_be_checked()
    box.check()
    page.locator("#project-form button[type=submit]").click()
    page.locator(".file-chip-remove").click()  # the next message carries nothing itself
    project.locator('[data-action="edit"]').click()
    expect(page.locator("#project-file-list label", has_text="leave.txt").locator("input")).to_be_checked()
    page.locator("#project-dialog [data-dialog-cancel]").click()
    send(page, "first question")
    wait_final(page)
    page.locator("#conversation-list .conversation").first.drag_to(project)
    expect(project.locator(".project-chat")).to_have_count(1)
    send(page, "How many days of leave?")
    fake_groq.wait_for_requests(2)
    wait_final(page)
    assert "Marigold" in str(fake_groq.requests[1]["messages"]) and "Marigold" not in str(fake_groq.requests[0])
    assert_clean(page, server)
