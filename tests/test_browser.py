"""The chat page in real headless Chromium (Playwright, sync API) against the real server process and fake Groq."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import storekit
from tests.conftest import ROOT, SECRET

pytestmark = [pytest.mark.browser, pytest.mark.server]


def _find_chromium() -> str | None:
    """The Chromium binary to drive: $CHROMIUM_PATH, else the Debian package's, else one on PATH."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _find_chromium()
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

if CHROMIUM is None or sync_playwright is None:
    _reason = ("no Chromium found (set CHROMIUM_PATH or install /usr/bin/chromium)" if CHROMIUM is None
               else "the playwright package is not installed")
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {_reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {_reason}", allow_module_level=True)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
expect.set_options(timeout=15_000)

FINAL_REPLY = ".msg--bot:not(.msg--welcome):not(.msg--streaming)"
MARKDOWN_REPLY = (
    "## Plan\n\nHere is **bold** advice:\n\n- one\n- two\n\n"
    "```python\ndef greet(name):\n    return f\"hi {name}\"\n```\n\nDone."
)
PLAIN_REPLY = " ".join(f"word{i:02d}" for i in range(60))
HOSTILE_REPLY = (
    "Hi <script>window.__pwned=1</script> there\n\n"
    "<img src=x onerror=\"window.__pwned=1\">\n\n"
    "[x](javascript:window.__pwned=1)\n\n"
    "![tracker](http://127.0.0.9/track.png)\n\n"
    "<iframe src=\"http://127.0.0.9/\"></iframe>\n\n"
    "[elsewhere](http://127.0.0.9/page)\n"
)
HOSTILE_USER = "<img src=x onerror=\"window.__pwned=1\"> ![t](http://127.0.0.9/user.png) <b>bold?</b>"

# Records the text of the streaming bubble each time it changes (intermediate states only: the final text is
# applied together with the end of streaming, in the same task).
RECORD_STREAM = """() => {
  window.__states = [];
  const list = document.getElementById("message-list");
  new MutationObserver(() => {
    const body = [...list.querySelectorAll(".msg--bot.msg--streaming .msg-body")].pop();
    if (body && window.__states[window.__states.length - 1] !== body.textContent) {
      window.__states.push(body.textContent);
    }
  }).observe(list, {subtree: true, childList: true, characterData: true});
}"""
COUNT_BATCHES = """document.addEventListener("DOMContentLoaded", () => {
  window.__batches = [];
  new MutationObserver((records) => {
    for (const record of records) {
      const added = [...record.addedNodes].filter((node) => node.classList && node.classList.contains("msg"));
      if (added.length) window.__batches.push(added.length);
    }
  }).observe(document.getElementById("message-list"), {childList: true});
});"""
RECORD_STATUS = """() => {
  window.__statuses = [];
  const status = document.getElementById("status");
  new MutationObserver(() => window.__statuses.push(status.dataset.state))
    .observe(status, {attributes: true, attributeFilter: ["data-state"]});
}"""


@pytest.fixture
def database_url(tmp_path):
    """SQLite only: the page does not care which database the server uses (the server suites cover both)."""
    return f"sqlite:///{tmp_path / 'chatbot.db'}"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def open_chat(browser):
    """Factory: a new browser context + page on the chat, connected; records requests and script errors."""
    contexts = []

    def open_(server, *, scheme="light", width=1280, height=800, cookies=(), permissions=(), init_script=None,
              path="/"):
        """Open the chat in a fresh context (its own cookies, theme and viewport) and wait until connected;
        `path="/?test-hook"` installs the page's `window.chatbotws` test hook."""
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                      permissions=list(permissions))
        if cookies:
            context.add_cookies(list(cookies))
        contexts.append(context)
        page = context.new_page()
        if init_script:
            page.add_init_script(init_script)
        page.requested, page.errors = [], []
        page.on("request", lambda request: page.requested.append(request.url))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        page.goto(server.url + path)
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        expect(page.locator(".msg").first).to_be_visible()
        return page

    yield open_
    for context in contexts:
        context.close()


