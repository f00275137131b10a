"""The Docker image as the README runs it: no key (the local model answers), health and readiness, the container's
HEALTHCHECK, a real chat turn over Socket.IO, the unprivileged user, where it writes, `docker stop`, and two containers
sharing Postgres and Redis. Runs when TEST_DOCKER_IMAGE names a built image (`.ci/run` builds one)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import requests

from chatbot.store import Store, isolated_database
from tests.conftest import free_port
from tests.live_client import LiveClient

IMAGE = os.environ.get("TEST_DOCKER_IMAGE")
APP_UID = 10001

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not IMAGE, reason="TEST_DOCKER_IMAGE is not set (build one: docker build --network host "
                                         "-t chatbotws:ci . and export TEST_DOCKER_IMAGE=chatbotws:ci)"),
]


def docker(*args: str, timeout: float = 120) -> str:
    """Run a docker command; its stdout (a failure shows its stderr)."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout


class Container:
    """One container of the image on the host's network, on its own free port."""

    def __init__(self, env: dict[str, str] | None = None, *, volume: str | None = None):
        """Start it (not yet waiting for it): the image's defaults but the port, loopback only, quick health probes."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = f"chatbotws-test-{uuid.uuid4().hex[:10]}"
        settings = {"PORT": str(self.port), "HOST": "127.0.0.1", "GROQ_API_KEY": "", **(env or {})}
        args = ["run", "-d", "--name", self.name, "--network", "host",
                # Only the probes' schedule changes: the command is the image's own HEALTHCHECK.
                "--health-interval", "1s", "--health-start-period", "60s"]
        for key, value in settings.items():
            args += ["-e", f"{key}={value}"]
        if volume:
            args += ["-v", f"{volume}:/app/instance"]
        self.id = docker(*args, IMAGE).strip()

    def wait_ready(self, timeout: float = 120) -> None:
        """Poll /healthz until the app answers (or fail with its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.state()["Running"], self.logs()
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
        raise AssertionError(f"container not ready in {timeout} s:\n{self.logs()}")

    def inspect(self) -> dict:
        """`docker inspect` of the container."""
        return json.loads(docker("inspect", self.id))[0]

    def state(self) -> dict:
        """Its State (Running, ExitCode, Health …)."""
        return self.inspect()["State"]

    def logs(self) -> str:
        """What the app printed."""
        result = subprocess.run(["docker", "logs", self.id], capture_output=True, text=True, timeout=60)
        return result.stdout + result.stderr

    def remove(self) -> None:
        """Remove it and its anonymous volume, whatever its state."""
        subprocess.run(["docker", "rm", "-f", "-v", self.id], capture_output=True, timeout=120)


@pytest.fixture
def container():
    """Factory: `container(env)` starts a container and waits until it answers; all are removed afterwards."""
    started: list[Container] = []

    def start(env: dict[str, str] | None = None, **kwargs) -> Container:
        started.append(Container(env, **kwargs))
        started[-1].wait_ready()
        return started[-1]

    yield start
    for one in started:
        one.remove()


@pytest.fixture
def instance_dir(tmp_path):
    """A host directory for /app/instance, writable by the image's user (as the README tells operators)."""
    path = tmp_path / "instance"
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, APP_UID, APP_UID)
    else:
        path.chmod(0o777)  # a runner without root: writable by everyone, uid 10001 included
    return path


