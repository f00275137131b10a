"""Hostile clients, bad input and upstream faults against the real server: clear errors, nothing lost or leaked.

Most tests share one eventlet server (module-scoped, its own fake Groq) and leave nothing behind: every test uses
fresh sessions and resets the fake's script queue. Tests that need other settings (small rate limits, fast pings,
TRUST_PROXY, gevent) start their own server with `live_server`.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import time
import uuid

import pytest
import requests
import socketio
import sqlalchemy as sa
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from chatbot import store as store_module
from chatbot.protocol import MESSAGES
from chatbot.store import Store
from chatbot.web.sessions import COOKIE_NAME, LoginTokens
from fakes.groq import FakeGroq
from tests import storekit
from tests.conftest import SECRET, running_server, wait_until
from tests.live_client import LiveClient

pytestmark = pytest.mark.server

ALLOWED_ORIGIN = "https://chat.test"  # .test is reserved: never a real host
DAY = 86400


# ---- the shared server --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One real eventlet server for the module: small upstream timeouts, one reply at a time per session."""
    with running_server(tmp_path_factory.mktemp("hardening"), "shared", ALLOWED_ORIGINS=ALLOWED_ORIGIN,
                        MAX_CONCURRENT_REPLIES="1", GROQ_TIMEOUT="1", GROQ_MAX_RETRY_WAIT="2",
                        LOG_CONTENT="false") as harness:
        yield harness
        # Checked once every test of the module that used the server has run, in whatever order they ran: whatever
        # they did to it, its log is still one line per event.
        assert_structured(harness.server.log())


def assert_structured(log: str) -> None:
    """Every line of a server log is one structured event (or the start-up line), and none is a traceback."""
    lines = log.splitlines()
    assert all(LOG_LINE.match(line) or line.startswith("chatbotws: serving on") for line in lines), [
        line for line in lines if not LOG_LINE.match(line)][:5]
    assert "Traceback" not in log


@pytest.fixture
def main(shared_server):
    """The shared server, with the fake Groq's queue empty before and after the test."""
    shared_server.reset()
    yield shared_server
    shared_server.reset()


# ---- helpers ------------------------------------------------------------------------------------------------


def ws_url(url: str) -> str:
    """The Engine.IO websocket endpoint of a server."""
    return url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


def raw_socket(url: str, **options) -> tuple[websocket.WebSocket, dict]:
    """A raw websocket attached to the default namespace, as a hostile client would hold one: (ws, session)."""
    ws = websocket.create_connection(ws_url(url), timeout=10, suppress_origin=True, **options)
    assert ws.recv().startswith("0{")
    ws.send("40")
    while True:
        frame = ws.recv()
        if frame.startswith('42["session_id"'):
            return ws, json.loads(frame[2:])[1]


def read_until_closed(ws: websocket.WebSocket) -> list[str]:
    """Read until the server closes the connection (a silent server fails on the socket timeout)."""
    frames = []
    while True:
        try:
            frame = ws.recv()
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError, BrokenPipeError):
            return frames
        if not frame:  # the close frame
            return frames
        frames.append(frame)


def send_announced_frame(ws: websocket.WebSocket, length: int) -> int:
    """Send a text frame header announcing `length` bytes, then its body; return how much went before a reset."""
    # Zero mask key: the masked body is the body itself.
    header = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", length) + b"\0\0\0\0"
    chunk = b"4" * 65536
    sent = 0
    try:
        ws.sock.sendall(header)
        while sent < length:
            ws.sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def send_until_cut(ws: websocket.WebSocket, frame: str) -> None:
    """Send a frame the server may hang up on halfway."""
    try:
        ws.send(frame)
    except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionResetError):
        pass


def metric(url: str, name: str) -> float:
    """One value from the server's /metrics."""
    text = requests.get(url + "/metrics", timeout=5).text
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def messages_of(store: Store, owner_id: str) -> list[dict]:
    """Every stored message of a session, all conversations."""
    if not storekit.owner_exists(store, owner_id):
        return []
    return [m for c in store.list_conversations(owner_id) for m in storekit.messages_of(store, owner_id, c["id"])]


