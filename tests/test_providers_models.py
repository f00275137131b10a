"""Tests for chatbot.providers.models (the model registry) and GroqProvider's model list and reasoning_effort."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from chatbot.providers.demo import DemoProvider
from chatbot.providers.groq import GroqProvider
from chatbot.providers.models import ModelRegistry, chat_entry, effort_for, model_entry, model_family, model_label
from fakes.groq import DEFAULT_MODELS, MODELS_ENDPOINT

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "Say hello."}]
DEFAULT = "openai/gpt-oss-120b"
CHAT_IDS = ["openai/gpt-oss-120b", "groq/compound", "groq/compound-mini", "openai/gpt-oss-20b", "qwen/qwen3.6-27b"]
WAIT = 5.0


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


class Fetch:
    """A scriptable model-list reader that counts its calls."""

    def __init__(self, models: list[dict] | None = None) -> None:
        """Serve `models` (default: the fake Groq's list) until told to fail."""
        self.models = DEFAULT_MODELS if models is None else models
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self) -> list[dict]:
        """Return the list, or raise the scripted error."""
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.models


def registry(fetch: Fetch, clock: Clock | None = None, **options) -> ModelRegistry:
    """A registry over `fetch` with the default model and a hand-driven clock."""
    return ModelRegistry(fetch, DEFAULT, clock=clock or Clock(), **options)


def ids(models: list[dict]) -> list[str]:
    """The ids of a model list, in order."""
    return [m["id"] for m in models]


@pytest.mark.parametrize(
    ("model_id", "label"),
    [
        ("openai/gpt-oss-120b", "GPT-OSS 120B"),
        ("openai/gpt-oss-20b", "GPT-OSS 20B"),
        ("qwen/qwen3.6-27b", "Qwen3.6 27B"),
        ("groq/compound", "Compound"),
        ("groq/compound-mini", "Compound Mini"),
        ("llama-3.1-8b-instant", "Llama 3.1 8B Instant"),
        ("moonshotai/kimi-k2-instruct-0905", "Kimi K2 Instruct 0905"),
    ],
)
def test_model_label_reads(model_id, label):
    """Labels are readable names derived from the id."""
    assert model_label(model_id) == label


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("openai/gpt-oss-120b", "gpt-oss"),
        ("gpt-oss-20b", "gpt-oss"),
        ("qwen/qwen3.6-27b", "qwen"),
        ("qwen/qwen3-32b", "qwen"),
        ("groq/compound", None),
        ("llama-3.1-8b-instant", None),
        ("qwen-2.5-32b", None),
    ],
)
def test_model_family_of(model_id, family):
    """gpt-oss and qwen3 models are reasoning families; the rest take no reasoning effort."""
    assert model_family(model_id) == family
    assert model_entry(model_id)["reasoning"] is (family is not None)


@pytest.mark.parametrize(
    ("model_id", "effort", "sent"),
    [
        ("openai/gpt-oss-120b", "high", "high"),
        ("openai/gpt-oss-120b", "none", None),
        ("qwen/qwen3.6-27b", "default", "default"),
        ("qwen/qwen3.6-27b", "low", None),
        ("groq/compound", "low", None),
        ("openai/gpt-oss-20b", None, None),
    ],
)
def test_effort_for_fits_the_family(model_id, effort, sent):
    """An effort is sent only to a model whose family takes it."""
    assert effort_for(model_id, effort) == sent


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "whisper-large-v3"},
        {"id": "playai-tts"},
        {"id": "meta-llama/llama-guard-4-12b"},
        {"id": "meta-llama/llama-prompt-guard-2-86m"},
        {"id": "openai/gpt-oss-safeguard-20b"},
        {"id": "canopylabs/orpheus-v1-english"},
        {"id": "openai/gpt-oss-20b", "active": False},
        {"id": ""},
        {"object": "model"},
        "openai/gpt-oss-20b",
    ],
)
def test_chat_entry_drops_non_chat_models(raw):
    """Speech, TTS, guard and inactive models, and malformed entries, are not offered for chat."""
    assert chat_entry(raw) is None


