"""Accounts through Flask's test clients: sign-up policies, sign-in (same answer and same work for an unknown name
and a wrong password, rehash, rotation), CSRF, session versions, sockets refused or dropped, anonymous
conversations adopted, quotas checked inside the turn's one transaction, and the admin page."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests import storekit
from tests.accounts_kit import CHEAP_ARGON2, PASSWORD, Browser, location, text


@pytest.fixture
def accounts(make_app):
    """Factory: an app in accounts mode (open sign-up, cheap hashes, no sign-in limit in the way)."""

    def build(**overrides):
        settings = {"AUTH_MODE": "accounts", "SIGNUP": "open", "RATE_LIMIT_SIGNIN": "1000/minute",
                    "RATE_LIMIT_SIGNIN_PER_IP": "1000/minute", **CHEAP_ARGON2, **overrides}
        return make_app(**settings)

    return build


def browser(app) -> Browser:
    """A fresh browser (its own cookies) on `app`."""
    return Browser(app.test_client())


def socket_of(app, web: Browser, auth=None):
    """A Socket.IO test client riding on a browser's cookies."""
    from chatbot import socketio

    return socketio.test_client(app, flask_test_client=web.client, auth=auth)


def same_page(one: str, other: str) -> bool:
    """Whether two pages are the same but for their CSRF tokens (signed with a timestamp)."""
    return re.sub(r'value="[^"]*"', "", one) == re.sub(r'value="[^"]*"', "", other) and 'name="csrf_token"' in one


def store_of(app):
    """The app's store."""
    return app.extensions["chatbot"].store


# ---- sign-up ------------------------------------------------------------------------------------------------


def test_signup_first_account_is_an_active_admin_and_signed_in(accounts):
    app = accounts(SIGNUP="closed")
    web = browser(app)
    response = web.signup("Alice@Example.org")
    assert response.status_code == 302 and location(response) == "/"
    user = store_of(app).find_user("alice@example.org")
    assert (user["role"], user["state"]) == ("admin", "active")
    assert web.get("/").status_code == 200


@pytest.mark.parametrize(("policy", "status", "state"), [("open", 302, "active"), ("approval", 202, "pending")])
def test_signup_policy_decides_the_second_account(accounts, policy, status, state):
    app = accounts(SIGNUP=policy)
    browser(app).signup("admin")
    response = browser(app).signup("bob")
    assert response.status_code == status
    assert store_of(app).find_user("bob")["state"] == state


def test_signup_closed_refuses_everyone_after_the_first(accounts):
    app = accounts(SIGNUP="closed")
    browser(app).signup("admin")
    response = browser(app).signup("bob")
    assert response.status_code == 403 and "does not take new accounts" in text(response)
    assert store_of(app).find_user("bob") is None


def test_signup_by_invitation_works_once(accounts):
    app = accounts(SIGNUP="invite")
    browser(app).signup("admin")
    admin = store_of(app).find_user("admin")
    assert browser(app).signup("nobody").status_code == 403
    token = store_of(app).create_link("invite", created_by=admin["id"], ttl_seconds=3600)
    assert browser(app).signup("carol", invite=token).status_code == 302
    assert browser(app).signup("dave", invite=token).status_code == 403
    assert store_of(app).find_user("carol")["state"] == "active" and store_of(app).find_user("dave") is None


@pytest.mark.parametrize("name", ["ALICE", "alice", " Alice "])
def test_signup_names_are_unique_case_insensitively(accounts, name):
    app = accounts()
    browser(app).signup("Alice")
    response = browser(app).signup(name.strip())
    assert response.status_code == 409 and "taken" in text(response)


@pytest.mark.parametrize(("fields", "message"), [
    ({"username": "eve", "password": "short", "confirm": "short"}, "Use 8 to 256"),
    ({"username": "eve", "password": PASSWORD, "confirm": PASSWORD + "x"}, "don"),
    ({"username": "eve smith", "password": PASSWORD, "confirm": PASSWORD}, "Letters, digits"),
    ({"username": "", "password": PASSWORD, "confirm": PASSWORD}, "required"),
])
def test_signup_bad_fields_are_shown_on_the_form(accounts, fields, message):
    app = accounts()
    response = browser(app).submit("/signup", fields)
    assert response.status_code == 400 and message in text(response)
    assert store_of(app).count_users() == 0


# ---- sign-in ------------------------------------------------------------------------------------------------


def test_signin_unknown_name_and_wrong_password_get_the_same_answer_and_the_same_work(accounts, monkeypatch):
    app = accounts()
    browser(app).signup("alice")
    passwords = app.extensions["chatbot"].passwords
    checks = []
    original = passwords._check
    monkeypatch.setattr(passwords, "_check", lambda stored, given: checks.append(stored) or original(stored, given))
    wrong = browser(app).signin("alice", "not the password")
    unknown = browser(app).signin("mallory", "not the password")
    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert same_page(text(wrong).replace("alice", "NAME"), text(unknown).replace("mallory", "NAME"))
    # One full argon2 verification each: the real hash for alice, the dummy one (same parameters) for nobody.
    assert len(checks) == 2 and checks[0] != checks[1] and passwords.dummy_verifications == 1
    assert checks[1].split("$")[:4] == checks[0].split("$")[:4]  # same algorithm, version and cost


