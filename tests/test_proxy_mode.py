"""Proxy mode through Flask's test clients: the proxy's header names the user only with TRUST_PROXY and only from
a trusted proxy address; the account is made on first sight; a disabled one is refused."""

from __future__ import annotations

import pytest

from tests.accounts_kit import CHEAP_ARGON2, location, text

PROXY_PEER = "10.0.0.5"


@pytest.fixture
def proxy_app(make_app):
    """Factory: an app in proxy mode behind a proxy at 10.0.0.5."""
    return lambda **overrides: make_app(**{"AUTH_MODE": "proxy", "TRUST_PROXY": "true",
                                           "AUTH_PROXY_TRUSTED": f"{PROXY_PEER}/32", **CHEAP_ARGON2, **overrides})


def get(app, path: str, peer: str, user: str | None = None):
    """GET `path` as if from `peer`, with the proxy's header when `user` is given."""
    headers = {"X-Forwarded-User": user} if user is not None else {}
    return app.test_client().get(path, headers=headers, environ_base={"REMOTE_ADDR": peer})


def test_proxy_user_from_the_proxy_is_signed_in_and_made_on_first_sight(proxy_app):
    app = proxy_app()
    response = get(app, "/", PROXY_PEER, "alice")
    assert response.status_code == 200 and "alice" in text(response)
    store = app.extensions["chatbot"].store
    assert store.find_user("alice")["role"] == "admin"
    assert get(app, "/", PROXY_PEER, "bob").status_code == 200
    assert store.find_user("bob")["role"] == "user" and store.count_users() == 2


@pytest.mark.parametrize(("peer", "trust"), [("203.0.113.9", "true"), (PROXY_PEER, "false")])
def test_proxy_header_from_elsewhere_or_untrusted_is_ignored(proxy_app, peer, trust):
    app = proxy_app(TRUST_PROXY=trust)
    assert location(get(app, "/", peer, "admin")) == "/signin"
    assert get(app, "/signin", peer, "admin").status_code == 401
    assert app.extensions["chatbot"].store.count_users() == 0


@pytest.mark.parametrize("name", ["", "a b", "x" * 300, "eve\tsmith", "<script>"])
def test_proxy_header_that_is_not_a_name_is_refused(proxy_app, name):
    app = proxy_app()
    assert location(get(app, "/", PROXY_PEER, name)) == "/signin"
    assert app.extensions["chatbot"].store.count_users() == 0


def test_proxy_disabled_account_is_refused(proxy_app):
    app = proxy_app()
    get(app, "/", PROXY_PEER, "alice")
    store = app.extensions["chatbot"].store
    store.set_user_state(store.find_user("alice")["id"], "disabled")
    assert location(get(app, "/", PROXY_PEER, "alice")) == "/signin"


def test_proxy_socket_needs_the_header(proxy_app):
    from chatbot import socketio

    app = proxy_app(AUTH_PROXY_TRUSTED="127.0.0.1")  # Flask's test client connects from 127.0.0.1
    assert not socketio.test_client(app, flask_test_client=app.test_client()).is_connected()
    client = socketio.test_client(app, flask_test_client=app.test_client(), headers={"X-Forwarded-User": "alice"})
    assert client.is_connected()
    client.disconnect()