def test_chat_entry_keeps_context_window():
    """A chat model's entry has its label, reasoning flag and context window."""
    assert chat_entry(DEFAULT_MODELS[0]) == {
        "id": DEFAULT, "label": "GPT-OSS 120B", "reasoning": True, "context_window": 131072,
    }
    assert chat_entry({"id": "groq/compound", "context_window": "big"})["context_window"] is None


def test_model_registry_lists_chat_models_default_first():
    """Non-chat models are dropped, the default comes first, the rest by id."""
    assert ids(registry(Fetch()).models()) == CHAT_IDS


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (["qwen/qwen3.6-27b", "groq/compound"], [DEFAULT, "qwen/qwen3.6-27b", "groq/compound"]),
        ([DEFAULT], [DEFAULT]),
        (["whisper-large-v3", "no/such-model", "openai/gpt-oss-20b"], [DEFAULT, "openai/gpt-oss-20b"]),
    ],
)
def test_model_registry_filters_by_allow_list(allowed, expected):
    """The allow-list keeps its order, never admits non-chat or unlisted models, and the default stays first."""
    assert ids(registry(Fetch(), allowed=allowed).models()) == expected


def test_model_registry_offers_an_unlisted_default(caplog):
    """A default the provider does not list is still offered first, with one warning."""
    models = ModelRegistry(Fetch(), "custom/model", clock=Clock())
    with caplog.at_level(logging.WARNING, logger="chatbot.providers.models"):
        assert ids(models.models())[0] == "custom/model"
        models.models()
    assert len([r for r in caplog.records if "custom/model" in r.getMessage()]) == 1


def test_model_registry_caches_for_ttl():
    """The list is read once per TTL."""
    fetch, clock = Fetch(), Clock()
    models = registry(fetch, clock, ttl=300)
    models.models()
    clock.now = 299
    models.models()
    assert models.has("groq/compound") and fetch.calls == 1
    clock.now = 300
    models.models()
    assert fetch.calls == 2


def test_model_registry_falls_back_to_default_and_retries_slowly(caplog):
    """An unreadable list offers only the default; the read is retried every 30 s, not per call; one warning."""
    fetch, clock = Fetch(), Clock()
    fetch.error = ConnectionError("refused")
    models = registry(fetch, clock, retry_interval=30)
    with caplog.at_level(logging.WARNING, logger="chatbot.providers.models"):
        assert models.models() == [model_entry(DEFAULT)]
        clock.now = 29
        models.models()
        assert fetch.calls == 1 and not models.has("groq/compound")
        clock.now = 30
        models.models()
    assert fetch.calls == 2
    assert len(caplog.records) == 1 and "refused" in caplog.records[0].getMessage()
    fetch.error = None
    clock.now = 60
    assert ids(models.models()) == CHAT_IDS


def test_model_registry_keeps_last_list_when_a_refresh_fails():
    """After a good read, a failed refresh keeps offering the last list."""
    fetch, clock = Fetch(), Clock()
    models = registry(fetch, clock, ttl=10, retry_interval=30)
    models.models()
    fetch.error = TimeoutError("slow")
    clock.now = 10
    assert ids(models.models()) == CHAT_IDS
    clock.now = 20
    models.models()
    assert fetch.calls == 2


def test_model_registry_returns_copies():
    """Callers cannot change the cached entries."""
    models = registry(Fetch())
    models.models()[0]["label"] = "changed"
    assert models.get(DEFAULT)["label"] == "GPT-OSS 120B"
    assert models.get("whisper-large-v3") is None


def test_model_registry_serves_stale_list_while_another_caller_reads():
    """While one caller waits on the provider, others get the last list at once instead of queueing."""
    started, release = threading.Event(), threading.Event()
    fetch, clock = Fetch(), Clock()
    models = registry(fetch, clock, ttl=10)
    models.models()
    slow = Fetch(DEFAULT_MODELS[:1])

    def blocking_fetch():
        started.set()
        release.wait(WAIT)
        return slow()

    models._fetch = blocking_fetch
    clock.now = 10
    reader = threading.Thread(target=models.models)
    reader.start()
    assert started.wait(WAIT)
    assert ids(models.models()) == CHAT_IDS  # did not wait for the reader
    release.set()
    reader.join(WAIT)
    assert ids(models.models()) == [DEFAULT] and slow.calls == 1


