"""The real server process (`python app.py`, eventlet and gevent) with a real Socket.IO client over websocket."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from chatbot.store import Store
from tests.conftest import ROOT, SECRET, LiveServer, free_port, wait_until
from tests.live_client import LiveClient

pytestmark = pytest.mark.server


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_streams_reply_over_websocket(live_server, fake_groq, async_mode):
    server = live_server(async_mode, SYSTEM_PROMPT="You are the live test bot.")
    client = LiveClient(server.url)
    try:
        client.wait("session_id")
        fake_groq.script(text="Earlier answer.")
        first = client.call("user_message", {"message": "earlier question"})
        client.final(first["reply_id"])
        fake_groq.script(tokens=60, delay=0.004)
        ack = client.call("user_message", {"message": "stream to me"})
        assert ack["ok"] is True
        final = client.final(ack["reply_id"])
        start = client.wait("bot_start", lambda d: d["reply_id"] == ack["reply_id"])
        assert start["conversation_id"] == ack["conversation_id"]
        deltas = [d for d in client.of("bot_delta") if d["reply_id"] == ack["reply_id"]]
        assert len(deltas) >= 2
        assert [d["seq"] for d in deltas] == list(range(len(deltas)))
        assert "".join(d["text"] for d in deltas) == final["message"] == fake_groq.last_text
        # Order on the wire: bot_start, then the deltas, then the final message.
        names = [name for name, data in client.events
                 if isinstance(data, dict) and data.get("reply_id") == ack["reply_id"]]
        assert names[0] == "bot_start" and names[-1] == "bot_message"
        sent = fake_groq.requests[-1]["messages"]
        assert sent[0] == {"role": "system", "content": "You are the live test bot."}
        assert sent[1:] == [{"role": "user", "content": "earlier question"},
                            {"role": "assistant", "content": "Earlier answer."},
                            {"role": "user", "content": "stream to me"}]
    finally:
        client.close()


def test_server_demo_mode_streams_marked_reply(live_server):
    server = live_server("eventlet", LLM_PROVIDER="demo", GROQ_API_KEY="", DEMO_TOKEN_DELAY="0.001")
    client = LiveClient(server.url)
    try:
        assert client.wait("session_id")["demo"] is True
        ack = client.call("user_message", {"message": "hello"})
        final = client.final(ack["reply_id"])
        assert len([d for d in client.of("bot_delta") if d["reply_id"] == ack["reply_id"]]) >= 2
        assert client.text_of(ack["reply_id"]) == final["message"]
        assert "demo" in final["message"].lower()
        page = requests.get(server.url + "/", timeout=5)
        assert "demo" in page.text.lower()
    finally:
        client.close()


def test_server_serves_page_with_security_headers(live_server):
    server = live_server("eventlet")
    page = requests.get(server.url + "/", timeout=5)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
    assert "chatbot_connected_sockets" in requests.get(server.url + "/metrics", timeout=5).text


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PORT", "seventy", "PORT is invalid"),
        ("ASYNC_MODE", "tornado", "ASYNC_MODE is invalid"),
        ("MAX_MESSAGE_CHARS", "-3", "MAX_MESSAGE_CHARS is invalid"),
        ("ALLOWED_ORIGINS", "ftp://x", "ALLOWED_ORIGINS is invalid"),
    ],
)
def test_server_refuses_invalid_configuration_with_one_line(tmp_path, name, value, fragment):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), name: value,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_server_refuses_a_sql_ascii_postgres_database_with_one_line(tmp_path, sql_ascii_database_url):
    """A database made under the C locale (SQL_ASCII) used to crash start-up with a TypeError from the driver."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATABASE_URL": sql_ascii_database_url,
           "LLM_PROVIDER": "demo"}
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "configuration error: DATABASE_URL:" in lines[0] and "SQL_ASCII encoding; ChatbotWS needs UTF8" in lines[0]