def send(page: Page, text: str) -> None:
    """Type a message in the composer and press Enter."""
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").press("Enter")


def last_reply(page: Page):
    """The newest assistant bubble that is not the welcome text."""
    return page.locator(".msg--bot:not(.msg--welcome)").last


def wait_final(page: Page, text: str | None = None):
    """Wait until the newest reply has finished streaming (optionally with exactly `text`); return it."""
    reply = last_reply(page)
    expect(reply).not_to_have_class(re.compile(r"msg--streaming"))
    expect(page.locator(FINAL_REPLY).last).to_be_visible()
    if text is not None:
        expect(reply.locator(".msg-body")).to_have_text(text)
    return reply


def assert_clean(page: Page, server) -> None:
    """No script errors (CSP violations included) and not a single request off the server's origin."""
    assert page.errors == []
    origin = urlsplit(server.url)
    foreign = [url for url in page.requested if urlsplit(url)[:2] != origin[:2]]
    assert foreign == []


def test_page_streams_reply_as_highlighted_markdown(live_server, fake_groq, open_chat):
    server = live_server(STREAM_WINDOW_MS=0)
    page = open_chat(server, permissions=["clipboard-read", "clipboard-write"])
    expect(page.locator("#provider-banner")).to_be_hidden()
    assert page.evaluate("typeof window.chatbotws") == "undefined"  # the test hook only when a test asks for it
    page.evaluate(RECORD_STREAM)
    fake_groq.script(text=MARKDOWN_REPLY, delay=0.01, hold_after=6)
    send(page, "show me code")

    expect(page.locator(".msg--user .msg-body").last).to_have_text("show me code")
    expect(page.locator(".msg--streaming .msg-body h2")).to_have_text("Plan")  # held mid-reply: streaming
    expect(page.locator("#stop-button")).to_be_visible()
    expect(page.locator("#send-button")).to_be_disabled()
    fake_groq.release()
    reply = wait_final(page)

    intermediate = [state for state in page.evaluate("window.__states") if state.strip()]
    assert len(intermediate) >= 2
    expect(reply.locator("h2")).to_have_text("Plan")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("li")).to_have_count(2)
    code = reply.locator(".code-block pre code.hljs")
    expect(code).to_contain_text('def greet(name):')
    assert code.locator("span[class^='hljs-']").count() > 0
    expect(reply.locator(".code-lang")).to_have_text("python")
    copy = reply.locator(".code-copy")
    copy.click()
    expect(copy).to_contain_text("Copied!")
    assert page.evaluate("navigator.clipboard.readText()") == 'def greet(name):\n    return f"hi {name}"\n'
    expect(page.locator("#announcer")).to_contain_text("Assistant replied")
    expect(page.locator("#stop-button")).to_be_hidden()
    expect(reply.locator(".msg-regenerate")).to_be_visible()
    assert_clean(page, server)


def test_page_hostile_model_output_runs_and_fetches_nothing(live_server, fake_groq, open_chat):
    server = live_server()
    page = open_chat(server)
    fake_groq.script(text=HOSTILE_REPLY)
    send(page, HOSTILE_USER)
    reply = wait_final(page)

    expect(page.locator(".msg--user .msg-body").last).to_have_text(HOSTILE_USER)
    expect(reply.locator(".msg-body")).to_contain_text("<script>window.__pwned=1</script>")
    remote = reply.locator("a.remote-image")
    expect(remote).to_have_attribute("href", "http://127.0.0.9/track.png")
    expect(remote).to_contain_text("tracker")
    reply.get_by_text("x", exact=True).click()  # the javascript: link, its href removed

    def check_harmless():
        """Nothing ran, nothing active is in the page, every link is inert to the opener, nothing fetched."""
        for selector in ("img", "iframe", "script", "[onerror]", "[style]", "a[href^='javascript']"):
            expect(page.locator(f"#message-list {selector}")).to_have_count(0)
        for link in page.locator("#message-list a[href]").all():
            expect(link).to_have_attribute("rel", "noopener noreferrer")
            expect(link).to_have_attribute("target", "_blank")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert_clean(page, server)

    check_harmless()
    page.reload()  # the history path renders the same text again
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator(FINAL_REPLY).last.locator("a.remote-image")).to_have_count(1)
    expect(page.locator(".msg--user .msg-body").last).to_have_text(HOSTILE_USER)
    check_harmless()


