"""Tests for chatbot.providers.openai_compat against the fake server's plain OpenAI paths (`/v1/...`), through the
real openai SDK: streaming, reasoning fields, every error class, stop, the model list."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from chatbot.protocol import MESSAGES as USER_MESSAGES
from chatbot.protocol import upstream_sentence
from chatbot.providers.base import Delta, StreamOptions, UpstreamError
from chatbot.providers.openai_compat import OpenAICompatProvider
from fakes.groq import OPENAI_ENDPOINT, OPENAI_MODELS_ENDPOINT
from tests.conftest import ROOT
from tests.test_providers_groq import GREEN_SCRIPT

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello."},
]
WAIT = 5.0  # upper bound for waits on events; tests finish long before it


def provider_for(fake, model: str | None = "test-model", **options) -> OpenAICompatProvider:
    """An OpenAICompatProvider pointed at the fake's /v1, with fast retries."""
    options.setdefault("backoff", 0.01)
    options.setdefault("api_key", fake.api_key)
    return OpenAICompatProvider(fake.base_url + "/v1", model, **options)


def collect(stream) -> tuple[list[Delta], UpstreamError | None]:
    """Iterate a stream to the end, returning the deltas and the UpstreamError raised, if any."""
    deltas = []
    try:
        for delta in stream:
            deltas.append(delta)
    except UpstreamError as exc:
        return deltas, exc
    return deltas, None


def test_openai_provider_streams_from_v1(fake_groq):
    fake_groq.script(text="The quick brown fox jumps over the lazy dog.")
    stream = provider_for(fake_groq).stream(MESSAGES)
    deltas, error = collect(stream)
    assert error is None and len(deltas) > 1
    assert "".join(d.text for d in deltas) == fake_groq.last_text == "The quick brown fox jumps over the lazy dog."
    assert stream.finish_reason == "stop"
    assert stream.usage["completion_tokens"] == len(deltas)  # from the include_usage chunk
    assert fake_groq.paths == [OPENAI_ENDPOINT]
    (request,) = fake_groq.requests
    assert request["model"] == "test-model" and request["messages"] == MESSAGES and request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_provider_reads_reasoning_from_either_field(fake_groq, field):
    fake_groq.script(reasoning="Let me think.", text="Hi there.", reasoning_field=field)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert error is None
    assert "".join(d.reasoning for d in deltas) == "Let me think."
    assert "".join(d.text for d in deltas) == "Hi there."


def test_openai_provider_sends_options(fake_groq):
    collect(provider_for(fake_groq, temperature=0.3, max_tokens=77).stream(MESSAGES, model="other-model"))
    (request,) = fake_groq.requests
    assert request["temperature"] == 0.3 and request["max_tokens"] == 77 and request["model"] == "other-model"


@pytest.mark.parametrize(
    ("script", "code", "hint"),
    [
        ({"status": 401}, "upstream_auth", "OPENAI_API_KEY"),
        ({"status": 403}, "upstream_auth", "OPENAI_API_KEY"),
        ({"model_not_found": True}, "model_unavailable", "OPENAI_MODEL"),
        ({"model_decommissioned": True}, "model_unavailable", "OPENAI_MODEL"),
        ({"status": 400}, "invalid_message", ""),
        ({"status": 429, "retry_after": 90}, "upstream_rate_limited", ""),
    ],
    ids=["401", "403", "model-not-found", "model-decommissioned", "400", "429-long-wait"],
)
def test_openai_provider_maps_client_errors_without_retrying(fake_groq, script, code, hint):
    fake_groq.script(**script)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert deltas == [] and error is not None and error.code == code
    assert hint in error.detail
    assert len(fake_groq.requests) == 1
    if code != "invalid_message":
        assert upstream_sentence(error.code) == USER_MESSAGES[code]