def owner_count(store: Store) -> int:
    """How many sessions the database holds."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store_module.owners)).scalar_one()


def assert_no_leak(received: object, fake: FakeGroq) -> None:
    """Nothing internal in what a client received: no key, URL, secret, stack trace or SQL."""
    text = repr(received)
    for secret in (fake.api_key, fake.base_url, f"127.0.0.1:{fake.port}", SECRET, "Traceback", 'File "',
                   "SELECT", "INSERT", "UPDATE ", "sqlite", "psycopg", "sqlalchemy", "openai/v1", "httpx"):
        assert secret not in text, f"{secret!r} leaked to the client"


def assert_refusal(ack: object, code: str) -> dict:
    """An ack that refuses with exactly {ok: false, error: {code, message[, retry_after]}}; returns the error."""
    assert isinstance(ack, dict) and set(ack) == {"ok", "error"} and ack["ok"] is False, ack
    error = ack["error"]
    assert error["code"] == code, ack
    assert set(error) <= {"code", "message", "retry_after"}
    assert isinstance(error["message"], str) and error["message"].strip()
    return error


def refused_connect(url: str, **options) -> dict:
    """Try to connect; return the connect_error payload the server refused the connection with."""
    client = socketio.Client(reconnection=False)
    refusals = []
    client.on("connect_error", lambda data=None: refusals.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(url, transports=["websocket"], wait_timeout=10, **options)
    client.disconnect()
    assert refusals, "the server accepted the connection"
    return refusals[-1]


def backdated_token(owner_id: str, seconds_ago: float) -> str:
    """A session token for `owner_id` signed with the server's key, as if issued `seconds_ago`."""
    class BackdatedSigner(TimestampSigner):
        """Signs with a timestamp `seconds_ago` in the past."""

        def get_timestamp(self) -> int:
            """The issue time to sign into the token."""
            return int(time.time() - seconds_ago)

    tokens = LoginTokens(SECRET, DAY)
    tokens._serializer.signer = BackdatedSigner  # same key and salt as the server's, another clock
    return tokens.issue(owner_id)


# ---- origins ------------------------------------------------------------------------------------------------

FOREIGN_ORIGINS = ["http://evil.test", "null", "http://127.0.0.1:{port}.evil.test", "https://127.0.0.1:{port}",
                   "http://127.0.0.1:1", ALLOWED_ORIGIN + ".evil.test", ALLOWED_ORIGIN + ":8443"]


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_origin_foreign_handshake_refused_over_polling(main, origin):
    origin = origin.format(port=main.server.port)
    response = requests.get(main.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": origin}, timeout=5)
    assert response.status_code == 400 and not response.text.startswith("0{")
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_origin_foreign_handshake_refused_over_websocket(main, origin):
    origin = origin.format(port=main.server.port)
    sessions = owner_count(main.store)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(main.url), timeout=10, origin=origin)
    assert refused.value.status_code == 400
    assert owner_count(main.store) == sessions  # no connect handler ran


@pytest.mark.parametrize("origin", ["own", ALLOWED_ORIGIN])
def test_origin_own_and_allowed_handshakes_accepted(main, origin):
    origin = f"http://127.0.0.1:{main.server.port}" if origin == "own" else origin
    polling = requests.get(main.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": origin}, timeout=5)
    assert polling.status_code == 200 and polling.text.startswith("0{")
    assert polling.headers["Access-Control-Allow-Origin"] == origin
    ws = websocket.create_connection(ws_url(main.url), timeout=10, origin=origin)
    try:
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert any(ws.recv().startswith('42["session_id"') for _ in range(5))
    finally:
        ws.close()


# ---- tokens -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_ago", "same_session"),
    [(31 * DAY, False), (-DAY, False), (29 * DAY, True)],
    ids=["expired", "from-the-future", "still-valid"],
)
@pytest.mark.parametrize("carrier", ["auth", "cookie", "export"])
def test_token_expiry_is_enforced(main, seconds_ago, same_session, carrier):
    owner = main.client()
    session = owner.wait("session_id")
    ack = owner.call("user_message", {"message": "mine alone"})
    owner.final(ack["reply_id"])
    token = backdated_token(session["session_id"], seconds_ago)
    if carrier == "export":
        url = f"{main.url}/conversations/{ack['conversation_id']}/export.json"
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == (200 if same_session else 401)
        assert ("mine alone" in response.text) is same_session
        return
    if carrier == "auth":
        again = main.client(token)
    else:
        again = main.client(headers={"Cookie": f"{COOKIE_NAME}={token}"})
    assert (again.wait("session_id")["session_id"] == session["session_id"]) is same_session
    contents = [m["content"] for m in again.wait("history")["messages"]]
    assert ("mine alone" in contents) is same_session


@pytest.mark.parametrize(
    "forge",
    [
        lambda owner: LoginTokens(SECRET, DAY)._serializer.dumps({"owner": owner}),
        lambda owner: LoginTokens(SECRET, DAY).issue(owner)[:-2],
        lambda owner: LoginTokens(SECRET, DAY).issue(owner).replace(".", "..", 1),
        lambda owner: LoginTokens(SECRET, DAY).issue(owner + "00"),
        lambda owner: LoginTokens("x" * 40, DAY).issue(owner),
        lambda owner: URLSafeTimedSerializer(SECRET, salt="cookie-session").dumps(owner),
    ],
    ids=["payload-not-an-id", "truncated", "tampered", "id-too-long", "other-key", "other-salt"],
)
def test_token_forged_starts_a_new_session(main, forge):
    owner = main.client()
    session = owner.wait("session_id")
    intruder = main.client(forge(session["session_id"]))
    assert intruder.wait("session_id")["session_id"] != session["session_id"]
    assert intruder.wait("history")["messages"] == []