def provider_for(fake, **options) -> GroqProvider:
    """A GroqProvider on the fake with the default model."""
    return GroqProvider(fake.api_key, options.pop("model", DEFAULT), base_url=fake.base_url, **options)


def test_groq_provider_models_reads_the_list_once(fake_groq):
    """models() reads GET /openai/v1/models through the SDK, once per TTL."""
    provider = provider_for(fake_groq)
    models = provider.models()
    assert ids(models) == CHAT_IDS
    assert models[0] == {"id": DEFAULT, "label": "GPT-OSS 120B", "reasoning": True, "context_window": 131072}
    assert provider.has_model("qwen/qwen3.6-27b") and not provider.has_model("playai-tts")
    assert fake_groq.model_requests == [MODELS_ENDPOINT]
    provider.close()


def test_demo_provider_has_only_its_model():
    """The demo offers its one pseudo-model."""
    assert DemoProvider().has_model("demo") and not DemoProvider().has_model(DEFAULT)


def test_groq_provider_models_allow_list(fake_groq):
    """The operator's allow-list narrows the list."""
    provider = provider_for(fake_groq, allowed_models=("groq/compound",))
    assert ids(provider.models()) == [DEFAULT, "groq/compound"]
    assert not provider.has_model("openai/gpt-oss-20b")


@pytest.mark.parametrize("status", [500, 401])
def test_groq_provider_models_fall_back_to_default(fake_groq, status, caplog):
    """An unreadable list offers the configured model only; the log line names no key."""
    fake_groq.script_models(status=status)
    with caplog.at_level(logging.WARNING, logger="chatbot.providers.models"):
        assert ids(provider_for(fake_groq).models()) == [DEFAULT]
    assert caplog.records and fake_groq.api_key not in caplog.text


def test_groq_provider_models_read_is_bounded(fake_groq):
    """A provider that does not answer the list read in models_timeout: the default only."""
    fake_groq.script_models(first_byte_delay=WAIT)
    assert ids(provider_for(fake_groq, models_timeout=0.1).models()) == [DEFAULT]


@pytest.mark.parametrize(
    ("default", "effort", "model", "sent"),
    [
        ("openai/gpt-oss-120b", "low", None, "low"),
        ("openai/gpt-oss-120b", "high", "openai/gpt-oss-20b", "high"),
        ("openai/gpt-oss-120b", "medium", "groq/compound", None),
        ("openai/gpt-oss-120b", "medium", "qwen/qwen3.6-27b", None),
        ("qwen/qwen3.6-27b", "none", None, "none"),
        ("openai/gpt-oss-120b", None, None, None),
    ],
)
def test_groq_provider_sends_reasoning_effort_that_fits(fake_groq, default, effort, model, sent):
    """reasoning_effort goes with models of its family; a conversation's model of another family goes without."""
    stream = provider_for(fake_groq, model=default, reasoning_effort=effort).stream(MESSAGES, model=model)
    assert "".join(delta.text for delta in stream)
    (request,) = fake_groq.requests
    assert request["model"] == (model or default)
    assert request.get("reasoning_effort") == sent


@pytest.mark.parametrize("effort", ["max", "LOW", ""])
def test_groq_provider_refuses_unknown_reasoning_effort(fake_groq, effort):
    """An effort no family takes is a programming error, refused at construction."""
    with pytest.raises(ValueError, match="reasoning_effort"):
        provider_for(fake_groq, reasoning_effort=effort)


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

    provider = GroqProvider(os.environ["FAKE_KEY"], "openai/gpt-oss-120b", base_url=os.environ["FAKE_URL"])
    lists = []
    readers = [threading.Thread(target=lambda: lists.append([m["id"] for m in provider.models()])) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(5)
    print(json.dumps(lists))
    """
)


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_groq_provider_models_under_green_threads(fake_groq, mode):
    """Under eventlet or gevent patching, two greenlets asking at once get the list from a single read."""
    env = {**os.environ, "FAKE_KEY": fake_groq.api_key, "FAKE_URL": fake_groq.base_url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", GREEN_SCRIPT, mode], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [CHAT_IDS, CHAT_IDS]
    assert fake_groq.model_requests == [MODELS_ENDPOINT]
