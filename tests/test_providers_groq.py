"""Tests for chatbot.providers.groq against the fake Groq server, through the real groq SDK."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from chatbot.protocol import MESSAGES as USER_MESSAGES
from chatbot.protocol import UPSTREAM_REJECTED, upstream_sentence
from chatbot.providers.base import (
    Delta,
    StreamOptions,
    UpstreamError,
    error_from_event,
    error_from_status,
    parse_retry_after,
)
from chatbot.providers.demo import DemoProvider, demo_reply
from chatbot.providers.groq import GroqProvider
from fakes.groq import DEFAULT_TEXT  # the fake_groq fixture comes from conftest

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello."},
]
WAIT = 5.0  # generous upper bound for waits on events; tests finish long before it


def provider_for(fake, **options) -> GroqProvider:
    """A GroqProvider pointed at the fake, with fast retries."""
    options.setdefault("backoff", 0.01)
    return GroqProvider(fake.api_key, "test-model", base_url=fake.base_url, **options)


def collect(stream) -> tuple[list[Delta], UpstreamError | None]:
    """Iterate a stream to the end, returning the deltas and the UpstreamError raised, if any."""
    deltas = []
    try:
        for delta in stream:
            deltas.append(delta)
    except UpstreamError as exc:
        return deltas, exc
    return deltas, None


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_groq_provider_streams_via_groq_base_url_env(fake_groq, monkeypatch):
    """base_url=None: the SDK finds the fake through GROQ_BASE_URL."""
    monkeypatch.setenv("GROQ_BASE_URL", fake_groq.base_url)
    fake_groq.script(text="The quick brown fox jumps over the lazy dog.")
    stream = GroqProvider(fake_groq.api_key, "test-model").stream(MESSAGES)
    deltas, error = collect(stream)
    assert error is None
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == fake_groq.last_text == "The quick brown fox jumps over the lazy dog."
    assert all(d.reasoning == "" for d in deltas)
    assert stream.finish_reason == "stop"
    assert stream.usage["completion_tokens"] == len(deltas)
    assert stream.usage["total_tokens"] == stream.usage["prompt_tokens"] + len(deltas)
    (request,) = fake_groq.requests
    assert request["model"] == "test-model"
    assert request["messages"] == MESSAGES
    assert request["stream"] is True


def test_groq_provider_streams_via_base_url_argument(fake_groq, monkeypatch):
    """An explicit base_url wins over GROQ_BASE_URL."""
    monkeypatch.setenv("GROQ_BASE_URL", f"http://127.0.0.1:{free_port()}")
    fake_groq.script(tokens=3, finish_reason="length")
    stream = provider_for(fake_groq).stream(MESSAGES)
    deltas, error = collect(stream)
    assert error is None
    assert [d.text for d in deltas] == ["tok0 ", "tok1 ", "tok2 "]
    assert stream.finish_reason == "length"


def test_groq_provider_keeps_reasoning_apart(fake_groq):
    """Reasoning-model thinking arrives in Delta.reasoning, never mixed into the answer text."""
    fake_groq.script(reasoning=["Let me ", "think."], text="Answer.")
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert error is None
    assert "".join(d.reasoning for d in deltas) == fake_groq.last_reasoning == "Let me think."
    assert "".join(d.text for d in deltas) == "Answer."
    assert all(not (d.text and d.reasoning) for d in deltas)


def test_groq_provider_sends_options(fake_groq):
    """Temperature and max_tokens reach the request; unset options are not sent."""
    collect(provider_for(fake_groq, temperature=0.3, max_tokens=64).stream(MESSAGES))
    collect(provider_for(fake_groq).stream(MESSAGES))
    with_options, without = fake_groq.requests
    assert with_options["temperature"] == 0.3
    assert with_options["max_completion_tokens"] == 64
    assert "temperature" not in without and "max_completion_tokens" not in without


def test_groq_provider_takes_a_conversations_options_over_the_operators(fake_groq):
    """Per-request options (a conversation's settings) win over the operator's; unset ones fall back to them; a
    reasoning effort goes only to a model whose family takes it."""
    operator = provider_for(fake_groq, temperature=0.3, max_tokens=64)
    collect(operator.stream(MESSAGES, options=StreamOptions(temperature=1.5)))
    collect(operator.stream(MESSAGES, options=StreamOptions(max_tokens=10, reasoning_effort="high"),
                            model="openai/gpt-oss-20b"))
    collect(operator.stream(MESSAGES, options=StreamOptions(reasoning_effort="high")))
    warmer, capped, plain = fake_groq.requests
    assert (warmer["temperature"], warmer["max_completion_tokens"]) == (1.5, 64)
    assert (capped["temperature"], capped["max_completion_tokens"], capped["reasoning_effort"]) == (0.3, 10, "high")
    assert "reasoning_effort" not in plain  # test-model takes none


@pytest.mark.parametrize(
    ("script", "code", "hint"),
    [
        ({"status": 401}, "upstream_auth", "GROQ_API_KEY"),
        ({"status": 403}, "upstream_auth", "GROQ_API_KEY"),
        ({"model_not_found": True}, "model_unavailable", "GROQ_MODEL"),
        ({"model_decommissioned": True}, "model_unavailable", "GROQ_MODEL"),
        ({"status": 400}, "invalid_message", "HTTP 400"),
        ({"status": 422}, "invalid_message", "HTTP 422"),
    ],
)
def test_groq_provider_does_not_retry_client_errors(fake_groq, script, code, hint):
    """4xx other than 429 map to their code at once, with no retry."""
    fake_groq.script(**script)
    retries = []
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES, on_retry=lambda *a: retries.append(a)))
    assert deltas == []
    assert error.code == code
    expected = UPSTREAM_REJECTED if code == "invalid_message" else USER_MESSAGES[code]
    assert upstream_sentence(error.code) == expected and str(error) == code
    assert hint in error.detail
    assert len(fake_groq.requests) == 1
    assert retries == []


def test_groq_provider_maps_rejected_key(fake_groq):
    """A key the upstream does not know is upstream_auth, and the log detail names the variable to fix."""
    provider = GroqProvider("gsk_wrong_key_Zp41", "test-model", base_url=fake_groq.base_url)
    _, error = collect(provider.stream(MESSAGES))
    assert error.code == "upstream_auth"
    assert "GROQ_API_KEY" in error.detail and "invalid_api_key" in error.detail
    assert len(fake_groq.requests) == 1


def test_groq_provider_retries_429_after_retry_after(fake_groq):
    """429 with retry-after: on_retry hears the wait, the retry succeeds, the user gets the whole reply."""
    fake_groq.script(status=429, retry_after=0.05)
    fake_groq.script(tokens=3)
    retries = []
    stream = provider_for(fake_groq).stream(MESSAGES, on_retry=lambda *a: retries.append(a))
    deltas, error = collect(stream)
    assert error is None
    assert "".join(d.text for d in deltas) == "tok0 tok1 tok2 "
    assert retries == [(0.05, "upstream_rate_limited")]
    assert len(fake_groq.requests) == 2


def test_groq_provider_gives_up_on_long_retry_after(fake_groq):
    """A retry-after beyond max_retry_wait is not waited out: upstream_rate_limited carries retry_after."""
    fake_groq.script(status=429, retry_after=3600)
    retries = []
    stream = provider_for(fake_groq, max_retry_wait=20).stream(MESSAGES, on_retry=lambda *a: retries.append(a))
    _, error = collect(stream)
    assert error.code == "upstream_rate_limited"
    assert error.retry_after == 3600
    assert retries == []
    assert len(fake_groq.requests) == 1


def test_groq_provider_rate_limited_after_retries(fake_groq):
    """429 every time: retried max_retries times, then upstream_rate_limited."""
    fake_groq.script(status=429, retry_after=0.01, repeat=None)
    _, error = collect(provider_for(fake_groq, max_retries=1).stream(MESSAGES))
    assert error.code == "upstream_rate_limited"
    assert error.retry_after == 0.01
    assert len(fake_groq.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_groq_provider_retries_5xx_then_fails(fake_groq, status):
    """5xx is retried with exponential backoff, then reported as upstream_unavailable."""
    fake_groq.script(status=status, repeat=None)
    retries = []
    stream = provider_for(fake_groq, max_retries=2).stream(MESSAGES, on_retry=lambda *a: retries.append(a))
    _, error = collect(stream)
    assert error.code == "upstream_unavailable"
    assert f"HTTP {status}" in error.detail
    assert retries == [(0.01, "upstream_unavailable"), (0.02, "upstream_unavailable")]
    assert len(fake_groq.requests) == 3


def test_groq_provider_retries_5xx_then_succeeds(fake_groq):
    """One 503 then a good stream: the reply arrives whole."""
    fake_groq.script(status=503)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert error is None
    assert "".join(d.text for d in deltas) == DEFAULT_TEXT


def test_groq_provider_times_out_on_slow_first_byte(fake_groq):
    """No response headers within the read timeout: upstream_unavailable."""
    fake_groq.script(first_byte_delay=WAIT)
    _, error = collect(provider_for(fake_groq, timeout=0.1, max_retries=0).stream(MESSAGES))
    assert error.code == "upstream_unavailable"
    assert "timed out" in error.detail


def test_groq_provider_retries_after_first_byte_timeout(fake_groq):
    """A timeout before the first byte is retried."""
    fake_groq.script(first_byte_delay=WAIT)
    fake_groq.script(tokens=2)
    deltas, error = collect(provider_for(fake_groq, timeout=0.1, max_retries=1).stream(MESSAGES))
    assert error is None
    assert [d.text for d in deltas] == ["tok0 ", "tok1 "]


def test_groq_provider_raises_when_cut_mid_stream(fake_groq):
    """A connection dropped after some deltas raises upstream_unavailable after them, without a retry."""
    fake_groq.script(tokens=10, cut_after=3)
    retries = []
    stream = provider_for(fake_groq).stream(MESSAGES, on_retry=lambda *a: retries.append(a))
    deltas, error = collect(stream)
    assert [d.text for d in deltas] == ["tok0 ", "tok1 ", "tok2 "]
    assert error.code == "upstream_unavailable"
    assert "RemoteProtocolError" in error.detail
    assert stream.finish_reason is None
    assert retries == [] and len(fake_groq.requests) == 1


def test_groq_provider_retries_cut_before_first_delta(fake_groq):
    """A connection dropped before any delta is retried like a connect failure."""
    fake_groq.script(tokens=5, cut_after=0)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert error is None
    assert "".join(d.text for d in deltas) == DEFAULT_TEXT
    assert len(fake_groq.requests) == 2


def test_groq_provider_raises_on_error_event(fake_groq):
    """An SSE `data: {"error": ...}` event mid-stream is upstream_unavailable after the earlier deltas."""
    fake_groq.script(tokens=5, error_after=2)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert len(deltas) == 2
    assert error.code == "upstream_unavailable"
    assert "error event" in error.detail


def test_groq_provider_maps_connection_refused():
    """Nothing listening: upstream_unavailable naming the connection failure."""
    provider = GroqProvider("gsk_k", "m", base_url=f"http://127.0.0.1:{free_port()}", max_retries=0)
    _, error = collect(provider.stream(MESSAGES))
    assert error.code == "upstream_unavailable"
    assert "connection failed" in error.detail


def test_groq_provider_close_from_another_thread(fake_groq):
    """close() while the reader is blocked mid-stream: iteration ends quietly, the fake sees the hang-up."""
    fake_groq.script(tokens=50, hold_after=2)
    stream = provider_for(fake_groq).stream(MESSAGES)
    deltas, errors, two = [], [], threading.Event()

    def consume():
        """Read the stream on a worker thread, as the chat service's background task does."""
        try:
            for delta in stream:
                deltas.append(delta)
                if len(deltas) == 2:
                    two.set()
        except Exception as exc:  # the assertion below reports it
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    assert two.wait(WAIT)
    fake_groq.wait_streamed(2, WAIT)
    stream.close()
    worker.join(WAIT)
    assert not worker.is_alive()
    assert errors == []
    assert [d.text for d in deltas] == ["tok0 ", "tok1 "]
    assert stream.finish_reason == "stopped" and stream.closed
    fake_groq.wait_disconnected(1, WAIT)
    stream.close()  # idempotent


def test_groq_provider_close_from_consumer(fake_groq):
    """close() between deltas on the consuming thread ends the loop and hangs up on the upstream."""
    fake_groq.script(tokens=50, hold_after=3)
    stream = provider_for(fake_groq).stream(MESSAGES)
    seen = []
    for delta in stream:
        seen.append(delta.text)
        if len(seen) == 2:
            stream.close()
    assert seen == ["tok0 ", "tok1 "]
    assert stream.finish_reason == "stopped"
    fake_groq.wait_disconnected(1, WAIT)


def test_groq_provider_close_before_iteration_sends_nothing(fake_groq):
    """A reply stopped before it started never reaches the upstream."""
    stream = provider_for(fake_groq).stream(MESSAGES)
    stream.close()
    assert list(stream) == []
    assert fake_groq.requests == []
    assert stream.finish_reason == "stopped"


def test_groq_provider_close_after_finish_keeps_finish_reason(fake_groq):
    """close() after a complete reply changes nothing."""
    stream = provider_for(fake_groq).stream(MESSAGES)
    collect(stream)
    stream.close()
    assert stream.finish_reason == "stop"


def test_reply_stream_iterates_once(fake_groq):
    """A second iteration would silently send a second request, so it is refused."""
    stream = provider_for(fake_groq).stream(MESSAGES)
    collect(stream)
    with pytest.raises(RuntimeError):
        iter(stream)


@pytest.mark.parametrize(
    "script", [{"status": 401}, {"model_not_found": True}, {"status": 500}, {"tokens": 5, "cut_after": 1}]
)
def test_upstream_error_leaks_no_secrets(fake_groq, script):
    """What users see (the sentence for its code, str, repr) holds neither key nor URL; the log detail lacks the key."""
    fake_groq.script(**script, repeat=None)
    _, error = collect(provider_for(fake_groq, max_retries=0).stream(MESSAGES))
    assert error is not None
    for shown in (upstream_sentence(error.code), str(error), repr(error)):
        for secret in (fake_groq.api_key, fake_groq.base_url, "127.0.0.1", "HTTP", "{"):
            assert secret not in shown
    assert fake_groq.api_key not in error.detail


def test_groq_provider_redacts_key_from_detail():
    """Should an exception text ever echo the key, the detail redacts it."""
    provider = GroqProvider("gsk_secret_Q8", "m", base_url="http://127.0.0.1:9")
    error = provider.map_exception(RuntimeError("bad header Bearer gsk_secret_Q8"))
    assert "gsk_secret_Q8" not in error.detail and "[redacted]" in error.detail
    assert "gsk_secret_Q8" not in repr(provider)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"error": {"code": "invalid_api_key"}}, "upstream_auth"),
        (404, {"error": {"code": "model_not_found"}}, "model_unavailable"),
        (404, None, "model_unavailable"),
        (404, {"error": {"code": "unknown_url"}}, "upstream_unavailable"),
        (400, {"error": {"code": "model_decommissioned"}}, "model_unavailable"),
        (400, {"error": {"message": "context too long"}}, "invalid_message"),
        (413, "Request Entity Too Large", "invalid_message"),
        (429, {"error": {"code": "rate_limit_exceeded"}}, "upstream_rate_limited"),
        (498, None, "upstream_unavailable"),
        (500, "<html>oops</html>", "upstream_unavailable"),
        (504, None, "upstream_unavailable"),
    ],
)
def test_error_from_status_maps(status, body, code):
    """Every status/body shape lands on its protocol code, whatever the body looks like."""
    assert error_from_status(status, body, {}).code == code


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"message": "x", "type": "internal_server_error"}, "upstream_unavailable"),
        ({"code": "model_decommissioned"}, "model_unavailable"),
        ({"code": "rate_limit_exceeded"}, "upstream_rate_limited"),
        ("a bare string", "upstream_unavailable"),
    ],
)
def test_error_from_event_maps(event, code):
    """Mid-stream error events map like status errors."""
    assert error_from_event(event).code == code


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "x"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_reads(headers, seconds):
    """Seconds, milliseconds and HTTP dates are understood; garbage is ignored."""
    assert parse_retry_after(headers) == seconds