# ---- payload validation -------------------------------------------------------------------------------------

NO_ARGUMENTS = object()
OWN_CONVERSATION = "<own conversation>"

BAD_PAYLOADS = [
    ("user_message", NO_ARGUMENTS, "invalid_message"),
    ("user_message", (None,), "invalid_message"),
    ("user_message", 42, "invalid_message"),
    ("user_message", "hello", "invalid_message"),
    ("user_message", [{"message": "hi"}], "invalid_message"),
    ("user_message", b"\x00binary\xff", "invalid_message"),
    ("user_message", ({"message": "one"}, {"message": "two"}), "invalid_message"),
    ("user_message", {"message": None}, "invalid_message"),
    ("user_message", {"message": 12.5}, "invalid_message"),
    ("user_message", {"message": True}, "invalid_message"),
    ("user_message", {"message": ["hi"]}, "invalid_message"),
    ("user_message", {"message": {"text": {"deeper": ["hi"]}}}, "invalid_message"),
    ("user_message", {"message": b"binary text"}, "invalid_message"),
    ("user_message", {"message": ""}, "invalid_message"),
    ("user_message", {"message": " \t\r\n\u3000 "}, "invalid_message"),
    ("user_message", {"message": "nul\x00byte"}, "invalid_message"),
    ("user_message", {"message": "bell\x07"}, "invalid_message"),
    ("user_message", {"message": "high \ud83d alone"}, "invalid_message"),
    ("user_message", {"message": "\udc00 low alone"}, "invalid_message"),
    ("user_message", {"message": "x" * 4001}, "message_too_long"),
    ("user_message", {"message": "y" * 60000}, "message_too_long"),
    ("user_message", {"message": "hi", "conversation_id": 7}, "invalid_message"),
    ("user_message", {"message": "hi", "conversation_id": {"$ne": None}}, "invalid_message"),
    ("user_message", {"message": "hi", "conversation_id": "' OR 1=1 --"}, "not_found"),
    ("user_message", {"message": "hi", "conversation_id": "0" * 32}, "not_found"),
    ("user_message", {"message": "hi", "client_id": ["c1"]}, "invalid_message"),
    ("user_message", {"message": "hi", "client_id": "c" * 101}, "invalid_message"),
    ("user_message", {"message": "hi", "client_id": "semi;colon"}, "invalid_message"),
    ("user_message", {"message": "hi", "session_id": "0" * 32}, "session_not_found"),
    ("user_message", {"message": "hi", "session_id": 5}, "session_not_found"),
    ("resume", {"reply_id": 2**70, "after_seq": -1}, "invalid_message"),
    ("resume", {"reply_id": 1.5}, "invalid_message"),
    ("resume", {"reply_id": 1, "after_seq": 2**40}, "invalid_message"),
    ("resume", {"reply_id": 10**9}, "not_found"),
    ("stop", {"reply_id": b"1"}, "invalid_message"),
    ("stop", ({"reply_id": 1}, "extra"), "invalid_message"),
    ("rename_conversation", {"conversation_id": OWN_CONVERSATION, "title": "nul\x00title"}, "invalid_message"),
    ("rename_conversation", {"conversation_id": OWN_CONVERSATION, "title": "\ud800"}, "invalid_message"),
    ("rename_conversation", {"conversation_id": OWN_CONVERSATION, "title": ["list"]}, "invalid_message"),
    ("open_conversation", {"conversation_id": ["a" * 32]}, "invalid_message"),
    ("delete_conversation", {"conversation_id": None}, "invalid_message"),
    ("regenerate", {"conversation_id": {"x": 1}}, "invalid_message"),
    ("new_conversation", 5, "invalid_message"),
    ("list_conversations", b"binary", "invalid_message"),
    ("edit_message", {"message_id": 10**9, "message": "hi"}, "not_found"),
    ("edit_message", {"message_id": "1", "message": "hi"}, "invalid_message"),
    ("edit_message", {"message_id": 1, "message": "nul\x00byte"}, "invalid_message"),
    ("edit_message", {"message_id": 1, "message": "x" * 4001}, "message_too_long"),
    ("switch_branch", {"message_id": 2**70}, "invalid_message"),
    ("switch_branch", {"message_id": 10**9}, "not_found"),
    ("search", {"query": "x" * 10240}, "invalid_message"),
    ("search", {"query": "\ud800"}, "invalid_message"),
    ("search", {"query": ["NEAR(a b)"]}, "invalid_message"),
    ("search", {"query": "ok", "limit": 10**9}, "invalid_message"),
]


