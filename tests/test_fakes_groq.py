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

from fakes.groq import (
    DEFAULT_MODELS,
    DEFAULT_RATELIMIT,
    DEFAULT_TEXT,
    ENDPOINT,
    MODELS_ENDPOINT,
    OPENAI_ENDPOINT,
    OPENAI_MODELS_ENDPOINT,
    FakeGroq,
    split_text,
)

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
WAIT = 5.0


def post(fake, body, *, key=None, path=ENDPOINT) -> httpx.Response:
    """POST a body to the fake with its key (or `key`)."""
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    return httpx.post(fake.base_url + path, json=body, headers=headers, timeout=WAIT)


def get(fake, path, *, key=None) -> httpx.Response:
    """GET a path from the fake with its key (or `key`)."""
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    return httpx.get(fake.base_url + path, headers=headers, timeout=WAIT)


def deltas(chunks: list) -> list[dict]:
    """The delta of every chunk that has a choice."""
    return [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c["choices"]]


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
    assert post(fake_groq, GOOD, path="/openai/v2/chat/completions").json()["error"]["code"] == "unknown_url"


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
    """`python -m fakes.groq` serves the configured key and token count until SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes.groq", "--port", "0", "--key", "gsk_cli", "--tokens", "4"],
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


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_fake_groq_streams_reasoning_before_content(field):
    """Thinking comes first, one chunk per piece in the configured field, then the answer chunks."""
    with FakeGroq(reasoning_field=field) as fake:
        fake.script(reasoning="Let me think about it.", text="Yes.")
        *chunks, _ = sse_events(post(fake, {**GOOD, "stream": True}))
    pieces = deltas(chunks)
    thinking = [d[field] for d in pieces if field in d]
    assert thinking == split_text("Let me think about it.") and len(thinking) > 1
    assert [d["content"] for d in pieces if "content" in d] == ["Yes."]
    first_answer = next(i for i, d in enumerate(pieces) if "content" in d)
    assert all(field in d for d in pieces[:first_answer])
    assert fake.last_reasoning == "Let me think about it." and fake.last_text == "Yes."


def test_fake_groq_reasoning_field_per_script(fake_groq):
    """A script may name the field itself; non-streamed answers carry the thinking in the message."""
    fake_groq.script(reasoning="Hmm.", text="Ok.", reasoning_field="reasoning_content")
    *chunks, _ = sse_events(post(fake_groq, {**GOOD, "stream": True}))
    assert [d.get("reasoning_content") for d in deltas(chunks) if "reasoning_content" in d] == ["Hmm."]
    fake_groq.script(reasoning="Hmm.", text="Ok.")
    message = post(fake_groq, GOOD).json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Ok.", "reasoning": "Hmm."}


def test_fake_groq_usage_has_groq_timings(fake_groq):
    """The last chunk's x_groq.usage has token counts, details and timings; scripted fields override them."""
    fake_groq.script(reasoning=["a", "b"], tokens=3)
    *chunks, _ = sse_events(post(fake_groq, {**GOOD, "stream": True}))
    usage = chunks[-1]["x_groq"]["usage"]
    assert usage["completion_tokens"] == 5 and usage["total_tokens"] == usage["prompt_tokens"] + 5
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 2}
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert all(usage[name] > 0 for name in ("queue_time", "prompt_time", "completion_time", "total_time"))
    assert usage["total_time"] >= usage["completion_time"]
    fake_groq.script(tokens=4, usage={"completion_time": 0.5})
    *chunks, _ = sse_events(post(fake_groq, {**GOOD, "stream": True}))
    assert chunks[-1]["x_groq"]["usage"]["completion_time"] == 0.5


def test_fake_groq_openai_path_streams_without_x_groq(fake_groq):
    """/v1/chat/completions speaks plain OpenAI: no x_groq, and no usage unless asked for."""
    fake_groq.script(tokens=2)
    *chunks, done = sse_events(post(fake_groq, {**GOOD, "stream": True}, path=OPENAI_ENDPOINT))
    assert done == "[DONE]"
    assert [d.get("content") for d in deltas(chunks)] == ["tok0 ", "tok1 ", None]
    assert all("x_groq" not in c and "usage" not in c for c in chunks)
    assert fake_groq.paths == [OPENAI_ENDPOINT]


def test_fake_groq_openai_path_sends_usage_when_asked(fake_groq):
    """With stream_options.include_usage a final chunk with no choices carries the standard usage."""
    fake_groq.script(tokens=3)
    body = {**GOOD, "stream": True, "stream_options": {"include_usage": True}}
    *chunks, _ = sse_events(post(fake_groq, body, path=OPENAI_ENDPOINT))
    *streamed, last = chunks
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
    assert "completion_time" not in last["usage"]
    assert all(c["usage"] is None for c in streamed)
    assert streamed[-1]["choices"][0]["finish_reason"] == "stop"


def test_fake_groq_records_paths_and_bodies(fake_groq):
    """Each chat request's body and path are kept in order, so tests can check model and reasoning_effort."""
    post(fake_groq, {**GOOD, "model": "openai/gpt-oss-20b", "reasoning_effort": "low"})
    post(fake_groq, GOOD, path=OPENAI_ENDPOINT)
    assert fake_groq.paths == [ENDPOINT, OPENAI_ENDPOINT]
    assert fake_groq.requests[0]["reasoning_effort"] == "low" and fake_groq.requests[1] == GOOD


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("openai/gpt-oss-120b", "none"),
        ("openai/gpt-oss-20b", "default"),
        ("qwen/qwen3.6-27b", "high"),
        ("groq/compound", "low"),
        ("m", "medium"),
    ],
)
def test_fake_groq_rejects_reasoning_effort_the_model_does_not_take(fake_groq, model, effort):
    """Like Groq, a reasoning_effort outside the model family's values is a 400."""
    response = post(fake_groq, {**GOOD, "model": model, "reasoning_effort": effort})
    assert response.status_code == 400
    assert "reasoning_effort" in response.json()["error"]["message"]