def test_demo_provider_streams_deterministically():
    """The demo streams the same several deltas every time, ending with stop and a usage count."""
    messages = [{"role": "user", "content": "What is *this*?\n`rm -rf`"}]
    runs = []
    for _ in range(2):
        stream = DemoProvider(token_delay=0).stream(messages)
        deltas, error = collect(stream)
        assert error is None
        runs.append([d.text for d in deltas])
    assert runs[0] == runs[1] and len(runs[0]) >= 2
    text = "".join(runs[0])
    assert text == demo_reply(messages)
    assert "offline demo" in text and "GROQ_API_KEY" in text and ".env" in text
    assert "What is \\*this\\*? \\`rm \\-rf\\`" in text  # quoted, on one line, Markdown-inert
    assert "\n- **Groq**" in text and "OPENAI_BASE_URL=" in text and "make local" in text and "```" in text
    assert stream.finish_reason == "stop"
    assert stream.usage["completion_tokens"] == len(runs[0])


def test_demo_provider_without_user_message():
    """A conversation with no user message still gets a demo reply."""
    deltas, error = collect(DemoProvider(token_delay=0).stream([{"role": "system", "content": "x"}]))
    assert error is None and "offline demo" in "".join(d.text for d in deltas)


def test_demo_provider_close_stops_a_waiting_stream():
    """close() from another thread wakes the demo's pause between words at once."""
    stream = DemoProvider(token_delay=3600).stream(MESSAGES)
    first, done = threading.Event(), threading.Event()
    seen = []

    def consume():
        """Read the demo stream; it blocks in the pause after the first word."""
        for delta in stream:
            seen.append(delta)
            first.set()
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    assert first.wait(WAIT)
    stream.close()
    assert done.wait(WAIT)
    assert len(seen) == 1
    assert stream.finish_reason == "stopped"