def test_server_production_requires_secret_key(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CHATBOT_ENV": "production",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "ASYNC_MODE": "threading"}
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "SECRET_KEY must be set in production" in result.stderr


def test_server_production_requires_an_auth_mode_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CHATBOT_ENV": "production", "SECRET_KEY": "s" * 40,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "ASYNC_MODE": "threading"}
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "AUTH_MODE must be set in production" in lines[0]


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_stop_closes_upstream_mid_stream(live_server, fake_groq, async_mode):
    server = live_server(async_mode)
    client = LiveClient(server.url)
    try:
        client.wait("session_id")
        fake_groq.script(tokens=200, hold_after=5)
        ack = client.call("user_message", {"message": "stop me"})
        fake_groq.wait_streamed(5)
        expected = "".join(f"tok{i} " for i in range(5))
        client.wait("bot_delta", lambda d: client.text_of(ack["reply_id"]) == expected)
        assert client.call("stop", {"reply_id": ack["reply_id"]}) == {"ok": True, "stopped": True}
        final = client.final(ack["reply_id"])
        fake_groq.wait_disconnected(1)
        assert final["finish_reason"] == "stopped"
        assert final["message"] == expected == client.text_of(ack["reply_id"])
        fake_groq.release()
        fake_groq.script(text="Free again.")
        again = client.call("user_message", {"message": "next"})
        assert client.final(again["reply_id"])["message"] == "Free again."
    finally:
        client.close()


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_holds_connections_made_while_it_starts(tmp_path, async_mode):
    """The listening socket opens before start-up: a client (re)connecting then waits and is served, not refused
    (after a restart, refused clients back off for seconds). Start-up is held in its migration by our write lock."""
    database = tmp_path / "chatbot.db"
    Store(f"sqlite:///{database}").migrate()
    lock = sqlite3.connect(database, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the server's migrate() waits for this (busy timeout 5 s)
    port = free_port()
    server = LiveServer({"HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": async_mode, "LLM_PROVIDER": "demo",
                         "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": SECRET, "REDIS_URL": "",
                         "PYTHONUNBUFFERED": "1"}, tmp_path / "server.log").spawn()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.process.poll() is None, server.log()
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.02)
        with client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert "serving on" not in server.log()  # connected while start-up still waits for the lock
            lock.execute("COMMIT")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert "serving on" in server.log()
    finally:
        lock.close()
        server.stop()


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_sigterm_mid_reply_stores_its_text_so_far_and_exits_0(live_server, fake_groq, async_mode):
    """`docker stop`: a reply still streaming when the grace period ends is stored as interrupted with its text so
    far, every tab is told, and the process exits with 0."""
    server = live_server(async_mode, SHUTDOWN_SECONDS="0.2")
    client = LiveClient(server.url)
    store = Store(server.env["DATABASE_URL"])
    try:
        session = client.wait("session_id")
        fake_groq.script(tokens=200, hold_after=5)
        ack = client.call("user_message", {"message": "stream until I stop"})
        fake_groq.wait_streamed(5)
        expected = "".join(f"tok{i} " for i in range(5))
        client.wait("bot_delta", lambda d: client.text_of(ack["reply_id"]) == expected)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0, server.log()
        final = client.final(ack["reply_id"])
        assert final["finish_reason"] == "interrupted" and final["message"] == expected
        stored = store.get_message(session["session_id"], ack["reply_id"])
        assert (stored["status"], stored["content"]) == ("interrupted", expected)
        assert "Traceback" not in server.log()
    finally:
        fake_groq.release()
        client.close()
        store.close()


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_sigterm_lets_a_reply_finish_and_refuses_new_work(live_server, fake_groq, async_mode):
    """Within SHUTDOWN_SECONDS a streaming reply finishes whole; meanwhile no new connection or turn is taken."""
    server = live_server(async_mode, SHUTDOWN_SECONDS="60")
    client = LiveClient(server.url)
    store = Store(server.env["DATABASE_URL"])
    try:
        session = client.wait("session_id")
        fake_groq.script(tokens=20, hold_after=5)
        ack = client.call("user_message", {"message": "finish me"})
        fake_groq.wait_streamed(5)
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "SIGTERM: shutting down" in server.log(), what="the shutdown to begin")
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/healthz", timeout=10)
        refused = client.call("user_message", {"message": "one more", "conversation_id": ack["conversation_id"]})
        assert refused["ok"] is False and refused["error"]["code"] in ("busy", "rate_limited")
        fake_groq.release()
        final = client.final(ack["reply_id"])
        assert server.process.wait(30) == 0, server.log()
        assert final["finish_reason"] == "stop" and final["message"] == fake_groq.last_text
        stored = store.get_message(session["session_id"], ack["reply_id"])
        assert (stored["status"], stored["content"]) == ("complete", fake_groq.last_text)
    finally:
        fake_groq.release()
        client.close()
        store.close()
