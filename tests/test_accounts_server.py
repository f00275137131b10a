"""Accounts against the real server (eventlet): two users cannot reach each other's conversations, messages or
replies through any event or route; no login, no socket and no page; a forged proxy header is ignored; CSRF;
a sign-in flood is limited without telling names apart; a disabled account's live socket is dropped within a
ping round; a cookie from before a password change is dead."""

from __future__ import annotations

import json
import re
import socket
from contextlib import closing

import pytest
import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter

from chatbot.store import Store, users
from tests.accounts_kit import CHEAP_ARGON2, PASSWORD, Browser, location
from tests.conftest import running_server, wait_until
from tests.live_client import LiveClient
from tests.test_hardening import assert_refusal, refused_connect

pytestmark = pytest.mark.server

ACCOUNTS = {"AUTH_MODE": "accounts", "SIGNUP": "open", **CHEAP_ARGON2}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One accounts-mode eventlet server for the module, sweeping logins every second."""
    with running_server(tmp_path_factory.mktemp("accounts"), "accounts", **ACCOUNTS, PING_INTERVAL="1",
                        PING_TIMEOUT="5") as harness:
        yield harness


@pytest.fixture
def main(shared):
    """The shared server; this test's sockets are closed after it."""
    yield shared
    shared.reset()


def refusal_code(url: str, cookie: str) -> str:
    """The code a connection riding on `cookie` is refused with."""
    return refused_connect(url, headers={"Cookie": f"chatbot_token={cookie}"})["data"]["code"]


def chat_once(client: LiveClient, text_: str) -> dict:
    """Send a message and wait for its reply; return the ack."""
    ack = client.call("user_message", {"message": text_})
    assert ack["ok"], ack
    client.final(ack["reply_id"])
    return ack


# ---- two users ----------------------------------------------------------------------------------------------


def test_two_users_every_event_and_route_with_the_others_ids_is_not_found(main):
    alice_web, bob_web = main.person("alice-iso"), main.person("bob-iso")
    alice, bob = main.socket(alice_web), main.socket(bob_web)
    mine = chat_once(alice, "alice's secret question")
    conversation, message, reply = mine["conversation_id"], mine["message_id"], mine["reply_id"]
    chat_once(bob, "bob's own question")
    attempts = [
        ("open_conversation", {"conversation_id": conversation}),
        ("rename_conversation", {"conversation_id": conversation, "title": "mine now"}),
        ("delete_conversation", {"conversation_id": conversation}),
        ("load_more", {"conversation_id": conversation, "before_id": message + 10}),
        ("user_message", {"message": "let me in", "conversation_id": conversation}),
        ("regenerate", {"conversation_id": conversation}),
        ("stop", {"reply_id": reply}),
        ("stop", {"reply_id": message}),
        ("resume", {"reply_id": reply, "after_seq": -1}),
        ("resume", {"reply_id": message, "after_seq": -1}),
    ]
    for event, payload in attempts:
        assert_refusal(bob.call(event, payload), "not_found")
    for fmt in ("md", "json"):
        response = bob_web.get(f"/conversations/{conversation}/export.{fmt}")
        assert response.status_code == 404 and "alice" not in response.text
    listed = bob.call("list_conversations")
    assert conversation not in {c["id"] for c in listed["conversations"]}
    # Alice's conversation is untouched and still hers.
    exported = alice_web.get(f"/conversations/{conversation}/export.json")
    assert exported.status_code == 200
    body = exported.json()
    assert body["conversation"]["title"] != "mine now"
    assert [m["content"] for m in body["messages"]][0] == "alice's secret question"
    assert "let me in" not in json.dumps(bob.events)


# ---- no login -----------------------------------------------------------------------------------------------


def polling_connect(session: requests.Session, url: str, headers: dict | None = None) -> str:
    """An Engine.IO polling handshake and a Socket.IO connect; return the server's answer to the connect (and, when
    it was accepted, the events that follow it: `session_id` is sent after the CONNECT packet, maybe in the next
    long-poll)."""
    base = url + "/socket.io/?EIO=4&transport=polling"
    opened = session.get(base, headers=headers, timeout=10)
    sid = json.loads(opened.text[1:])["sid"]
    session.post(f"{base}&sid={sid}", data="40", headers=headers, timeout=10)
    answer = session.get(f"{base}&sid={sid}", headers=headers, timeout=10).text
    if answer.startswith("40") and '42["session_id"' not in answer:
        answer += "\x1e" + session.get(f"{base}&sid={sid}", headers=headers, timeout=10).text
    return answer


def test_no_login_no_socket_and_no_page(main):
    refusal = refused_connect(main.url)
    assert refusal["data"]["code"] == "auth_required"
    assert refused_connect(main.url, auth={"token": "forged"})["data"]["code"] == "auth_required"
    assert '44{"message":"Please sign in first."' in polling_connect(requests.Session(), main.url)
    anonymous = Browser(requests.Session(), main.url)
    assert location(anonymous.get("/")) == "/signin"
    assert location(anonymous.get("/admin")) == "/signin"
    export = anonymous.get(f"/conversations/{'a' * 32}/export.json")
    assert export.status_code == 401 and export.json()["error"]["code"] == "auth_required"
    page = anonymous.get("/signin")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and "style=" not in page.text


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_csrf_missing_or_wrong_is_400_on_the_real_server(main, token):
    web = Browser(requests.Session(), main.url)
    web.get("/signin")
    fields = {"username": "csrf-victim", "password": PASSWORD, "confirm": PASSWORD}
    if token is not None:
        fields["csrf_token"] = token
    for path in ("/signup", "/signin"):
        response = web.post(path, fields)
        assert response.status_code == 400 and "too old or not sent from this site" in response.text
    assert main.store.find_user("csrf-victim") is None


