"""Choosing the provider: LLM_PROVIDER (auto | groq | openai | local | demo), the settings each one needs, and
what `auto` picks for each combination of settings."""

from __future__ import annotations

import pytest

from chatbot.config import ConfigError, load_settings
from chatbot.providers import DemoProvider, GroqProvider, choose_provider, make_provider
from chatbot.providers.openai_compat import OpenAICompatProvider

KEY = "gsk_test_key_0123456789"
URL = "http://127.0.0.1:9/v1"
NO_RUNTIME = "llama-cpp-python is not installed: run `make local`"


def settings_with(tmp_path, **environ) -> dict:
    """Validated settings from `environ` alone (no .env, no process environment)."""
    return load_settings(tmp_path, environ={"SECRET_KEY": "s" * 32, **environ})


@pytest.mark.parametrize(
    ("groq_key", "openai_url", "local_runs", "expected"),
    [
        (True, True, True, "groq"),
        (True, False, False, "groq"),
        (True, True, False, "groq"),
        (True, False, True, "groq"),
        (False, True, True, "openai"),
        (False, True, False, "openai"),
        (False, False, True, "local"),
        (False, False, False, "demo"),
    ],
)
def test_choose_provider_auto_picks_in_order(tmp_path, groq_key, openai_url, local_runs, expected):
    environ = {"GROQ_API_KEY": KEY if groq_key else "", "OPENAI_BASE_URL": URL if openai_url else ""}
    settings = settings_with(tmp_path, **environ)
    asked = []

    def local_problem(path):
        asked.append(path)
        return None if local_runs else NO_RUNTIME

    name, reason = choose_provider(settings, local_problem)
    assert name == expected
    assert reason == (NO_RUNTIME if expected == "demo" else None)
    assert bool(asked) == (not groq_key and not openai_url)  # the local runtime is probed only when it matters


@pytest.mark.parametrize("choice", ["groq", "openai", "local", "demo"])
def test_choose_provider_explicit_choice_wins(tmp_path, choice):
    settings = settings_with(tmp_path, GROQ_API_KEY=KEY, OPENAI_BASE_URL=URL)
    settings["LLM_PROVIDER"] = choice  # set after validation: the choice is what is tested, not local's runtime
    assert choose_provider(settings, lambda path: None) == (choice, None)


def test_choose_provider_blank_key_is_no_key(tmp_path):
    settings = settings_with(tmp_path, GROQ_API_KEY="   ")
    assert choose_provider(settings, lambda path: NO_RUNTIME) == ("demo", NO_RUNTIME)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LLM_PROVIDER": "groq"}, "LLM_PROVIDER=groq needs GROQ_API_KEY"),
        ({"LLM_PROVIDER": "openai"}, "LLM_PROVIDER=openai needs OPENAI_BASE_URL"),
        ({"LLM_PROVIDER": "local", "LOCAL_MODEL_PATH": "/nowhere/model.gguf"}, "LLM_PROVIDER=local cannot run"),
        ({"LLM_PROVIDER": "ollama"}, "LLM_PROVIDER is invalid"),
        ({"OPENAI_BASE_URL": "localhost:11434/v1"}, "OPENAI_BASE_URL is invalid"),
        ({"LOCAL_CONCURRENCY": "0"}, "LOCAL_CONCURRENCY is invalid"),
        ({"LOCAL_CONTEXT": "100"}, "LOCAL_CONTEXT is invalid"),
        ({"LOCAL_TEMPERATURE": "3"}, "LOCAL_TEMPERATURE is invalid"),
    ],
    ids=["groq-no-key", "openai-no-url", "local-bad-path", "unknown", "url-no-scheme", "concurrency", "context",
         "temperature"],
)
def test_provider_settings_refuse_what_cannot_work(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        settings_with(tmp_path, **environ)


def test_provider_settings_secret_key_is_never_the_openai_key(tmp_path):
    with pytest.raises(ConfigError, match="must not be an API key"):
        load_settings(tmp_path, environ={"SECRET_KEY": "sk-" + "b" * 40, "OPENAI_API_KEY": "sk-" + "b" * 40})


def test_provider_settings_openai_key_is_not_echoed(tmp_path):
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, OPENAI_API_KEY="sk-secret-value", OPENAI_TIMEOUT="0")
    assert "sk-secret-value" not in str(caught.value)