def test_signin_rotates_the_session_cookie(accounts):
    app = accounts()
    browser(app).signup("alice")
    web = browser(app)
    web.get("/signin")
    first = web.signin("alice")
    token = web.cookie()
    web.client.delete_cookie("chatbot_token")
    second = web.signin("alice")
    assert first.status_code == second.status_code == 302
    assert web.cookie() != token
    login = app.extensions["chatbot"].tokens.read(web.cookie())
    assert login.user_id == store_of(app).find_user("alice")["id"]


def test_signin_rehashes_when_the_argon2_parameters_change(accounts, database_url):
    app = accounts()
    browser(app).signup("alice")
    old = store_of(app).find_user("alice")["password_hash"]
    stronger = accounts(ARGON2_TIME_COST="2", ARGON2_MEMORY_KIB="128")
    assert browser(stronger).signin("alice").status_code == 302
    new = store_of(stronger).find_user("alice")["password_hash"]
    assert new != old and "t=2" in new and "m=128" in new
    assert not stronger.extensions["chatbot"].passwords.needs_rehash(new)


@pytest.mark.parametrize("state", ["pending", "disabled"])
def test_signin_of_an_inactive_account_is_refused(accounts, state):
    app = accounts()
    browser(app).signup("admin")
    browser(app).signup("bob")
    store_of(app).set_user_state(store_of(app).find_user("bob")["id"], state)
    response = browser(app).signin("bob")
    assert response.status_code == 403 and browser(app).get("/").status_code == 302


def test_signin_flood_is_limited_per_account_and_the_same_for_unknown_names(accounts):
    app = accounts(RATE_LIMIT_SIGNIN="2/minute")
    browser(app).signup("alice")
    answers = {}
    for name in ("alice", "nobody"):
        web = browser(app)
        answers[name] = [web.signin(name, "wrong").status_code for _ in range(3)]
    assert answers == {"alice": [401, 401, 429], "nobody": [401, 401, 429]}
    assert browser(app).signin("alice").status_code == 429  # the right password too, until the window ends


# ---- CSRF and origins -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
@pytest.mark.parametrize("path", ["/signin", "/signup", "/signout", "/signout/everywhere"])
def test_csrf_missing_or_wrong_is_400(accounts, token, path):
    app = accounts()
    web = browser(app)
    web.get("/signin")
    fields = {"username": "alice", "password": PASSWORD, "confirm": PASSWORD}
    if token is not None:
        fields["csrf_token"] = token
    response = web.post(path, fields)
    assert response.status_code == 400 and "too old or not sent from this site" in text(response)
    assert store_of(app).count_users() == 0


def test_form_post_from_another_origin_is_refused(accounts):
    app = accounts()
    web = browser(app)
    response = web.submit("/signup", {"username": "alice", "password": PASSWORD, "confirm": PASSWORD},
                          headers={"Origin": "https://evil.test"})
    assert response.status_code == 400 and store_of(app).count_users() == 0


# ---- pages and sockets need the login ---------------------------------------------------------------------------


def test_page_without_login_redirects_to_signin_and_export_is_401(accounts):
    app = accounts()
    web = browser(app)
    assert location(web.get("/")) == "/signin"
    response = web.get(f"/conversations/{'0' * 32}/export.json")
    assert response.status_code == 401 and response.json["error"]["code"] == "auth_required"


@pytest.mark.parametrize("auth", [None, {"token": "forged"}])
def test_socket_without_login_is_refused_before_any_handler(accounts, auth):
    app = accounts()
    client = socket_of(app, browser(app), auth=auth)
    assert not client.is_connected()
    assert app.extensions["chatbot"].chat.sockets == {}


def test_socket_with_an_anonymous_token_is_refused_in_accounts_mode(accounts):
    app = accounts()
    owner_id, _ = store_of(app).create_session()
    token = app.extensions["chatbot"].tokens.issue(owner_id)
    assert not socket_of(app, browser(app), auth={"token": token}).is_connected()


def test_socket_with_login_connects_in_one_read(accounts, received):
    from tests.test_turns import Transactions

    app = accounts()
    web = browser(app)
    web.signup("alice")
    socket_of(app, web)  # the first connect makes the account's first conversation
    counter = Transactions(store_of(app))
    try:
        client = socket_of(app, web)
        events = received(client)
        session = events.wait("session_id")
        events.wait("history")
        assert session["token"] is None  # a cookie-riding browser never sees its login token
        assert (counter.begins, counter.writes) == (1, 0)
    finally:
        counter.close()


