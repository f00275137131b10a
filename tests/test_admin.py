"""The admin page: admins only; approve, disable, enable, delete with data, make admin, quotas, invitation and
password reset links, and the usage figures."""

from __future__ import annotations

import re

import pytest

from tests import storekit
from tests.accounts_kit import PASSWORD, Browser, location, text
from tests.test_accounts import accounts, browser, socket_of, store_of  # noqa: F401  (the fixture too)


@pytest.fixture
def team(accounts):  # noqa: F811
    """An app with an admin and a user (bob), each signed in in a browser of their own."""
    app = accounts()
    admin, bob = browser(app), browser(app)
    admin.signup("admin")
    bob.signup("bob")
    return app, admin, bob


def bob_id(app) -> str:
    """Bob's account id."""
    return store_of(app).find_user("bob")["id"]


def act(admin: Browser, user_id: str, action: str, **fields):
    """Press one of the admin page's buttons."""
    return admin.submit(f"/admin/users/{user_id}/{action}", fields, form_page="/admin")


def test_admin_page_is_for_admins_only(team, make_app):
    app, admin, bob = team
    assert admin.get("/admin").status_code == 200
    response = bob.get("/admin")
    assert response.status_code == 403 and "admins only" in text(response)
    assert bob.submit(f"/admin/users/{bob_id(app)}/promote", {}, form_page="/").status_code == 403
    assert location(browser(app).get("/admin")) == "/signin"
    assert Browser(make_app().test_client()).get("/admin").status_code == 404  # open mode has no admin page


def test_admin_lists_accounts_with_state_role_and_usage(team, received, fake_groq):
    app, admin, bob = team
    client = socket_of(app, bob)
    events = received(client)
    events.wait("history")
    fake_groq.script(text="Counted.", usage={"total_tokens": 1234})
    ack = client.emit("user_message", {"message": "count me"}, callback=True)
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    page = text(admin.get("/admin"))
    row = re.search(r'<tr data-user="bob" data-state="active">.*?</tr>', page, re.S).group(0)
    assert row.count("1 msg · 1,234 tok") == 2  # the last 24 hours and the last 30 days
    figures = {u["username"]: u for u in store_of(app).users_with_usage()}
    assert (figures["bob"]["messages_24h"], figures["bob"]["tokens_30d"]) == (1, 1234)
    assert figures["admin"]["tokens_24h"] == 0 and figures["admin"]["role"] == "admin"


def test_admin_approves_a_pending_account(accounts):  # noqa: F811
    app = accounts(SIGNUP="approval")
    admin = browser(app)
    admin.signup("admin")
    assert browser(app).signup("bob").status_code == 202
    assert browser(app).signin("bob").status_code == 403
    assert act(admin, bob_id(app), "approve").status_code == 302
    assert browser(app).signin("bob").status_code == 302


def test_admin_disable_drops_live_sockets_and_enable_lets_back_in(team):
    app, admin, bob = team
    live = socket_of(app, bob)
    assert live.is_connected()
    act(admin, bob_id(app), "disable")
    assert not live.is_connected()
    assert location(bob.get("/")) == "/signin" and browser(app).signin("bob").status_code == 403
    act(admin, bob_id(app), "enable")
    assert browser(app).signin("bob").status_code == 302


def test_admin_delete_needs_confirmation_and_takes_the_data(team):
    app, admin, bob = team
    store = store_of(app)
    user = store.find_user("bob")
    conversation = store.create_conversation(user["owner_id"])
    storekit.turn(store, user["owner_id"], conversation["id"], "bob's words", "noted")
    assert act(admin, user["id"], "delete").status_code == 400
    assert act(admin, user["id"], "delete", confirm="yes").status_code == 302
    assert store.find_user("bob") is None and not storekit.owner_exists(store, user["owner_id"])
    from chatbot.store import NotFound

    with pytest.raises(NotFound):
        store.get_conversation(user["owner_id"], conversation["id"])
    assert location(bob.get("/")) == "/signin"


@pytest.mark.parametrize("action", ["disable", "delete", "demote"])
def test_admin_cannot_lock_themselves_out(team, action):
    app, admin, _ = team
    me = store_of(app).find_user("admin")
    assert act(admin, me["id"], action, confirm="yes").status_code == 409
    assert store_of(app).find_user("admin")["role"] == "admin"


def test_admin_makes_another_admin(team):
    app, admin, bob = team
    act(admin, bob_id(app), "promote")
    assert bob.get("/admin").status_code == 200
    act(admin, bob_id(app), "demote")
    assert bob.get("/admin").status_code == 403


@pytest.mark.parametrize(("value", "stored"), [("5000", 5000), ("1,000", 1000), ("0", 0), ("", None)])
def test_admin_sets_a_quota_override(team, value, stored):
    app, admin, _ = team
    assert admin.submit(f"/admin/users/{bob_id(app)}/quota", {"daily_tokens": value},
                        form_page="/admin").status_code == 302
    assert store_of(app).find_user("bob")["daily_token_limit"] == stored


@pytest.mark.parametrize("value", ["-1", "lots", "1e9", "9" * 14])
def test_admin_quota_override_refuses_bad_numbers(team, value):
    app, admin, _ = team
    response = admin.submit(f"/admin/users/{bob_id(app)}/quota", {"daily_tokens": value}, form_page="/admin")
    assert response.status_code == 400 and store_of(app).find_user("bob")["daily_token_limit"] is None


def test_admin_invitation_link_signs_up_once(accounts):  # noqa: F811
    app = accounts(SIGNUP="invite")
    admin = browser(app)
    admin.signup("admin")
    page = text(admin.submit("/admin/invite", {}, form_page="/admin"))
    link = re.search(r'id="new-link" type="text" readonly value="([^"]+)"', page).group(1)
    token = link.split("invite=", 1)[1]
    guest = browser(app)
    assert 'name="invite"' in text(guest.get(f"/signup?invite={token}"))
    assert guest.signup("carol", invite=token).status_code == 302
    assert browser(app).signup("dave", invite=token).status_code == 403


def test_admin_password_reset_link_sets_a_password_and_ends_sessions(team):
    app, admin, bob = team
    page = text(admin.submit(f"/admin/users/{bob_id(app)}/reset", {}, form_page="/admin"))
    path = "/reset/" + re.search(r'value="[^"]*/reset/([^"]+)"', page).group(1)
    stranger = browser(app)
    fields = {"password": "chosen anew 123", "confirm": "chosen anew 123"}
    assert location(stranger.submit(path, fields)) == "/signin?notice=reset"
    assert location(bob.get("/")) == "/signin"  # bob's old session is over
    assert browser(app).signin("bob", PASSWORD).status_code == 401
    assert browser(app).signin("bob", "chosen anew 123").status_code == 302
    assert stranger.get(path).status_code == 404  # used once