def test_image_serves_the_local_model_without_a_key(container):
    app = container()
    assert requests.get(app.url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(app.url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok"}
    assert body["provider"] == "local" and body["model"], body  # the model in the image, not the demo
    assert "offline demo" not in app.logs()


def test_image_healthcheck_follows_port_and_turns_healthy(container):
    app = container()
    probe = " ".join(app.inspect()["Config"]["Healthcheck"]["Test"])
    assert "PORT" in probe and "5000" not in probe.replace("${PORT:-5000}", ""), probe
    deadline = time.monotonic() + 90
    while (health := app.state()["Health"])["Status"] != "healthy":
        assert health["Status"] != "unhealthy", health
        assert time.monotonic() < deadline, health
        time.sleep(0.5)


def test_image_answers_a_chat_turn_over_socketio(container):
    app = container()
    client = LiveClient(app.url)
    try:
        session = client.wait("session_id")
        assert session["provider"] == "local" and session["demo"] is False
        ack = client.call("user_message", {"message": "Say hello in five words."}, timeout=60)
        assert ack["ok"] is True
        final = client.final(ack["reply_id"], timeout=120)
        assert final["message"].strip() and final["finish_reason"] in ("stop", "length")
        assert client.text_of(ack["reply_id"]) == final["message"]
    finally:
        client.close()


def test_image_runs_as_its_user_and_writes_only_to_its_instance_volume(container):
    app = container()
    client = LiveClient(app.url)
    try:
        client.wait("session_id")
        ack = client.call("user_message", {"message": "Hi"}, timeout=60)
        client.final(ack["reply_id"], timeout=120)
    finally:
        client.close()
    status = docker("exec", app.id, "cat", "/proc/1/status")
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == [str(APP_UID)] * 4, status  # real, effective, saved and filesystem uid of PID 1 (app.py)
    assert "chatbot.db" in docker("exec", app.id, "ls", "/app/instance").split()
    # /app/instance is a volume, outside the container's own layer: the layer itself must be left as built.
    assert docker("diff", app.id).split() == [], docker("diff", app.id)


def test_image_docker_stop_ends_the_reply_cleanly_and_exits_0(container, instance_dir):
    app = container({"SHUTDOWN_SECONDS": "0"}, volume=str(instance_dir))
    client = LiveClient(app.url)
    try:
        session = client.wait("session_id")
        ack = client.call("user_message", {"message": "Tell me a long story about the sea."}, timeout=60)
        client.wait("bot_delta", lambda d: d["reply_id"] == ack["reply_id"], timeout=120)
        docker("stop", "-t", "60", app.id, timeout=90)  # SIGTERM; SIGKILL (exit 137) only after 60 s
        state = app.state()
        assert (state["Running"], state["ExitCode"], state["OOMKilled"]) == (False, 0, False), app.logs()
        final = client.final(ack["reply_id"], timeout=30)
    finally:
        client.close()
    assert final["finish_reason"] in ("stop", "length", "interrupted")
    store = Store(f"sqlite:///{instance_dir / 'chatbot.db'}")
    try:
        stored = store.get_message(session["session_id"], ack["reply_id"])
    finally:
        store.close()
    assert stored["status"] in ("complete", "interrupted") and stored["content"] == final["message"]
    assert "SIGTERM: shutting down" in app.logs()


def test_image_two_containers_share_postgres_and_redis(container):
    database, redis = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if not (database and redis):
        pytest.skip("TEST_DATABASE_URL and TEST_REDIS_URL are not both set")
    with isolated_database(database) as url:
        shared = {"DATABASE_URL": url, "REDIS_URL": redis, "REDIS_PREFIX": f"imagetest{uuid.uuid4().hex[:8]}",
                  "SECRET_KEY": "image-test-secret-" + uuid.uuid4().hex}
        first = container({**shared, "ASYNC_MODE": "gevent"})
        second = container({**shared, "ASYNC_MODE": "eventlet"})
        writer = LiveClient(first.url)
        tab = None
        try:
            session = writer.wait("session_id")
            conversation = writer.wait("history")["conversation_id"]
            tab = LiveClient(second.url, session["token"])
            assert tab.wait("session_id")["session_id"] == session["session_id"]
            assert tab.wait("history")["conversation_id"] == conversation
            ack = writer.call("user_message", {"message": "Say hello in five words."}, timeout=60)
            mine = writer.final(ack["reply_id"], timeout=120)
            theirs = tab.final(ack["reply_id"], timeout=60)
            assert theirs["conversation_id"] == conversation and theirs["message"] == mine["message"]
            assert mine["message"].strip() and tab.text_of(ack["reply_id"]) == mine["message"]
        finally:
            writer.close()
            if tab is not None:
                tab.close()
            first.remove()
            second.remove()