def test_password_change_kills_every_older_cookie_and_socket(accounts, received):
    app = accounts()
    web, other = browser(app), browser(app)
    web.signup("alice")
    other.signin("alice")
    live = socket_of(app, other)
    assert live.is_connected()
    response = web.submit("/account", {"current": PASSWORD, "password": "a brand new secret",
                                       "confirm": "a brand new secret"})
    assert response.status_code == 302
    assert not live.is_connected()
    assert location(other.get("/")) == "/signin"
    assert not socket_of(app, other).is_connected()
    assert web.get("/").status_code == 200  # the browser that changed it got a token of the new version
    assert browser(app).signin("alice", "a brand new secret").status_code == 302


def test_signout_everywhere_ends_every_session(accounts):
    app = accounts()
    web, other = browser(app), browser(app)
    web.signup("alice")
    other.signin("alice")
    live = socket_of(app, other)
    response = web.submit("/signout/everywhere", {}, form_page="/account")
    assert location(response) == "/signin?notice=everywhere"
    assert not live.is_connected()
    assert location(other.get("/")) == "/signin" and location(web.get("/")) == "/signin"


def test_signout_ends_only_this_browser(accounts):
    app = accounts()
    web, other = browser(app), browser(app)
    web.signup("alice")
    other.signin("alice")
    assert location(web.submit("/signout", {}, form_page="/")) == "/signin"
    assert location(web.get("/")) == "/signin" and other.get("/").status_code == 200


def test_sweep_drops_the_sockets_of_an_account_changed_elsewhere(accounts, received):
    app = accounts()
    web, other = browser(app), browser(app)
    web.signup("admin")
    other.signup("bob")
    bob, admin = socket_of(app, other), socket_of(app, web)
    events = received(bob)
    events.wait("history")
    # Another process disabled bob: only the database knows.
    with store_of(app).engine.begin() as conn:
        from chatbot.store import users

        conn.execute(sa.update(users).where(users.c.username == "bob").values(state="disabled"))
    assert app.extensions["chatbot"].chat.logins.sweep() == 1
    assert not bob.is_connected() and admin.is_connected()
    assert not socket_of(app, other).is_connected()


def test_anonymous_conversations_move_into_the_account_at_signup(accounts):
    app = accounts()
    store = store_of(app)
    owner_id, conversation = store.create_session()
    storekit.turn(store, owner_id, conversation["id"], "made before signing up", "noted")
    web = browser(app)
    web.client.set_cookie("chatbot_token", app.extensions["chatbot"].tokens.issue(owner_id))
    web.signup("alice")
    user = store.find_user("alice")
    assert [c["id"] for c in store.list_conversations(user["owner_id"])] == [conversation["id"]]
    assert store.get_active_conversation(user["owner_id"]) == conversation["id"]
    assert not storekit.owner_exists(store, owner_id)


def test_idle_cleanup_keeps_accounts(accounts):
    app = accounts()
    browser(app).signup("alice")
    store_of(app).create_session()
    assert store_of(app).delete_idle_owners(0) == 1
    assert store_of(app).find_user("alice") is not None


# ---- quotas ---------------------------------------------------------------------------------------------------


def test_quota_spent_is_rate_limited_with_the_reset_time_and_groq_is_not_called(accounts, received, fake_groq):
    from tests.test_turns import Transactions

    app = accounts(USER_DAILY_TOKENS="100")
    web = browser(app)
    web.signup("alice")
    client = socket_of(app, web)
    events = received(client)
    events.wait("history")
    fake_groq.script(text="An answer.", usage={"total_tokens": 150})
    counter = Transactions(store_of(app))
    try:
        ack = client.emit("user_message", {"message": "hi"}, callback=True)
        assert ack["ok"] and counter.begins == 1  # the quota is read inside the turn's one transaction
    finally:
        counter.close()
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    assert storekit.tokens_today(store_of(app), store_of(app).find_user("alice")["id"]) == 150
    refused = client.emit("user_message", {"message": "again"}, callback=True)
    assert refused["error"]["code"] == "rate_limited" and "resets at 00:00 UTC" in refused["error"]["message"]
    assert refused["error"]["retry_after"] > 0 and len(fake_groq.requests) == 1
    # An admin's override lifts it (0 = no limit).
    store_of(app).set_daily_token_limit(store_of(app).find_user("alice")["id"], 0)
    assert client.emit("user_message", {"message": "and again"}, callback=True)["ok"]


def test_quota_is_not_checked_in_open_mode(make_app, received):
    from chatbot import socketio

    app = make_app(USER_DAILY_TOKENS="1")
    client = socketio.test_client(app)
    received(client).wait("history")
    for _ in range(2):
        ack = client.emit("user_message", {"message": "hi"}, callback=True)
        assert ack["ok"]
        received(client).wait("bot_message", lambda d, r=ack["reply_id"]: d.get("reply_id") == r)