def test_page_stop_then_regenerate(live_server, fake_groq, open_chat):
    server = live_server(STREAM_WINDOW_MS=0)
    page = open_chat(server)
    composer = page.locator("#composer-input")
    composer.fill("tell me")
    composer.press("Shift+Enter")
    composer.press_sequentially("a long story")
    expect(composer).to_have_value("tell me\na long story")
    expect(page.locator(".msg--user")).to_have_count(0)

    fake_groq.script(text=PLAIN_REPLY, delay=0.01, hold_after=4)
    composer.press("Enter")
    expect(page.locator(".msg--user .msg-body")).to_have_text("tell me\na long story")
    expect(page.locator(".msg--streaming .msg-body")).to_contain_text("word00")
    page.locator("#stop-button").click()
    reply = wait_final(page)
    expect(reply.locator(".msg-label")).to_have_text("stopped")
    fake_groq.release()
    assert PLAIN_REPLY.startswith(reply.locator(".msg-body").inner_text())

    fake_groq.script(text="A brand new answer.")
    reply.locator(".msg-regenerate").click()
    expect(last_reply(page).locator(".msg-body")).to_have_text("A brand new answer.")
    wait_final(page, "A brand new answer.")
    expect(page.locator(".msg--bot:not(.msg--welcome)")).to_have_count(1)
    expect(last_reply(page).locator(".msg-label")).to_be_hidden()
    assert_clean(page, server)


def test_page_conversations_new_switch_rename_delete_reload(live_server, fake_groq, open_chat):
    server = live_server()
    page = open_chat(server)
    items = page.locator("#conversation-list .conversation")
    send(page, "first chat message")
    wait_final(page, "Hello from the fake Groq.")
    expect(items).to_have_count(1)
    expect(items.first.locator(".conversation-title")).to_have_text("first chat message")

    page.locator("#new-conversation").click()
    expect(page.locator(".msg")).to_have_count(1)
    expect(page.locator(".msg--welcome")).to_be_visible()
    expect(items).to_have_count(2)
    send(page, "second chat message")
    wait_final(page)

    page.locator(".conversation-open", has_text="first chat message").click()
    expect(page.locator(".msg--user .msg-body")).to_have_text(["first chat message"])
    active = page.locator(".conversation.is-active")
    active.locator("[data-action=rename]").click()
    expect(page.locator("#rename-dialog")).to_be_visible()
    page.locator("#rename-input").fill("Renamed chat")
    page.locator("#rename-input").press("Enter")
    expect(active.locator(".conversation-title")).to_have_text("Renamed chat")
    expect(page.locator("#conversation-title")).to_have_text("Renamed chat")

    export = page.request.get(server.url + active.locator("[data-action=export-md]").get_attribute("href"))
    assert export.ok and "# Renamed chat" in export.text() and "first chat message" in export.text()
    export = page.request.get(server.url + active.locator("[data-action=export-json]").get_attribute("href"))
    assert export.json()["messages"][0]["content"] == "first chat message"

    page.reload()
    expect(page.locator("#conversation-title")).to_have_text("Renamed chat")
    expect(page.locator(".msg--user .msg-body")).to_have_text(["first chat message"])
    expect(items).to_have_count(2)

    other = items.filter(has_text="second chat message")
    other.hover()
    other.locator("[data-action=delete]").click()
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.keyboard.press("Escape")  # Escape keeps it
    expect(page.locator("#delete-dialog")).to_be_hidden()
    expect(items).to_have_count(2)
    other.hover()
    other.locator("[data-action=delete]").click()
    page.locator("#delete-dialog .btn-danger").click()
    expect(items).to_have_count(1)
    expect(page.locator(".msg--user .msg-body")).to_have_text(["first chat message"])

    page.locator(".conversation.is-active [data-action=delete]").click()
    page.locator("#delete-dialog .btn-danger").click()
    expect(page.locator(".msg--welcome")).to_be_visible()
    expect(items).to_have_count(1)
    expect(items.first.locator(".conversation-title")).to_have_text("New chat")
    assert_clean(page, server)