GREEN_SCRIPT = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "eventlet":
        import eventlet
        eventlet.monkey_patch()
    else:
        from gevent import monkey
        monkey.patch_all()
    import json, os, threading
    from chatbot.providers.groq import GroqProvider

    provider = GroqProvider(os.environ["FAKE_KEY"], "m", base_url=os.environ["FAKE_URL"])
    messages = [{"role": "user", "content": "hi"}]
    whole = "".join(d.text for d in provider.stream(messages))
    stream = provider.stream(messages)
    seen, two = [], threading.Event()

    def consume():
        for delta in stream:
            seen.append(delta.text)
            if len(seen) == 2:
                two.set()

    worker = threading.Thread(target=consume)
    worker.start()
    two.wait(5)
    stream.close()
    worker.join(5)
    alive, finish = worker.is_alive(), stream.finish_reason
    print(json.dumps({"whole": whole, "seen": seen, "alive": alive, "finish": finish}))
    """
)


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_groq_provider_under_green_threads(fake_groq, mode):
    """Under eventlet or gevent patching: a reply streams whole; close() from another greenlet stops one."""
    fake_groq.script(text="Green hello.")
    fake_groq.script(tokens=50, hold_after=2)
    env = {
        **os.environ,
        "FAKE_KEY": fake_groq.api_key,
        "FAKE_URL": fake_groq.base_url,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", GREEN_SCRIPT, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {
        "whole": "Green hello.",
        "seen": ["tok0 ", "tok1 "],
        "alive": False,
        "finish": "stopped",
    }
    fake_groq.wait_disconnected(1, WAIT)


def test_groq_provider_sends_its_body_without_the_sdk_transform(fake_groq, monkeypatch):
    """The request body is ours, as built: the SDK's per-message type transform (costly at long contexts) is skipped."""
    import groq.resources.chat.completions as completions

    def refuse(*args, **kwargs):
        raise AssertionError("the SDK transform ran")

    monkeypatch.setattr(completions, "maybe_transform", refuse)
    fake_groq.script(text="Plain JSON is enough.")
    deltas, error = collect(provider_for(fake_groq, temperature=0.5).stream(MESSAGES))
    assert error is None and "".join(d.text for d in deltas) == "Plain JSON is enough."
    body = fake_groq.requests[-1]
    assert body["messages"] == MESSAGES and body["stream"] is True and body["temperature"] == 0.5