# ---- sessions end -------------------------------------------------------------------------------------------


def test_disabled_users_live_socket_is_dropped_within_a_ping_round_and_cannot_reconnect(main):
    web = main.person("dora")
    live = main.socket(web)
    # Disabled by something other than this process (another process, a script): only the database knows.
    with main.store.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == "dora")
                     .values(state="disabled", session_version=users.c.session_version + 1))
    assert live.wait("error", lambda d: d["code"] == "auth_required", timeout=10)
    wait_until(lambda: not live.sio.connected, timeout=10, what="the socket dropped")
    assert refusal_code(main.url, web.cookie()) == "auth_required"
    assert location(web.get("/")) == "/signin"


def test_cookie_from_before_a_password_change_is_dead(main):
    web = main.person("pat")
    old_cookie = web.cookie()
    live = main.socket(web)
    other = Browser(requests.Session(), main.url)
    assert other.signin("pat").status_code == 302
    response = other.submit("/account", {"current": PASSWORD, "password": "a new secret phrase",
                                         "confirm": "a new secret phrase"})
    assert response.status_code == 302
    wait_until(lambda: not live.sio.connected, timeout=10, what="the old socket dropped")
    stale = Browser(requests.Session(), main.url)
    stale.client.cookies.set("chatbot_token", old_cookie)
    assert location(stale.get("/")) == "/signin"
    assert stale.get(f"/conversations/{'a' * 32}/export.md").status_code == 401
    assert refusal_code(main.url, old_cookie) == "auth_required"
    assert other.get("/").status_code == 200  # the browser that changed it stays signed in


# ---- sign-in flood ------------------------------------------------------------------------------------------


def test_signin_flood_is_limited_per_account_and_per_address_without_enumeration(live_server, fake_groq):
    server = live_server("eventlet", **ACCOUNTS, RATE_LIMIT_SIGNIN="3/minute", RATE_LIMIT_SIGNIN_PER_IP="8/minute")
    Browser(requests.Session(), server.url).signup("victim")
    answers, bodies = {}, {}
    for name in ("victim", "nobody-here"):
        web = Browser(requests.Session(), server.url)
        responses = [web.signin(name, "guess") for _ in range(4)]
        answers[name] = [r.status_code for r in responses]
        bodies[name] = [re.sub(r'value="[^"]*"', "", r.text.replace(name, "NAME")) for r in responses]
    assert answers == {"victim": [401, 401, 401, 429], "nobody-here": [401, 401, 401, 429]}
    assert bodies["victim"] == bodies["nobody-here"]
    # The sign-up and six attempts counted from this address: one more name, then it is refused for any name.
    fresh = [Browser(requests.Session(), server.url).signin(f"spray-{n}", "guess").status_code for n in range(3)]
    assert fresh == [401, 429, 429]
    assert Browser(requests.Session(), server.url).signin("victim", PASSWORD).status_code == 429


# ---- proxy mode ---------------------------------------------------------------------------------------------


class SourceAddress(HTTPAdapter):
    """Connects from a chosen loopback address (127.0.0.2 plays the proxy, 127.0.0.1 a client going around it)."""

    def __init__(self, source: str):
        """Bind every connection to `source`."""
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        """The pool's connections bind to our source address."""
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(source: str) -> requests.Session:
    """A requests session whose connections come from `source`."""
    session = requests.Session()
    session.mount("http://", SourceAddress(source))
    return session


def loopback_alias_works() -> bool:
    """Whether this machine routes 127.0.0.2 (every Linux does: all of 127/8 is loopback)."""
    try:
        with socket.create_connection(("127.0.0.1", 9), timeout=1, source_address=("127.0.0.2", 0)):
            pass
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return True


PROXY = {"AUTH_MODE": "proxy", "AUTH_PROXY_HEADER": "X-Forwarded-User", **CHEAP_ARGON2}


def test_proxy_header_without_trust_proxy_is_ignored(live_server, fake_groq):
    server = live_server("eventlet", **PROXY, TRUST_PROXY="false")
    forged = {"X-Forwarded-User": "admin"}
    response = requests.get(server.url + "/", headers=forged, allow_redirects=True, timeout=10)
    assert response.status_code == 401 and "login portal" in response.text
    assert refused_connect(server.url, headers=forged)["data"]["code"] == "auth_required"
    assert "AUTH_MODE=proxy without TRUST_PROXY" in server.log()


@pytest.mark.skipif(not loopback_alias_works(), reason="127.0.0.2 is not routable here")
def test_proxy_header_is_trusted_only_from_the_proxy_hop(live_server, fake_groq):
    server = live_server("eventlet", **PROXY, TRUST_PROXY="true", AUTH_PROXY_TRUSTED="127.0.0.2")
    header = {"X-Forwarded-User": "alice", "X-Forwarded-For": "198.51.100.7"}
    # A client going around the proxy, with a forged header: refused.
    direct = requests.get(server.url + "/", headers=header, allow_redirects=False, timeout=10)
    assert location(direct) == "/signin"
    assert '44{"message":"Please sign in first."' in polling_connect(requests.Session(), server.url, header)
    # Through the proxy's hop: the named user, made on first sight (the first one is the admin).
    proxy = from_address("127.0.0.2")
    page = proxy.get(server.url + "/", headers=header, allow_redirects=False, timeout=10)
    assert page.status_code == 200 and "alice" in page.text
    assert '42["session_id"' in polling_connect(proxy, server.url, header)
    assert proxy.get(server.url + "/", allow_redirects=False, timeout=10).status_code == 302  # no header: no one
    with closing(Store(server.env["DATABASE_URL"])) as store:
        assert store.find_user("alice")["role"] == "admin"