def test_page_resumes_stream_after_dropped_connection(live_server, fake_groq, open_chat):
    server = live_server(STREAM_WINDOW_MS=0)
    page = open_chat(server, path="/?test-hook")
    page.evaluate(RECORD_STREAM)
    page.evaluate(RECORD_STATUS)
    fake_groq.script(text=PLAIN_REPLY, delay=0.02, hold_after=5)
    send(page, "count for me")
    expect(page.locator(".msg--streaming .msg-body")).to_contain_text("word00")

    # Drop the connection and keep it down (no automatic reconnect) while the server streams on without us.
    page.evaluate("() => { const s = window.chatbotws.state.socket; s.io.reconnection(false); s.io.engine.close(); }")
    expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#send-button")).to_be_disabled()
    fake_groq.release()
    fake_groq.wait_streamed(20)
    page.evaluate("() => { const s = window.chatbotws.state.socket; s.io.reconnection(true); s.connect(); }")

    wait_final(page, PLAIN_REPLY)
    assert "reconnecting" in page.evaluate("window.__statuses")
    states = [state.strip() for state in page.evaluate("window.__states") if state.strip()]
    assert states and all(PLAIN_REPLY.startswith(state) for state in states)  # nothing doubled, nothing skipped
    assert fake_groq.last_text == PLAIN_REPLY
    assert_clean(page, server)


def test_page_recovers_history_after_server_restart_mid_reply(live_server, fake_groq, open_chat):
    server = live_server(STREAM_WINDOW_MS=0, CHECKPOINT_SECONDS=0.05)
    page = open_chat(server)
    page.evaluate(RECORD_STATUS)
    fake_groq.script(text=PLAIN_REPLY, delay=0.02, hold_after=8)
    send(page, "do not go away")
    expect(page.locator(".msg--streaming .msg-body")).to_contain_text("word00")

    server.kill()
    expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    fake_groq.release()
    server.start()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    reply = last_reply(page)
    expect(reply.locator(".msg-label")).to_have_text("interrupted — the server restarted")
    expect(reply).not_to_have_class(re.compile(r"msg--streaming"))
    assert PLAIN_REPLY.startswith(reply.locator(".msg-body").inner_text())
    expect(page.locator(".msg--user .msg-body")).to_have_text(["do not go away"])

    fake_groq.script(text="Back online.")
    send(page, "are you back?")
    wait_final(page, "Back online.")
    # Chromium logs each refused reconnect attempt while the server is down; that is expected here.
    page.errors = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e and "WebSocket connection" not in e]
    assert_clean(page, server)


def test_page_errors_are_shown_kindly(live_server, fake_groq, open_chat):
    server = live_server(MAX_MESSAGE_CHARS=40, RATE_LIMIT_MESSAGES="2/minute")
    page = open_chat(server)
    composer, counter = page.locator("#composer-input"), page.locator("#char-counter")
    composer.fill("x" * 20)
    expect(counter).to_be_hidden()
    composer.fill("x" * 33)
    expect(counter).to_have_text("33 / 40")
    composer.fill("x" * 45)
    expect(counter).to_have_class(re.compile(r"is-over"))
    expect(page.locator("#send-button")).to_be_disabled()
    composer.press("Enter")
    expect(page.locator(".msg--user")).to_have_count(0)

    fake_groq.script(status=401)
    send(page, "this will fail upstream")
    reply = wait_final(page)
    expect(reply.locator(".msg-label")).to_have_text("failed")
    expect(reply.locator(".msg-note")).to_contain_text("rejected")  # the server's own sentence

    send(page, "second is still fine")
    wait_final(page, "Hello from the fake Groq.")
    send(page, "third is one too many")
    toast = page.locator(".toast")
    expect(toast).to_contain_text("Whoa, slow down a little.")
    expect(page.locator(".msg--user").last.locator(".msg-label")).to_have_text("not sent")
    expect(composer).to_have_value("third is one too many")  # nothing typed is lost
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "chat-errors.png")
    toast.locator(".toast-close").click()
    expect(toast).to_have_count(0)
    assert_clean(page, server)