@pytest.mark.parametrize(("event", "payload", "code"), BAD_PAYLOADS,
                         ids=[f"{event}-{index}" for index, (event, _, _) in enumerate(BAD_PAYLOADS)])
def test_payload_malformed_is_refused_and_session_stays_usable(main, event, payload, code):
    client = main.client()
    session = client.wait("session_id")
    conversation_id = client.wait("history")["conversation_id"]
    if isinstance(payload, dict) and payload.get("conversation_id") == OWN_CONVERSATION:
        payload = {**payload, "conversation_id": conversation_id}
    requests_before = len(main.fake.requests)
    if payload is NO_ARGUMENTS:
        ack = client.sio.call(event, timeout=10)
    else:
        ack = client.sio.call(event, payload, timeout=10)
    assert_refusal(ack, code)
    assert client.wait("error")["code"] == code
    assert_no_leak(client.events, main.fake)
    assert len(main.fake.requests) == requests_before
    assert messages_of(main.store, session["session_id"]) == []
    assert [c["title"] for c in client.call("list_conversations")["conversations"]] == ["New chat"]
    # The socket and the session stay usable.
    good = client.call("user_message", {"message": "still here"})
    assert good["ok"] is True
    assert client.final(good["reply_id"])["message"] == main.fake.last_text
    assert [m["content"] for m in messages_of(main.store, session["session_id"])][0] == "still here"


def test_payload_unknown_fields_are_ignored(main):
    client = main.client()
    ack = client.call("user_message", {"message": "plain", "extra": {"deep": [1, None]}, "__proto__": {"x": 1},
                                       "role": "system", "status": "complete"})
    assert ack["ok"] is True
    client.final(ack["reply_id"])
    sent = main.fake.requests[-1]["messages"]
    assert sent[-1] == {"role": "user", "content": "plain"}


def test_payload_reserved_event_names_from_a_client_change_nothing(main):
    """A client emitting `connect`/`disconnect` as plain events neither swaps its session nor detaches."""
    client = main.client()
    session = client.wait("session_id")
    sockets = metric(main.url, "chatbot_connected_sockets")
    client.call("connect", {"token": None})
    client.call("disconnect", "client namespace disconnect")
    assert len(client.of("session_id")) == 1
    assert metric(main.url, "chatbot_connected_sockets") == sockets
    ack = client.call("user_message", {"message": "same session"})
    assert ack["ok"] is True
    client.final(ack["reply_id"])
    assert messages_of(main.store, session["session_id"])[0]["content"] == "same session"


# A protocol-level mess no real client sends: the connection is dropped, with one log line and no traceback.
MALFORMED_PACKETS = [
    '42["user_message"',  # truncated JSON
    "42{}",  # event data not a list
    "42[]",  # no event name
    '42[["user_message"]]',  # event name not a string
    "421",  # data a number
    "4",  # empty Socket.IO packet
    "49",  # unknown packet type
    '451000000-["user_message",{"message":{"_placeholder":true,"num":0}}]',  # a million attachments announced
    '459-["user_message",{"message":{"_placeholder":true,"num":0}}]',  # one over the attachment cap
]


@pytest.mark.parametrize("frame", MALFORMED_PACKETS)
def test_payload_malformed_packet_drops_only_that_connection(main, frame):
    def refusals() -> list[str]:
        """The server's log lines about refused packets."""
        return [line for line in main.server.log().splitlines() if "event=packet" in line]

    bystander = main.client()
    logged = len(refusals())
    ws, session = raw_socket(main.url)
    try:
        ws.send(frame)
        assert not any(f.startswith("43") for f in read_until_closed(ws))
    finally:
        ws.close()
    assert messages_of(main.store, session["session_id"]) == []
    ack = bystander.call("user_message", {"message": "unaffected"})
    assert bystander.final(ack["reply_id"])["message"] == main.fake.last_text
    assert len(refusals()) == logged + 1 and "Traceback" not in main.server.log()