def test_make_provider_builds_groq_with_its_options(tmp_path):
    settings = settings_with(tmp_path, GROQ_API_KEY=f" {KEY} ", GROQ_MODEL="m", GROQ_BASE_URL="http://127.0.0.1:9",
                             GROQ_TEMPERATURE="0.5", OPENAI_BASE_URL=URL)
    provider = make_provider(settings)
    assert isinstance(provider, GroqProvider) and provider.name == "groq" and not provider.demo
    assert provider.model == "m" and provider.temperature == 0.5 and provider.notice == ""


def test_make_provider_builds_openai_compatible(tmp_path):
    settings = settings_with(tmp_path, OPENAI_BASE_URL=URL + "/", OPENAI_MODEL="llama3.2", OPENAI_API_KEY="sk-x")
    provider = make_provider(settings)
    assert isinstance(provider, OpenAICompatProvider) and provider.name == "openai"
    assert provider.model == "llama3.2" and "127.0.0.1:9/v1" in repr(provider) and "sk-x" not in repr(provider)


def test_make_provider_demo_says_why_and_how_to_switch(tmp_path, monkeypatch):
    monkeypatch.setattr("chatbot.providers.local.runtime_problem", lambda path=None: NO_RUNTIME)
    provider = make_provider(settings_with(tmp_path, DEMO_TOKEN_DELAY="0.001"))
    assert isinstance(provider, DemoProvider) and provider.demo and provider.token_delay == 0.001
    assert provider.reason == NO_RUNTIME
    assert "GROQ_API_KEY" in provider.notice and "OPENAI_BASE_URL" in provider.notice
    assert "make local" in provider.notice


def test_make_provider_auto_falls_back_when_the_local_model_fails_to_load(tmp_path, monkeypatch):
    from chatbot.providers import local

    def broken(*args, **kwargs):
        raise local.LocalModelUnavailable("model.gguf could not be loaded (bad file): check LOCAL_MODEL_PATH")

    monkeypatch.setattr(local, "runtime_problem", lambda path=None: None)
    monkeypatch.setattr(local, "LocalProvider", broken)
    provider = make_provider(settings_with(tmp_path))
    assert provider.demo and "could not be loaded" in provider.reason
    explicit = settings_with(tmp_path)
    explicit["LLM_PROVIDER"] = "local"
    with pytest.raises(local.LocalModelUnavailable):
        make_provider(explicit)


def test_make_provider_auto_serves_the_local_model(tmp_path, local_model):
    provider = make_provider(settings_with(tmp_path, LOCAL_TEMPERATURE="0"))
    assert provider.name == "local" and not provider.demo
    assert provider.model == "SmolLM2-135M-Instruct.Q4_1" and provider.has_model(provider.model)
    assert "facts wrong" in provider.notice


@pytest.mark.parametrize("choice", ["demo", "groq"])
def test_welcome_and_session_say_who_answers(make_app, received, choice):
    from chatbot import socketio

    client = socketio.test_client(make_app(LLM_PROVIDER=choice))
    events = received(client)
    hello = events.wait("session_id")
    welcome = events.wait("bot_message", lambda d: d.get("welcome"))["message"]
    assert hello["provider"] == choice and hello["demo"] is (choice == "demo")
    if choice == "demo":
        assert hello["notice"] in welcome and "GROQ_API_KEY" in welcome and "make local" in welcome
    else:
        assert hello["notice"] == "" and "(" not in welcome
    client.disconnect()
