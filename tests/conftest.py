"""Shared fixtures: the app (threading mode) with its Socket.IO test client, and the real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from fakes.groq import FakeGroq
from fakes.mcp_orders import OrdersServer

ROOT = Path(__file__).resolve().parent.parent


def pytest_terminal_summary(terminalreporter):
    """Say once per reason why tests were skipped (e.g. no TEST_DATABASE_URL), instead of once per test."""
    reasons = Counter(report.longrepr[2].removeprefix("Skipped: ")
                      for report in terminalreporter.stats.get("skipped", []) if isinstance(report.longrepr, tuple))
    if reasons:
        terminalreporter.section("skipped tests, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:5d}  {reason}")
SECRET = "test-secret-key-not-for-production-0123456789"


@pytest.fixture
def fake_groq():
    """A started FakeGroq for one test, closed afterwards."""
    with FakeGroq() as fake:
        yield fake


@pytest.fixture(scope="module")
def mcp_orders(tmp_path_factory):
    """The orders MCP server (fakes/mcp_orders.py, with its hanging and crashing tools) for one test module."""
    server = OrdersServer(tmp_path_factory.mktemp("mcp") / "calls.jsonl").start()
    yield server
    server.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, and (when TEST_DATABASE_URL is set) a Postgres schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chatbot.db'}"
        return
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    from chatbot.store import isolated_database

    with isolated_database(url) as isolated:
        yield isolated


# ---- the store, called directly (store test modules) ----


@pytest.fixture
def make_store(database_url):
    """Open more Stores on the same database (closed at the end), unmigrated."""
    from chatbot.store import Store

    opened = []

    def make():
        """Open a Store on the test database."""
        opened.append(Store(database_url))
        return opened[-1]

    yield make
    for each in opened:
        each.close()


@pytest.fixture
def store(make_store):
    """A migrated Store on an empty database."""
    store = make_store()
    store.migrate()
    return store


@pytest.fixture
def owner(store):
    """An anonymous owner (with the one empty conversation a first visit makes)."""
    return store.create_session()[0]


@pytest.fixture
def conversation(store, owner):
    """Another of the owner's conversations."""
    return store.create_conversation(owner)


@pytest.fixture
def count_statements(store):
    """Count the SQL statements (other than transaction control) the store sends, by kind."""
    counts = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        """Tally one statement by its first word."""
        kind = statement.split(None, 1)[0].upper()
        if kind not in ("BEGIN", "COMMIT", "ROLLBACK"):
            counts[kind] = counts.get(kind, 0) + 1

    sa.event.listen(store.engine, "before_cursor_execute", before)
    yield counts
    sa.event.remove(store.engine, "before_cursor_execute", before)


@pytest.fixture
def sql_ascii_database_url():
    """A fresh Postgres database made as `initdb` under the C locale makes them (SQL_ASCII), dropped afterwards."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    import uuid

    from sqlalchemy.pool import NullPool

    from chatbot.store import normalize_url

    parsed = sa.engine.make_url(normalize_url(url))
    name = f"test_ascii_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(parsed, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
                             "TEMPLATE template0")
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def local_model():
    """Skip a test that needs the local model's runtime when it is not installed; under CI=true, fail instead."""
    from chatbot.providers.local import runtime_problem

    problem = runtime_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the local model for real, but {problem}")
        pytest.skip(f"local model not installed ({problem})")


# Every rate limit far above what a test sends; a test about a limit sets that one lower.
NO_LIMITS = {name: "1000/minute" for name in (
    "RATE_LIMIT_MESSAGES", "RATE_LIMIT_MESSAGES_PER_IP", "RATE_LIMIT_CONNECTIONS", "RATE_LIMIT_ACTIONS",
    "RATE_LIMIT_SEARCH", "RATE_LIMIT_SIGNIN", "RATE_LIMIT_SIGNIN_PER_IP")}


def settings_for(database_url: str, fake: FakeGroq | None, **overrides) -> dict[str, str]:
    """The settings every test app and server starts from: this database, the fake Groq (None: the demo provider),
    the test secret, no Redis, no rate limit in the way; then `overrides`, as strings."""
    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "LLM_PROVIDER": "groq" if fake else "demo",
        "GROQ_API_KEY": fake.api_key if fake else "",
        "GROQ_BASE_URL": fake.base_url if fake else "",
        "REDIS_URL": "",
        **NO_LIMITS,
        "DEMO_TOKEN_DELAY": "0",
    }
    settings.update({key: str(value) for key, value in overrides.items()})
    return settings


def server_settings(database_url: str, fake: FakeGroq | None, **overrides) -> dict[str, str]:
    """A real server process's environment: `settings_for` on loopback, a free port, eventlet unless overridden,
    info logs, unbuffered output."""
    server = {"HOST": "127.0.0.1", "PORT": free_port(), "ASYNC_MODE": "eventlet", "LOG_LEVEL": "info",
              "PYTHONUNBUFFERED": "1"}
    return settings_for(database_url, fake, **{**server, **overrides})