def test_page_pages_a_thousand_message_history(live_server, open_chat, database_url):
    from chatbot.store import Store
    from chatbot.web.sessions import COOKIE_NAME, LoginTokens

    server = live_server(start=False)
    store = Store(database_url)
    store.migrate()
    owner, conversation = store.create_session()
    conversation = conversation["id"]
    storekit.fill(store, owner, conversation, [f"message {i:04d}" for i in range(1000)])
    store.rename_conversation(owner, conversation, "Long chat")
    store.close()
    server.start()
    cookie = {"name": COOKIE_NAME, "value": LoginTokens(SECRET, 86400).issue(owner), "url": server.url}

    page = open_chat(server, cookies=[cookie], init_script=COUNT_BATCHES)
    expect(page.locator(".msg")).to_have_count(50)  # history is paged: the newest HISTORY_PAGE messages
    expect(page.locator(".msg").last).to_contain_text("message 0999")
    expect(page.locator(".msg").last).to_be_in_viewport()
    expect(page.locator("#conversation-title")).to_have_text("Long chat")
    # Scrolled to the top, the page asks for the page before; what the reader looked at stays in view.
    for shown in range(100, 1001, 50):
        top = page.locator(f'.msg[data-message-id="{page.locator(".msg").first.get_attribute("data-message-id")}"]')
        page.evaluate("document.getElementById('messages').scrollTop = 0")
        expect(page.locator(".msg")).to_have_count(shown)
        expect(top).to_be_in_viewport()
    expect(page.locator(".msg").first).to_contain_text("message 0000")
    assert page.evaluate("window.__batches") == [50] * 20  # one DOM insertion per page
    # Mark an old bubble: a later turn must leave it alone (no re-render of old messages).
    page.evaluate("document.querySelector('.msg').__marker = 'kept'")
    send(page, "one more")
    wait_final(page, "Hello from the fake Groq.")
    expect(page.locator(".msg")).to_have_count(1002)
    assert page.evaluate("document.querySelector('.msg').__marker") == "kept"
    assert_clean(page, server)


def test_page_theme_follows_system_and_toggle_is_remembered(live_server, open_chat):
    server = live_server(LLM_PROVIDER="demo", GROQ_API_KEY="")
    page = open_chat(server, scheme="dark")
    html, toggle = page.locator("html"), page.locator("#theme-toggle")
    expect(html).to_have_attribute("data-theme", "dark")
    expect(page.locator("#provider-banner")).to_contain_text(
        "Demo mode: no model is connected, so replies come from the offline demo provider.")
    expect(page.locator("#model-name")).to_have_text("Offline demo")
    expect(page.locator("#model-name")).to_be_visible()
    toggle.click()
    expect(html).to_have_attribute("data-theme", "light")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(html).to_have_attribute("data-theme", "light")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(html).to_have_attribute("data-theme", "dark")
    assert page.evaluate("localStorage.getItem('chatbotws.theme')") == "dark"
    assert_clean(page, server)


def _screenshot_conversation(page: Page, fake_groq) -> None:
    """A short, friendly conversation to photograph."""
    fake_groq.script(text=(
        "Sure! Slicing with a step of `-1` walks the string backwards:\n\n"
        "```python\ndef reverse(text: str) -> str:\n    \"\"\"Return text backwards.\"\"\"\n"
        "    return text[::-1]\n\nprint(reverse(\"hello\"))  # olleh\n```\n\n"
        "- works for any **sequence**\n- creates a *new* string\n"))
    send(page, "How do I reverse a string in Python?")
    wait_final(page)


