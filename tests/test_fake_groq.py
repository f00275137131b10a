"""Tests for the fake Groq server itself, so failures elsewhere can trust it."""

import json
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fake_groq import DEFAULT_TEXT, ENDPOINT, FakeGroq, split_text

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
WAIT = 5.0


def post(fake, body, *, key=None, path=ENDPOINT) -> httpx.Response:
    """POST a body to the fake with its key (or `key`)."""
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    return httpx.post(fake.base_url + path, json=body, headers=headers, timeout=WAIT)


def sse_events(response: httpx.Response) -> list:
    """The data payloads of an SSE body, [DONE] included as a string."""
    events = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "hi"}]},
        {"model": 3, "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "messages": []},
        {"model": "m", "messages": "hi"},
        {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
        {"model": "m", "messages": [{"role": "user", "content": None}]},
        {"model": "m", "messages": [{"role": "user"}]},
        ["not", "an", "object"],
    ],
)
def test_fake_groq_rejects_bad_bodies(fake_groq, body):
    """Bodies Groq would refuse get 400 invalid_request_error."""
    response = post(fake_groq, body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_fake_groq_rejects_bad_key_and_path(fake_groq):
    """Wrong key: Groq's 401 body; unknown path: 404 unknown_url."""
    response = post(fake_groq, GOOD, key="gsk_nope")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}
    }
    assert post(fake_groq, GOOD, path="/v1/chat/completions").json()["error"]["code"] == "unknown_url"


def test_fake_groq_streams_like_groq(fake_groq):
    """Chunks carry the OpenAI fields, the first the role, the last finish_reason and x_groq.usage; then [DONE]."""
    fake_groq.script(tokens=3)
    response = post(fake_groq, {**GOOD, "stream": True})
    assert response.headers["content-type"] == "text/event-stream"
    *chunks, done = sse_events(response)
    assert done == "[DONE]"
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "tok0 "}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert chunks[-1]["x_groq"]["usage"]["completion_tokens"] == 3
    assert fake_groq.last_text == "tok0 tok1 tok2 "


def test_fake_groq_answers_without_stream(fake_groq):
    """Non-streamed requests get one chat.completion with the default reply."""
    payload = post(fake_groq, GOOD).json()
    assert payload["object"] == "chat.completion"
    assert payload["choices"][0]["message"] == {"role": "assistant", "content": DEFAULT_TEXT}
    assert fake_groq.requests == [GOOD]


def test_fake_groq_scripts_queue_and_repeat(fake_groq):
    """Scripts are used in order, `repeat` times each, then the default reply comes back."""
    fake_groq.script(status=503, repeat=2)
    fake_groq.script(text="third")
    statuses = [post(fake_groq, GOOD).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert fake_groq.last_text == "third"
    assert post(fake_groq, GOOD).json()["choices"][0]["message"]["content"] == DEFAULT_TEXT


def test_fake_groq_sets_tcp_nodelay(fake_groq):
    """Accepted sockets have Nagle disabled, or every small SSE write would wait for an ACK."""
    fake_groq.script(tokens=5, hold_after=1)
    with httpx.Client(timeout=WAIT) as client:
        request = client.build_request(
            "POST",
            fake_groq.base_url + ENDPOINT,
            json={**GOOD, "stream": True},
            headers={"Authorization": f"Bearer {fake_groq.api_key}"},
        )
        response = client.send(request, stream=True)
        fake_groq.wait_streamed(1, WAIT)
        (conn,) = fake_groq._server.connections
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        fake_groq.release()
        response.read()
        response.close()


@pytest.mark.parametrize("text", ["", "a", "abcd", "Hello, wörld! ", "line\nbreak  spaces"])
def test_split_text_joins_back(text):
    """Splitting never loses or adds a character."""
    assert "".join(split_text(text)) == text


def test_fake_groq_close_releases_held_stream():
    """close() while a stream is held ends it, so nothing hangs."""
    fake = FakeGroq().start()
    fake.script(tokens=5, hold_after=1)
    with httpx.Client(timeout=WAIT) as client:
        request = client.build_request(
            "POST",
            fake.base_url + ENDPOINT,
            json={**GOOD, "stream": True},
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )
        response = client.send(request, stream=True)
        fake.wait_streamed(1, WAIT)
        fake.close()
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    assert not fake._thread.is_alive()


def test_fake_groq_runs_standalone():
    """`python -m tests.fake_groq` serves the configured key and token count until SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_groq", "--port", "0", "--key", "gsk_cli", "--tokens", "4"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30), "fake Groq did not start"
        base_url = process.stdout.readline().split()[-1]
        response = httpx.post(base_url + ENDPOINT, json=GOOD, headers={"Authorization": "Bearer gsk_cli"}, timeout=WAIT)
        assert response.json()["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3 "
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
