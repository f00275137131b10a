"""Reply providers behind one contract (`base`): Groq, any OpenAI-compatible server, a local model, the demo.

`LLM_PROVIDER` picks one; `auto` takes the first that is configured or can run: Groq (GROQ_API_KEY), the
OpenAI-compatible server (OPENAI_BASE_URL), the local model (llama-cpp-python installed), else the demo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import Delta, Provider, ReplyStream, StreamOptions, UpstreamError
from .demo import DemoProvider
from .groq import DEFAULT_MODEL, GroqProvider

__all__ = ["DEFAULT_MODEL", "Delta", "DemoProvider", "GroqProvider", "Provider", "ReplyStream", "StreamOptions",
           "UpstreamError", "choose_provider", "make_provider"]


def choose_provider(settings: Mapping[str, Any],
                    local_problem: Callable[[str | None], str | None] | None = None) -> tuple[str, str | None]:
    """The provider name LLM_PROVIDER asks for, and (for an `auto` demo) why the local model cannot serve.

    `local_problem(model_path)` says why the local model cannot run (None: it can); asked only when needed.
    """
    choice = settings.get("LLM_PROVIDER") or "auto"
    if choice != "auto":
        return choice, None
    if (settings.get("GROQ_API_KEY") or "").strip():
        return "groq", None
    if settings.get("OPENAI_BASE_URL"):
        return "openai", None
    if local_problem is None:
        from .local import runtime_problem as local_problem
    problem = local_problem(settings.get("LOCAL_MODEL_PATH"))
    return ("demo", problem) if problem else ("local", None)


def make_provider(settings: Mapping[str, Any]) -> Provider:
    """Build the provider the settings choose; with `auto`, a local model that fails to load falls back to the demo."""
    name, reason = choose_provider(settings)
    if name == "groq":
        return GroqProvider(settings["GROQ_API_KEY"].strip(), settings.get("GROQ_MODEL") or DEFAULT_MODEL,
                            base_url=settings.get("GROQ_BASE_URL"), **_groq_options(settings))
    if name == "openai":
        from .openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(settings["OPENAI_BASE_URL"], settings.get("OPENAI_MODEL"),
                                    api_key=settings.get("OPENAI_API_KEY"),
                                    timeout=settings.get("OPENAI_TIMEOUT", 120.0))
    if name == "local":
        from .local import LocalModelUnavailable, LocalProvider

        try:
            return LocalProvider(settings.get("LOCAL_MODEL_PATH"), concurrency=settings.get("LOCAL_CONCURRENCY", 1),
                                 context=settings.get("LOCAL_CONTEXT", 4096), threads=settings.get("LOCAL_THREADS", 0),
                                 max_tokens=settings.get("LOCAL_MAX_TOKENS", 512),
                                 temperature=settings.get("LOCAL_TEMPERATURE", 0.2),
                                 system_prompt=settings.get("LOCAL_SYSTEM_PROMPT", ""))
        except LocalModelUnavailable as exc:
            if settings.get("LLM_PROVIDER") == "local":
                raise
            reason = str(exc)
    return DemoProvider(token_delay=settings.get("DEMO_TOKEN_DELAY", 0.02), reason=reason)


def _groq_options(settings: Mapping[str, Any]) -> dict:
    """The Groq provider's timeout, retry, sampling and model-list options that are set."""
    options = {"timeout": settings.get("GROQ_TIMEOUT"), "max_retry_wait": settings.get("GROQ_MAX_RETRY_WAIT"),
               "temperature": settings.get("GROQ_TEMPERATURE"), "max_tokens": settings.get("GROQ_MAX_TOKENS"),
               "reasoning_effort": settings.get("GROQ_REASONING_EFFORT"),
               "allowed_models": settings.get("GROQ_MODELS"), "models_ttl": settings.get("GROQ_MODELS_TTL")}
    return {key: value for key, value in options.items() if value is not None}