@pytest.fixture
def make_app(tmp_path, database_url, fake_groq, monkeypatch):  # noqa: F811
    """Factory: an app against the fake Groq (pass overrides as keyword settings)."""
    from chatbot import create_app

    for name in ("GROQ_API_KEY", "LLM_PROVIDER", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # keep python-dotenv from reading a developer's .env
    apps = []

    def build(**overrides):
        apps.append(create_app(settings_for(database_url, fake_groq,
                                             **{"ASYNC_MODE": "threading", "LOG_LEVEL": "warning", **overrides})))
        return apps[-1]

    yield build
    for app in apps:
        chat = app.extensions["chatbot"].chat
        # A reply a test left streaming finishes before its database goes away.
        deadline = time.monotonic() + 15
        while chat.counters["replies_started"] > chat.counters["replies_finished"] and time.monotonic() < deadline:
            time.sleep(0.01)
        while app.extensions["chatbot"].files.in_flight and time.monotonic() < deadline:  # uploads being read
            time.sleep(0.01)
        chat.store.close()


@pytest.fixture
def app(make_app):
    """The app with default test settings."""
    return make_app()


@pytest.fixture
def socket_client(app):
    """Factory: a connected Socket.IO test client (pass `auth={"token": ...}` to reuse a session)."""
    from chatbot import socketio

    clients = []

    def connect(auth=None, flask_test_client=None, **kwargs):
        client = socketio.test_client(app, auth=auth, flask_test_client=flask_test_client, **kwargs)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        if client.is_connected():
            client.disconnect()


class Received:
    """Everything a test client has received, with waiting helpers (polls the client's queue, bounded)."""

    def __init__(self, client):
        """Wrap a Flask-SocketIO test client."""
        self.client = client
        self.events: list[tuple[str, dict]] = []

    def pull(self) -> None:
        """Move newly received events into `events`."""
        for item in self.client.get_received():
            self.events.append((item["name"], item["args"][0] if item["args"] else None))

    def of(self, name: str) -> list:
        """Payloads of every event called `name` so far."""
        self.pull()
        return [data for event, data in self.events if event == name]

    def wait(self, name: str, predicate=lambda data: True, timeout: float = 10.0):
        """Wait until an event `name` whose payload satisfies `predicate` has arrived; return it."""
        deadline = time.monotonic() + timeout
        while True:
            for data in self.of(name):
                if predicate(data):
                    return data
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name!r} event matched within {timeout} s; got {self.events!r}")
            time.sleep(0.002)


@pytest.fixture
def received():
    """Wrap a test client: `received(client).wait("bot_message", ...)`."""
    return Received


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    """Poll a condition in another process (a row, a metric) until it holds, within `timeout`; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.01)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """`python app.py` as a real process on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        """Prepare (not start) the server with `env` added to the environment."""
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def spawn(self) -> LiveServer:
        """Start the process without waiting for it."""
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child keeps it)
        self.process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def start(self) -> LiveServer:
        """Start the process and wait until it answers /healthz."""
        self.spawn().wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll until the server accepts HTTP (or fail with its log)."""
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # refused, or (the socket is open before start-up ends) not answered yet
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """Terminate politely, then forcefully."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Harness:
    """A module's shared real server: the process, its own fake Groq, a store on its database, this test's sockets."""

    def __init__(self, server: LiveServer, fake: FakeGroq, store):
        """Wrap a started server."""
        self.server, self.fake, self.store, self.url = server, fake, store, server.url
        self.clients: list = []

    def client(self, token: str | None = None, **options):
        """A connected LiveClient (closed after the test), once its session has arrived."""
        from tests.live_client import LiveClient

        client = LiveClient(self.url, token, **options)
        self.clients.append(client)
        client.wait("session_id")
        return client

    def person(self, name: str):
        """A browser (requests.Session) signed up as `name` (accounts mode)."""
        import requests

        from tests.accounts_kit import Browser

        web = Browser(requests.Session(), self.url)
        assert web.signup(name).status_code == 302
        return web

    def socket(self, web):
        """A live socket riding on a browser's cookie, once its history has arrived."""
        from tests.live_client import LiveClient

        client = LiveClient(self.url, headers={"Cookie": f"chatbot_token={web.cookie()}"})
        self.clients.append(client)
        client.wait("history")
        return client

    def reset(self) -> None:
        """Forget scripted responses, let held streams go, close this test's sockets."""
        with self.fake._lock:
            self.fake._scripts.clear()
        self.fake.release()
        for client in self.clients:
            client.close()
        self.clients.clear()


@contextmanager
def running_server(tmp: Path, name: str, **env) -> Iterator[Harness]:
    """A real server on a SQLite file of its own with its own fake Groq (`server_settings` plus `env`), for a module's
    tests; stopped afterwards."""
    from chatbot.store import Store

    with FakeGroq() as fake:
        settings = server_settings(f"sqlite:///{tmp / f'{name}.db'}", fake, **env)
        server = LiveServer(settings, tmp / f"{name}.log").start()
        store = Store(settings["DATABASE_URL"])
        try:
            yield Harness(server, fake, store)
        finally:
            store.close()
            server.stop()


@pytest.fixture
def live_server(tmp_path, database_url, fake_groq):  # noqa: F811
    """Factory: `live_server(**env)` starts the real server against the fake Groq and a fresh database."""
    servers: list[LiveServer] = []

    def start(async_mode: str = "gevent", start: bool = True, **env) -> LiveServer:
        settings = server_settings(database_url, fake_groq, ASYNC_MODE=async_mode, **env)
        server = LiveServer(settings, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server.start() if start else server

    yield start
    for server in servers:
        server.stop()