KNOWN_KEYS = {"message", "conversation_id", "client_id", "session_id", "reply_id", "extra"}
text_values = st.text(st.characters(codec=None, categories=["L", "N", "P", "Zs", "Cc", "Cs", "So"]), max_size=40)
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
           | text_values | st.binary(max_size=16)
           | st.sampled_from(["", " \n", "\x00", "\ud800", "x" * 4001, "0" * 32, "c-1"]))
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
payloads = json_like | st.fixed_dictionaries({}, optional={key: json_like for key in KNOWN_KEYS}) | st.builds(
    lambda text, extra: {"message": text, **extra}, text_values,
    st.fixed_dictionaries({}, optional={"client_id": json_like, "conversation_id": json_like}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads)
def test_payload_fuzzed_user_message_acks_are_well_formed(app, socket_client, payload):
    chat = app.extensions["chatbot"].chat
    client = socket_client()
    try:
        ack = client.emit("user_message", payload, callback=True)
        if isinstance(ack, dict) and ack.get("ok") is True:
            assert {"ok", "message_id", "reply_id", "conversation_id"} <= set(ack)
            assert set(ack) <= {"ok", "message_id", "reply_id", "conversation_id", "duplicate"}
        else:
            assert isinstance(ack, dict) and set(ack) == {"ok", "error"} and ack["ok"] is False, ack
            assert ack["error"]["code"] in MESSAGES and isinstance(ack["error"]["message"], str)
            assert set(ack["error"]) <= {"code", "message", "retry_after"}
        listing = client.emit("list_conversations", {}, callback=True)
        assert listing["ok"] is True and client.is_connected()
        # Each example starts with no reply in flight, so none is refused as busy by the one before.
        wait_until(lambda: chat.replies.in_flight() == 0, what="reply finished")
    finally:
        client.disconnect()


# ---- frame size ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_frame_over_limit_is_refused_while_reading_and_server_keeps_serving(live_server, fake_groq, async_mode):
    server = live_server(async_mode)
    store = Store(server.env["DATABASE_URL"])
    try:
        # An honest 1 MB Socket.IO frame: dropped, never handled.
        ws, session = raw_socket(server.url)
        send_until_cut(ws, "420" + json.dumps(["user_message", {"message": "x" * 1_000_000}]))
        assert not any(frame.startswith("430") for frame in read_until_closed(ws))
        ws.close()
        # A frame announcing 64 MiB: the server hangs up long before it has read (or buffered) all of it.
        ws, _ = raw_socket(server.url)
        announced = 64 << 20
        assert send_announced_frame(ws, announced) < announced
        ws.close()
        assert messages_of(store, session["session_id"]) == []
        assert fake_groq.requests == []
        client = LiveClient(server.url)
        ack = client.call("user_message", {"message": "small is fine"})
        assert client.final(ack["reply_id"])["message"] == fake_groq.last_text
        client.close()
    finally:
        store.close()


def test_frame_over_limit_is_refused_over_polling(main):
    http = requests.Session()
    opened = http.get(main.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    poll = f"{main.url}/socket.io/?EIO=4&transport=polling&sid={json.loads(opened.text[1:])['sid']}"
    assert http.post(poll, data="40", timeout=5).text == "OK"
    packets: list[str] = []
    while not any(packet.startswith('42["session_id"') for packet in packets):
        packets += http.get(poll, timeout=5).text.split("\x1e")
    owner_id = next(json.loads(p[2:])[1] for p in packets if p.startswith('42["session_id"'))["session_id"]
    refused = http.post(poll, data="42" + json.dumps(["user_message", {"message": "x" * 1_000_000}]), timeout=10)
    assert refused.status_code == 413
    assert_no_leak(refused.text, main.fake)
    # Announcing a huge body is answered at once, not after reading it (nor left hanging if it never comes).
    with socket.create_connection(("127.0.0.1", main.server.port), timeout=10) as raw:
        raw.sendall(f"POST {poll[len(main.url):]} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Length: {100 << 20}\r\n\r\n".encode())
        assert raw.recv(64).startswith(b"HTTP/1.1 413 ")
    assert messages_of(main.store, owner_id) == []
    # The session itself was not harmed, and others are served.
    assert http.post(poll, data="42" + json.dumps(["list_conversations"]), timeout=5).text == "OK"
    client = main.client()
    assert client.call("list_conversations")["ok"] is True


# ---- rate limits --------------------------------------------------------------------------------------------


def test_ratelimit_message_flood_is_refused_per_session_and_ip_without_calling_groq(live_server, fake_groq):
    server = live_server("eventlet", RATE_LIMIT_MESSAGES="5/minute", RATE_LIMIT_MESSAGES_PER_IP="8/minute")
    store = Store(server.env["DATABASE_URL"])
    first, second = LiveClient(server.url), LiveClient(server.url)
    try:
        owner = first.wait("session_id")["session_id"]
        for index in range(5):
            ack = first.call("user_message", {"message": f"flood {index}"})
            first.final(ack["reply_id"])
        error = assert_refusal(first.call("user_message", {"message": "one too many"}), "rate_limited")
        assert 0 < error["retry_after"] <= 60 and "Try again in" in error["message"]
        assert first.wait("error", lambda e: e["code"] == "rate_limited")["retry_after"] == error["retry_after"]
        # Regenerating is one more upstream request: the same budget.
        assert_refusal(first.call("regenerate", {}), "rate_limited")
        assert len(fake_groq.requests) == 5

        other = second.wait("session_id")["session_id"]
        for index in range(3):
            second.final(second.call("user_message", {"message": f"second {index}"})["reply_id"])
        assert_refusal(second.call("user_message", {"message": "same address"}), "rate_limited")
        assert len(fake_groq.requests) == 8
        assert_no_leak(first.events + second.events, fake_groq)

        assert [m["content"] for m in messages_of(store, owner) if m["role"] == "user"] == [
            f"flood {index}" for index in range(5)]
        assert [m["status"] for m in messages_of(store, owner)] == ["complete"] * 10
        assert len(messages_of(store, other)) == 6
        # Still serving: a newcomer connects and reads its (empty) conversation.
        newcomer = LiveClient(server.url)
        assert newcomer.wait("history")["messages"] == []
        newcomer.close()
    finally:
        first.close()
        second.close()
        store.close()


def test_ratelimit_connection_flood_and_full_server_are_refused_with_a_retry_time(live_server, fake_groq):
    server = live_server("eventlet", RATE_LIMIT_CONNECTIONS="5/minute", MAX_CONNECTIONS="3")
    held = [LiveClient(server.url) for _ in range(3)]
    for client in held:
        client.wait("session_id")
    full = refused_connect(server.url)
    assert full["data"]["code"] == "rate_limited" and full["data"]["retry_after"] == 60
    assert full["message"] == full["data"]["message"] and "full" in full["message"]
    # A `disconnect` sent as an event does not free a slot.
    held[0].call("disconnect", "io client disconnect")
    assert metric(server.url, "chatbot_connected_sockets") == 3
    assert refused_connect(server.url)["data"]["code"] == "rate_limited"
    for client in held:
        client.close()
    wait_until(lambda: metric(server.url, "chatbot_connected_sockets") == 0, what="sockets released")

    again = [LiveClient(server.url) for _ in range(2)]  # the 4th and 5th this minute (refusals do not count)
    limited = refused_connect(server.url)
    assert limited["data"]["code"] == "rate_limited" and "Too many connections" in limited["message"]
    assert 0 < limited["data"]["retry_after"] <= 60
    assert_no_leak(limited, fake_groq)
    # The connected clients are served as before.
    ack = again[0].call("user_message", {"message": "still served"})
    assert again[0].final(ack["reply_id"])["message"] == fake_groq.last_text
    assert len(fake_groq.requests) == 1
    for client in again:
        client.close()


def test_ratelimit_concurrent_replies_per_session_are_capped(main):
    client = main.client()
    session = client.wait("session_id")
    main.fake.script(tokens=30, hold_after=3)
    first = client.call("user_message", {"message": "first"})
    main.fake.wait_streamed(3)
    watcher = main.client(session["token"])  # stays on the first conversation to see its reply end
    second_conversation = client.call("new_conversation")["conversation"]["id"]
    requests_before = len(main.fake.requests)
    error = assert_refusal(client.call("user_message", {"message": "at the same time"}), "rate_limited")
    assert error["retry_after"] > 0
    tab = main.client(session["token"])  # another tab of the same session shares the cap
    assert_refusal(tab.call("user_message", {"message": "from the other tab"}), "rate_limited")
    assert len(main.fake.requests) == requests_before
    main.fake.release()
    assert watcher.final(first["reply_id"])["finish_reason"] == "stop"
    ack = client.call("user_message", {"message": "now it fits"})
    assert ack["ok"] is True and ack["conversation_id"] == second_conversation
    client.final(ack["reply_id"])
    texts = [m["content"] for m in storekit.messages_of(main.store, session["session_id"], second_conversation)]
    assert texts == ["now it fits", main.fake.last_text]


# ---- upstream faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "code", "attempts", "partial", "variable"),
    [
        pytest.param({"status": 401}, "upstream_auth", 1, "", "GROQ_API_KEY", id="bad-key"),
        pytest.param({"model_not_found": True}, "model_unavailable", 1, "", "GROQ_MODEL", id="unknown-model"),
        pytest.param({"model_decommissioned": True}, "model_unavailable", 1, "", "GROQ_MODEL", id="retired-model"),
        pytest.param({"status": 429, "retry_after": 30}, "upstream_rate_limited", 1, "", None, id="429-too-long"),
        pytest.param({"status": 500, "repeat": 3}, "upstream_unavailable", 3, "", None, id="500"),
        pytest.param({"status": 503, "repeat": 3}, "upstream_unavailable", 3, "", None, id="503"),
        pytest.param({"first_byte_delay": 3, "repeat": 3}, "upstream_unavailable", 3, "", None, id="slow-first-byte"),
        pytest.param({"tokens": 20, "cut_after": 4}, "upstream_unavailable", 1, "tok0 tok1 tok2 tok3 ", None,
                     id="cut-mid-stream"),
        pytest.param({"tokens": 20, "error_after": 3}, "upstream_unavailable", 1, "tok0 tok1 tok2 ", None,
                     id="error-event-mid-stream"),
    ],
)
def test_upstream_fault_is_one_clear_error_and_the_next_message_works(main, script, code, attempts, partial,
                                                                     variable):
    client = main.client()
    session = client.wait("session_id")
    main.fake.script(**script)
    requests_before = len(main.fake.requests)
    ack = client.call("user_message", {"message": "hello upstream"})
    assert ack["ok"] is True
    error = client.wait("error", lambda e: e.get("reply_id") == ack["reply_id"])
    assert error["code"] == code and error["message"].endswith(".") and "\n" not in error["message"]
    final = client.final(ack["reply_id"])
    assert final["finish_reason"] == "error" and final["message"] == partial
    assert client.text_of(ack["reply_id"]) == partial
    # Our bounded retries only, never stacked on the SDK's own; a long retry-after is not waited out.
    assert len(main.fake.requests) - requests_before == attempts
    retries = [s for s in client.of("bot_status") if s["reply_id"] == ack["reply_id"]]
    assert len(retries) == attempts - 1
    assert all(s["status"] == "retrying" and 0 < s["retry_in"] <= 2 for s in retries)
    if code == "upstream_rate_limited":
        assert error["retry_after"] == 30
    assert_no_leak(client.events, main.fake)
    stored = messages_of(main.store, session["session_id"])
    assert [(m["role"], m["status"]) for m in stored] == [("user", "complete"), ("assistant", "error")]
    assert stored[1]["content"] == partial and stored[1]["error_code"] == code
    log = main.server.log()
    assert main.fake.api_key not in log
    if variable:
        line = next(line for line in log.splitlines() if f"reply={ack['reply_id']} upstream code={code}" in line)
        assert variable in line
    # The next message works.
    main.fake.script(text="Recovered.")
    again = client.call("user_message", {"message": "again"})
    assert client.final(again["reply_id"])["message"] == "Recovered."


def test_upstream_429_with_short_retry_after_is_retried_with_a_status_then_succeeds(main):
    client = main.client()
    session = client.wait("session_id")
    main.fake.script(status=429, retry_after=1)
    main.fake.script(text="Worth the wait.")
    requests_before = len(main.fake.requests)
    ack = client.call("user_message", {"message": "busy upstream?"})
    status = client.wait("bot_status", lambda s: s["reply_id"] == ack["reply_id"])
    assert status == {"reply_id": ack["reply_id"], "status": "retrying", "retry_in": 1.0}
    final = client.final(ack["reply_id"])
    assert final["message"] == "Worth the wait." and final["finish_reason"] == "stop"
    assert len(main.fake.requests) - requests_before == 2
    names = [name for name, data in client.events if isinstance(data, dict) and data.get("reply_id") == ack["reply_id"]]
    assert names.index("bot_status") < names.index("bot_delta")
    assert not [e for e in client.of("error") if e.get("reply_id") == ack["reply_id"]]
    assert [m["status"] for m in messages_of(main.store, session["session_id"])] == ["complete", "complete"]


# ---- slow and dead clients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_slow_client_that_stops_reading_is_dropped_and_its_reply_is_stored(live_server, fake_groq, async_mode):
    server = live_server(async_mode, PING_INTERVAL="1", PING_TIMEOUT="1")
    store = Store(server.env["DATABASE_URL"])
    fake_groq.script(tokens=60, hold_after=20)
    ws, session = raw_socket(server.url, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    try:
        ws.send('420["user_message",{"message":"a long answer, please"}]')
        fake_groq.wait_streamed(20, timeout=15)
        # From here on the client reads nothing and answers no ping: the server gives up on it.
        wait_until(lambda: metric(server.url, "chatbot_connected_sockets") == 0, what="dead socket dropped")
        assert metric(server.url, "chatbot_replies_in_flight") == 1
        fake_groq.release()

        def reply():
            """The stored reply once it is no longer streaming."""
            stored = messages_of(store, session["session_id"])
            return stored[-1] if len(stored) == 2 and stored[-1]["status"] != "streaming" else None

        stored = wait_until(reply, what="reply stored")
        assert stored["status"] == "complete" and stored["content"] == fake_groq.last_text
        assert fake_groq.last_text == "".join(f"tok{i} " for i in range(60))
        wait_until(lambda: metric(server.url, "chatbot_replies_in_flight") == 0, what="reply finished")
        client = LiveClient(server.url)
        ack = client.call("user_message", {"message": "I am reading"})
        assert client.final(ack["reply_id"])["message"] == fake_groq.last_text
        client.close()
    finally:
        ws.close()
        store.close()


# ---- HTTP hardening -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/healthz", "/no-such-page"])
def test_http_security_headers_on_every_response(main, path):
    response = requests.get(main.url + path, headers={"X-Forwarded-Proto": "https"}, timeout=5)
    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # Without TRUST_PROXY a client's X-Forwarded-Proto counts for nothing.
    assert "Strict-Transport-Security" not in response.headers
    if path == "/":
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        scripts = re.findall(r"<script\b[^>]*>", response.text)
        assert scripts and all(" src=" in tag for tag in scripts)  # no inline script for the CSP to allow
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", response.text)  # nor inline event handlers


def test_http_trust_proxy_counts_forwarded_proto_and_only_the_proxys_forwarded_for(live_server, fake_groq):
    server = live_server("eventlet", TRUST_PROXY="true", RATE_LIMIT_MESSAGES_PER_IP="2/minute")
    secure = requests.get(server.url + "/", headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert "Secure" in secure.headers["Set-Cookie"] and "HttpOnly" in secure.headers["Set-Cookie"]
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" not in requests.get(server.url + "/", timeout=5).headers["Set-Cookie"]
    # Behind a TLS proxy the page's own origin is https://host: its handshake is same-origin.
    own = f"https://127.0.0.1:{server.port}"
    ws = websocket.create_connection(ws_url(server.url), timeout=10, origin=own, header=["X-Forwarded-Proto: https"])
    assert ws.recv().startswith("0{")
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(ws_url(server.url), timeout=10, origin="https://evil.test",
                                    header=["X-Forwarded-Proto: https"])
    # The client writes the first X-Forwarded-For entries, the proxy appends the last: only that one counts.
    clients = [LiveClient(server.url, headers={"X-Forwarded-For": f"198.51.100.{n}, 192.0.2.10"}) for n in (1, 2, 3)]
    try:
        for client in clients[:2]:
            ack = client.call("user_message", {"message": "hello via proxy"})
            client.final(ack["reply_id"])
        assert_refusal(clients[2].call("user_message", {"message": "spoofed address"}), "rate_limited")
        assert len(fake_groq.requests) == 2
    finally:
        for client in clients:
            client.close()


# ---- logs ---------------------------------------------------------------------------------------------------

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=[A-Z]+ logger=chatbot[.\w]* \S")


def test_logs_are_one_line_per_event_with_ids_and_no_content(main):
    canary = f"canary-{uuid.uuid4().hex}"
    client = main.client()
    session = client.wait("session_id")
    ack = client.call("user_message", {"message": f"my secret is {canary}"})
    client.final(ack["reply_id"])
    main.fake.script(status=401)
    failed = client.call("user_message", {"message": f"again {canary}"})
    client.final(failed["reply_id"])
    ws, _ = raw_socket(main.url)
    ws.send('42["user_message"')  # a malformed packet: logged as one line, no traceback
    read_until_closed(ws)
    ws.close()
    log = main.server.log()
    assert canary not in log and session["token"] not in log and main.fake.api_key not in log
    assert main.fake.last_text not in log
    assert_structured(log)
    lines = log.splitlines()
    accepted = next(line for line in lines if f"reply={ack['reply_id']} chars=" in line)
    assert "event=user_message sid=" in accepted and f"conversation={ack['conversation_id']}" in accepted
    finished = next(line for line in lines if f"reply={ack['reply_id']} conversation=" in line)
    assert "status=complete" in finished
    assert any(f"reply={failed['reply_id']} upstream code=upstream_auth" in line for line in lines)


def test_logs_carry_content_only_when_log_content_is_on(make_app, received):
    from chatbot import socketio as server_socketio

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("chatbot")
    level = logger.level
    logger.addHandler(handler)
    try:
        for log_content, expected in (("false", False), ("true", True)):
            app = make_app(LOG_CONTENT=log_content, LOG_LEVEL="info")
            client = server_socketio.test_client(app)
            events = received(client)
            events.wait("session_id")
            canary = f"canary-{uuid.uuid4().hex}"
            ack = client.emit("user_message", {"message": canary}, callback=True)
            events.wait("bot_message", lambda d, reply=ack["reply_id"]: d.get("reply_id") == reply)
            client.disconnect()
            assert any(f"reply={ack['reply_id']}" in line for line in records)
            assert any(canary in line for line in records) is expected
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_hardening_half_sent_request_is_dropped_after_a_ping_round(live_server):
    """A slowloris connection (headers never finished) must not hold one of eventlet's connection slots for good."""
    server = live_server("eventlet", PING_INTERVAL="1", PING_TIMEOUT="1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert raw.recv(1024) == b""  # the server closed it (a recv timeout would raise instead)
    assert requests.get(server.url + "/healthz", timeout=5).ok