def test_openai_provider_maps_a_wrong_key(fake_groq):
    deltas, error = collect(provider_for(fake_groq, api_key="sk-wrong-key-123").stream(MESSAGES))
    assert error.code == "upstream_auth" and "OPENAI_API_KEY" in error.detail
    assert "sk-wrong-key-123" not in error.detail and "sk-wrong-key-123" not in str(error)


def test_openai_provider_wrong_path_says_check_the_base_url(fake_groq):
    provider = OpenAICompatProvider(fake_groq.base_url + "/nothing-here", "m", api_key=fake_groq.api_key)
    deltas, error = collect(provider.stream(MESSAGES))
    assert error.code == "upstream_unavailable" and "OPENAI_BASE_URL" in error.detail


def test_openai_provider_retries_429_after_retry_after(fake_groq):
    fake_groq.script(status=429, retry_after=0.05)
    fake_groq.script(text="After the wait.")
    waits = []
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES, on_retry=lambda wait, code: waits.append(code)))
    assert error is None and "".join(d.text for d in deltas) == "After the wait."
    assert waits == ["upstream_rate_limited"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_openai_provider_retries_5xx_then_fails(fake_groq, status):
    fake_groq.script(status=status, repeat=None)
    deltas, error = collect(provider_for(fake_groq, max_retries=2).stream(MESSAGES))
    assert deltas == [] and error.code == "upstream_unavailable" and f"HTTP {status}" in error.detail
    assert len(fake_groq.requests) == 3


def test_openai_provider_raises_when_cut_mid_stream(fake_groq):
    fake_groq.script(tokens=10, cut_after=4)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert len(deltas) == 4 and error is not None and error.code == "upstream_unavailable"
    assert len(fake_groq.requests) == 1  # never retried once text was shown


def test_openai_provider_retries_a_cut_before_the_first_delta(fake_groq):
    fake_groq.script(tokens=3, cut_after=0)
    fake_groq.script(text="Second try.")
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert error is None and "".join(d.text for d in deltas) == "Second try."


def test_openai_provider_raises_on_error_event(fake_groq):
    fake_groq.script(tokens=5, error_after=2)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert len(deltas) == 2 and error.code == "upstream_unavailable"


def test_openai_provider_times_out_on_a_slow_first_byte(fake_groq):
    fake_groq.script(first_byte_delay=2.0, repeat=None)
    deltas, error = collect(provider_for(fake_groq, timeout=0.2, max_retries=0).stream(MESSAGES))
    assert error.code == "upstream_unavailable" and "timed out" in error.detail


def test_openai_provider_maps_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAICompatProvider(f"http://127.0.0.1:{port}/v1", "m", max_retries=0)
    deltas, error = collect(provider.stream(MESSAGES))
    assert error.code == "upstream_unavailable" and "OPENAI_BASE_URL" in error.detail


def test_openai_provider_close_from_another_thread(fake_groq):
    fake_groq.script(tokens=100, hold_after=3)
    stream = provider_for(fake_groq).stream(MESSAGES)
    got_three = threading.Event()
    seen: list[Delta] = []

    def consume():
        for delta in stream:
            seen.append(delta)
            if len(seen) == 3:
                got_three.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert got_three.wait(WAIT)
    stream.close()
    consumer.join(WAIT)
    assert not consumer.is_alive() and len(seen) == 3 and stream.finish_reason == "stopped"
    fake_groq.wait_disconnected(1)


def test_openai_provider_lists_the_servers_chat_models(fake_groq):
    provider = provider_for(fake_groq, model="openai/gpt-oss-20b")
    models = provider.models()
    assert models[0]["id"] == "openai/gpt-oss-20b" and models[0]["context_window"] == 131072
    ids = [entry["id"] for entry in models]
    assert "openai/gpt-oss-120b" in ids and not any("whisper" in i or "guard" in i for i in ids)
    assert provider.has_model("openai/gpt-oss-120b") and not provider.has_model("whisper-large-v3")
    assert fake_groq.model_requests == [OPENAI_MODELS_ENDPOINT]


@pytest.mark.parametrize(
    ("entry", "window"),
    [({"id": "a", "max_model_len": 32768}, 32768), ({"id": "b", "meta": {"n_ctx_train": 8192}}, 8192),
     ({"id": "c", "context_length": 4096}, 4096), ({"id": "d"}, None)],
    ids=["vllm", "llama-server", "openrouter", "none"],
)
def test_openai_provider_reads_each_servers_context_window(fake_groq, entry, window):
    fake_groq.script_models(models=[entry])
    assert provider_for(fake_groq, model=entry["id"]).models()[0]["context_window"] == window


def test_openai_provider_without_a_model_takes_the_servers_first(fake_groq):
    fake_groq.script_models(models=["llama3.2:latest", "qwen2.5:7b"])
    provider = provider_for(fake_groq, model=None)
    assert provider.model == ""
    deltas, error = collect(provider.stream(MESSAGES))
    assert error is None and fake_groq.requests[0]["model"] == "llama3.2:latest" == provider.model


def test_openai_provider_model_list_failure_is_an_upstream_error(fake_groq):
    fake_groq.script_models(status=401)
    with pytest.raises(UpstreamError) as caught:
        provider_for(fake_groq).list_models()
    assert caught.value.code == "upstream_auth"
    fake_groq.script_models(status=500, repeat=None)
    provider = provider_for(fake_groq, model=None)
    assert provider.models() == [] and not provider.has_model("anything")  # no default known: nothing to offer


def test_openai_provider_repr_hides_the_key(fake_groq):
    provider = provider_for(fake_groq)
    assert fake_groq.api_key not in repr(provider) and "/v1" in repr(provider)


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_openai_provider_under_green_threads(fake_groq, mode):
    """Under eventlet or gevent patching: a reply streams whole; close() from another greenlet stops one."""
    fake_groq.script(text="Green hello.")
    fake_groq.script(tokens=50, hold_after=2)
    script = GREEN_SCRIPT.replace("from chatbot.providers.groq import GroqProvider",
                                  "from chatbot.providers.openai_compat import OpenAICompatProvider").replace(
        'GroqProvider(os.environ["FAKE_KEY"], "m", base_url=os.environ["FAKE_URL"])',
        'OpenAICompatProvider(os.environ["FAKE_URL"] + "/v1", "m", api_key=os.environ["FAKE_KEY"])')
    assert "OpenAICompatProvider(" in script
    env = {**os.environ, "FAKE_KEY": fake_groq.api_key, "FAKE_URL": fake_groq.base_url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script, mode], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"whole": "Green hello.", "seen": ["tok0 ", "tok1 "], "alive": False, "finish": "stopped"}
    fake_groq.wait_disconnected(1, WAIT)
    assert set(fake_groq.paths) == {OPENAI_ENDPOINT}


def test_openai_provider_sends_its_body_without_the_sdk_transform(fake_groq, monkeypatch):
    """The request body is ours, as built: the SDK's per-message type transform is skipped."""
    import openai.resources.chat.completions.completions as completions

    def refuse(*args, **kwargs):
        raise AssertionError("the SDK transform ran")

    monkeypatch.setattr(completions, "maybe_transform", refuse)
    deltas, error = collect(provider_for(fake_groq).stream(MESSAGES))
    assert error is None and "".join(d.text for d in deltas) == fake_groq.last_text


def test_openai_provider_takes_a_conversations_options_but_no_reasoning_effort(fake_groq):
    options = StreamOptions(temperature=1.2, reasoning_effort="high")
    collect(provider_for(fake_groq, temperature=0.3, max_tokens=77).stream(MESSAGES, options=options))
    (request,) = fake_groq.requests
    assert (request["temperature"], request["max_tokens"]) == (1.2, 77) and "reasoning_effort" not in request