def test_page_screenshots_light_dark_phone(live_server, fake_groq, open_chat):
    server = live_server()
    ARTIFACTS.mkdir(exist_ok=True)
    shots, cookies = {}, []
    for name, options in {"light": {}, "dark": {"scheme": "dark"},
                          "phone": {"width": 375, "height": 740}}.items():
        page = open_chat(server, cookies=cookies, **options)
        if name == "light":
            _screenshot_conversation(page, fake_groq)
            cookies = page.context.cookies()  # the same session in the other contexts
        expect(page.locator(FINAL_REPLY)).to_have_count(1)
        page.locator("#composer-input").blur()
        path = ARTIFACTS / f"chat-{name}.png"
        page.screenshot(path=path)
        shots[name] = path
        if name == "phone":
            page.locator("#menu-toggle").click()
            expect(page.locator("#sidebar")).to_have_css("transform", "none")  # slid all the way in
            expect(page.locator(".conversation.is-active .conversation-open")).to_be_focused()
            expect(page.locator("#menu-toggle")).to_have_attribute("aria-expanded", "true")
            page.screenshot(path=ARTIFACTS / "chat-phone-drawer.png")
            page.keyboard.press("Escape")
            expect(page.locator("#menu-toggle")).to_have_attribute("aria-expanded", "false")
            assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        assert_clean(page, server)
    assert all(path.stat().st_size > 10_000 for path in shots.values())
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        docs = Path(ROOT / "docs")
        docs.mkdir(exist_ok=True)
        shutil.copyfile(shots["light"], docs / "screenshot.png")


def test_page_refused_connection_says_why(live_server, browser, open_chat):
    server = live_server(RATE_LIMIT_CONNECTIONS="1/minute")
    open_chat(server)  # uses this address's one connection for the minute
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        expect(page.locator("#status")).to_have_attribute("data-state", "offline")
        expect(page.locator("#status-text")).to_have_text("Can't connect")
        expect(page.locator(".toast")).to_contain_text("Too many connections from your network.")
    finally:
        context.close()


def test_page_thinking_streams_folds_and_reopens_picker_and_usage(live_server, fake_groq, open_chat):
    server = live_server()
    page = open_chat(server)
    thinking = " ".join(f"thought{i}" for i in range(12))
    fake_groq.script(reasoning=thinking, text="The answer, after thinking.", delay=0.005, hold_after=6)
    send(page, "think first")
    block = last_reply(page).locator(".msg-thinking")
    expect(block).to_be_visible()
    expect(block).to_have_attribute("open", "")  # open while the model thinks
    expect(block.locator(".msg-thinking-label")).to_have_text("Thinking…")
    expect(block.locator(".msg-thinking-body")).to_contain_text("thought0")
    fake_groq.release()
    reply = wait_final(page, "The answer, after thinking.")
    expect(block).not_to_have_attribute("open", "")  # folded once the answer started
    expect(block.locator(".msg-thinking-label")).to_have_text(re.compile(r"^Thought for \d+\.\d s$"))
    block.locator("summary").click()
    expect(block).to_have_attribute("open", "")  # and it reopens
    expect(block.locator(".msg-thinking-body")).to_have_text(thinking)
    usage = reply.locator(".msg-usage")
    expect(usage).to_have_text(re.compile(r"^\d+ tokens · \d+ tok/s · first token \d+\.\d\d s$"))

    picker = page.locator("#model-picker")
    expect(picker).to_be_enabled()
    expect(page.locator("#model-name")).to_have_text("Groq")  # the picker shows the model, the label who serves it
    expect(picker.locator("option")).to_contain_text(["(default)"])
    picker.select_option("openai/gpt-oss-20b")
    expect(page.locator(".conversation.is-active")).to_be_visible()
    fake_groq.script(text="Smaller model here.")
    send(page, "and now?")
    wait_final(page, "Smaller model here.")
    assert fake_groq.requests[-1]["model"] == "openai/gpt-oss-20b"
    page.reload()
    expect(page.locator("#model-picker")).to_have_value("openai/gpt-oss-20b")
    reloaded = page.locator(".msg--bot .msg-thinking").first
    expect(reloaded.locator(".msg-thinking-label")).to_have_text("Thoughts")  # kept, folded, in history
    assert_clean(page, server)
