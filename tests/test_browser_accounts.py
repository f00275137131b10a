"""Accounts in real headless Chromium against the real server: sign up, chat, sign out, sign in and find the history;
signed out everywhere from elsewhere, the open page goes to sign-in; the admin approves a pending user."""

from __future__ import annotations

import re

import pytest

from tests.accounts_kit import CHEAP_ARGON2, PASSWORD
from tests.test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    CHROMIUM_ARGS,
    assert_clean,
    browser,
    expect,
    send,
    wait_final,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

ACCOUNTS = {"AUTH_MODE": "accounts", **CHEAP_ARGON2}


@pytest.fixture
def database_url(tmp_path):
    """SQLite only: the pages do not care which database the server uses."""
    return f"sqlite:///{tmp_path / 'chatbot.db'}"


@pytest.fixture
def new_page(browser):  # noqa: F811
    """Factory: a page in a fresh browser context (its own cookies) that records script errors and requests."""
    contexts = []

    def open_():
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.requested, page.errors = [], []
        page.on("request", lambda request: page.requested.append(request.url))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        return page

    yield open_
    for context in contexts:
        context.close()


def fill_signup(page, server, name: str) -> None:
    """Go to the sign-up page from the sign-in page and make an account."""
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.get_by_role("link", name="Make an account").click()
    page.get_by_label("Email or user name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat it").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()


def fill_signin(page, server, name: str) -> None:
    """Sign in on the sign-in page."""
    page.goto(server.url + "/signin")
    page.get_by_label("Email or user name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def connected(page) -> None:
    """Wait until the chat page is connected."""
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def test_accounts_sign_up_chat_sign_out_sign_in_and_history_is_there(live_server, fake_groq, new_page):
    server = live_server(**ACCOUNTS, SIGNUP="open")
    page = new_page()
    fill_signup(page, server, "ada@example.org")
    connected(page)
    expect(page.locator("#signed-in-as")).to_have_text("ada@example.org")
    expect(page.locator("#admin-link")).to_be_visible()  # the first account is the admin
    fake_groq.script(text="Nice to meet you, Ada.")
    send(page, "remember me")
    wait_final(page, "Nice to meet you, Ada.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "accounts-chat.png"))

    page.locator("#sign-out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.screenshot(path=str(ARTIFACTS / "accounts-signin.png"))
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin$"))  # signed out: the page is not there for anyone

    fill_signin(page, server, "ADA@example.org")
    connected(page)
    expect(page.locator(".msg--user .msg-body").last).to_have_text("remember me")
    expect(page.locator(".msg--bot:not(.msg--welcome) .msg-body").last).to_have_text("Nice to meet you, Ada.")
    assert_clean(page, server)


def test_accounts_signed_out_everywhere_the_open_page_goes_to_sign_in(live_server, fake_groq, new_page):
    server = live_server(**ACCOUNTS, SIGNUP="open")
    first, second = new_page(), new_page()
    fill_signup(first, server, "grace")
    connected(first)
    fill_signin(second, server, "grace")
    connected(second)
    second.locator("#account-link").click()
    second.get_by_role("button", name="Sign out everywhere").click()
    expect(second).to_have_url(re.compile(r"/signin\?notice=everywhere$"))
    expect(second.locator(".auth-notice")).to_contain_text("signed out everywhere")
    expect(first).to_have_url(re.compile(r"/signin$"))  # its socket was dropped and the page moved on
    assert_clean(first, server)


def test_accounts_admin_approves_a_pending_user(live_server, fake_groq, new_page):
    server = live_server(**ACCOUNTS, SIGNUP="approval")
    admin, bob = new_page(), new_page()
    fill_signup(admin, server, "admin")
    connected(admin)
    fill_signup(bob, server, "bob")
    expect(bob.locator("#auth-title")).to_have_text("Almost there!")
    fill_signin(bob, server, "bob")
    expect(bob.locator(".auth-error")).to_contain_text("waiting for an admin")
    bob.errors.clear()  # Chromium logs that answer's 403 status as a console error: it is the expected refusal

    admin.locator("#admin-link").click()
    row = admin.locator('tr[data-user="bob"]')
    expect(row.locator(".admin-state")).to_have_text("pending")
    admin.screenshot(path=str(ARTIFACTS / "accounts-admin.png"))
    row.get_by_role("button", name="Approve").click()
    expect(admin.locator('tr[data-user="bob"] .admin-state')).to_have_text("active")

    fill_signin(bob, server, "bob")
    connected(bob)
    expect(bob.locator("#admin-link")).to_have_count(0)
    assert_clean(admin, server)
    assert_clean(bob, server)


def test_accounts_spent_quota_is_shown_with_its_reset_time(live_server, fake_groq, new_page):
    server = live_server(**ACCOUNTS, SIGNUP="open", USER_DAILY_TOKENS="10")
    page = new_page()
    fill_signup(page, server, "frugal")
    connected(page)
    fake_groq.script(text="That was costly.", usage={"total_tokens": 50})
    send(page, "first")
    wait_final(page, "That was costly.")
    send(page, "second")
    expect(page.locator(".toast .toast-message")).to_contain_text("resets at 00:00 UTC")
    expect(page.locator(".msg--user").last.locator(".msg-note")).to_contain_text("today's 10 tokens")
    assert len(fake_groq.requests) == 1
    assert_clean(page, server)