@pytest.mark.parametrize(("model", "effort"), [("openai/gpt-oss-120b", "high"), ("qwen/qwen3.6-27b", "none")])
def test_fake_groq_accepts_reasoning_effort_of_the_family(fake_groq, model, effort):
    """The family's own values pass."""
    assert post(fake_groq, {**GOOD, "model": model, "reasoning_effort": effort}).status_code == 200


@pytest.mark.parametrize("path", [MODELS_ENDPOINT, OPENAI_MODELS_ENDPOINT])
def test_fake_groq_lists_models(fake_groq, path):
    """Both model-list paths return Groq's list shape, non-chat models included by default."""
    payload = get(fake_groq, path).json()
    assert payload["object"] == "list" and payload["data"] == DEFAULT_MODELS
    ids = {m["id"] for m in payload["data"]}
    assert {"openai/gpt-oss-120b", "qwen/qwen3.6-27b", "groq/compound", "whisper-large-v3"} <= ids
    fields = {"id", "object", "created", "owned_by", "active", "context_window", "public_apps", "max_completion_tokens"}
    assert all(set(m) == fields for m in payload["data"])
    assert fake_groq.model_requests == [path] and fake_groq.requests == []


def test_fake_groq_model_list_is_scriptable(fake_groq):
    """A scripted list (ids or dicts) serves once, then the fake's own list comes back; one model can be read."""
    fake_groq.script_models(models=["a/one", {**DEFAULT_MODELS[0], "active": False}])
    first = get(fake_groq, MODELS_ENDPOINT).json()["data"]
    assert [m["id"] for m in first] == ["a/one", "openai/gpt-oss-120b"] and first[1]["active"] is False
    assert first[0]["context_window"] > 0
    assert get(fake_groq, MODELS_ENDPOINT).json()["data"] == DEFAULT_MODELS
    assert get(fake_groq, MODELS_ENDPOINT + "/openai/gpt-oss-20b").json()["id"] == "openai/gpt-oss-20b"
    missing = get(fake_groq, MODELS_ENDPOINT + "/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(("status", "code"), [(500, None), (503, None), (401, "invalid_api_key")])
def test_fake_groq_model_list_failures(fake_groq, status, code):
    """Scripted failures answer with Groq's error bodies, `repeat` times."""
    fake_groq.script_models(status=status, repeat=2)
    responses = [get(fake_groq, MODELS_ENDPOINT) for _ in range(3)]
    assert [r.status_code for r in responses] == [status, status, 200]
    assert responses[0].json()["error"].get("code") == code


def test_fake_groq_model_list_checks_key(fake_groq):
    """Listing models needs the key, like every Groq endpoint."""
    response = get(fake_groq, MODELS_ENDPOINT, key="gsk_nope")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_fake_groq_sends_ratelimit_headers(fake_groq):
    """Responses carry x-ratelimit-remaining-*; a script sets them for one response, {} leaves them out."""
    fake_groq.script(tokens=1, ratelimit={"requests": 7, "tokens": 120})
    fake_groq.script(tokens=1, ratelimit={})
    fake_groq.script(status=429, retry_after=1)
    scripted = post(fake_groq, {**GOOD, "stream": True})
    assert scripted.headers["x-ratelimit-remaining-requests"] == "7"
    assert scripted.headers["x-ratelimit-remaining-tokens"] == "120"
    assert "x-ratelimit-remaining-requests" not in post(fake_groq, GOOD).headers
    limited = post(fake_groq, GOOD)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-remaining-tokens"] == str(DEFAULT_RATELIMIT["tokens"])
    fake_groq.ratelimit = {"tokens": 42}
    plain = post(fake_groq, GOOD).headers
    assert plain["x-ratelimit-remaining-tokens"] == "42" and "x-ratelimit-remaining-requests" not in plain


def test_fake_groq_without_key_accepts_any():
    """api_key=None stands for a local server that checks no key."""
    with FakeGroq(api_key=None) as fake:
        assert post(fake, GOOD, key="anything", path=OPENAI_ENDPOINT).status_code == 200
        assert get(fake, OPENAI_MODELS_ENDPOINT, key="other").status_code == 200


def test_fake_groq_serves_the_groq_sdk(fake_groq):
    """The real groq SDK reads the model list and streams reasoning from the fake."""
    import groq

    client = groq.Groq(api_key=fake_groq.api_key, base_url=fake_groq.base_url, max_retries=0)
    listed = client.models.list()
    assert [m.id for m in listed.data] == [m["id"] for m in DEFAULT_MODELS]
    assert listed.data[0].model_dump()["context_window"] == 131072
    fake_groq.script(reasoning="Think.", text="Done.")
    chunks = list(client.chat.completions.create(model="openai/gpt-oss-20b", messages=GOOD["messages"], stream=True))
    assert "".join(c.choices[0].delta.reasoning or "" for c in chunks) == "Think."
    assert chunks[-1].x_groq.usage.completion_time > 0
    client.close()
