"""The generic dialect of the OpenAI-dialect provider: any server speaking `/v1/chat/completions` (Ollama, vLLM,
llama.cpp's llama-server, LM Studio, OpenRouter, OpenAI itself) through the official `openai` SDK, which — unlike the
groq SDK — takes the base URL as given; the model may be the server's first listed one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import openai
from openai._constants import RAW_RESPONSE_HEADER
from openai._response import ResponseContextManager
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from .base import UpstreamError, upstream_error
from .models import ModelRegistry
from .openai_dialect import OpenAIDialectProvider

log = logging.getLogger(__name__)

# Sent when OPENAI_API_KEY is unset: local servers ignore the header, and the SDK refuses to run without one.
NO_KEY = "no-key"
# vLLM and llama.cpp stream thinking as `reasoning_content`; newer servers (and OpenRouter) as `reasoning`.
REASONING_FIELDS = ("reasoning_content", "reasoning")
HINTS = {"key": "OPENAI_API_KEY", "model": "OPENAI_MODEL", "url": "OPENAI_BASE_URL (it usually ends in /v1)"}


class OpenAICompatProvider(OpenAIDialectProvider):
    """Streams chat completions from an OpenAI-compatible server through the official openai SDK."""

    name = "openai"
    sdk = openai
    sdk_client_class = openai.OpenAI
    raw_response_header = RAW_RESPONSE_HEADER
    response_manager = ResponseContextManager
    completion_types = (ChatCompletion, ChatCompletionChunk)
    chat_path = "/chat/completions"
    request_options = {"security": {"bearer_auth": True}}
    body_extras = {"stream_options": {"include_usage": True}}
    reasoning_fields = REASONING_FIELDS
    hints = HINTS
    connection_hint = f"; check {HINTS['url']}"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_wait: float = 20.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        backoff: float = 0.5,
        allowed_models: Sequence[str] = (),
        models_ttl: float = 300.0,
        models_timeout: float = 10.0,
    ):
        """Build the SDK client for `base_url` (e.g. http://localhost:11434/v1); `timeout` is per read.

        Without `model` the server's first listed model is used, looked up on first need. `allowed_models` (empty:
        every chat model the server lists) and `models_ttl` shape the list users pick from.
        """
        if not base_url:
            raise ValueError("OpenAICompatProvider needs a base URL such as http://localhost:11434/v1")
        super().__init__(model=model or "", api_key=api_key or NO_KEY, base_url=base_url.rstrip("/"),
                         timeout=timeout, connect_timeout=connect_timeout, max_retries=max_retries,
                         max_retry_wait=max_retry_wait, temperature=temperature, max_tokens=max_tokens,
                         backoff=backoff, models_timeout=models_timeout)
        self._api_key = api_key or ""  # what a log detail must never show (NO_KEY is no secret)
        self._allowed_models, self._models_ttl = tuple(allowed_models), models_ttl
        self._registry: ModelRegistry | None = None

    def __repr__(self) -> str:
        """Name the provider, server and model, never the key."""
        return f"<OpenAICompatProvider base_url={str(self._client.base_url)!r} model={self.model!r}>"

    def default_model(self) -> str:
        """The configured model, else the server's first listed one (remembered); raises UpstreamError."""
        if not self.model:
            listed = self.list_models()
            if not listed:
                raise upstream_error("model_unavailable", f"the server lists no models (set {HINTS['model']})")
            self.model = listed[0]["id"]
            log.info("openai model=%s (the server's first; set OPENAI_MODEL to choose)", self.model)
        return self.model

    def list_models(self) -> list[dict]:
        """The server's models from `GET /models`, as listed ({id, context_window?, ...}); raises UpstreamError."""
        try:
            response = self._client.models.with_raw_response.list(timeout=self._models_timeout)
            body = response.http_response.json()
        except Exception as exc:
            raise self.map_exception(exc) from exc
        entries = body.get("data") if isinstance(body, dict) else None
        return [{**entry, "context_window": _context_window(entry)} for entry in entries or []
                if isinstance(entry, dict) and isinstance(entry.get("id"), str)]

    def models(self) -> list[dict]:
        """The server's chat models the operator allows, the default first (cached; see ModelRegistry)."""
        registry = self._models()
        return registry.models() if registry is not None else []

    def has_model(self, model_id: str) -> bool:
        """Whether users may pick `model_id` for a conversation."""
        registry = self._models()
        return registry is not None and registry.has(model_id)

    def _models(self) -> ModelRegistry | None:
        """The model registry, made once the default model is known (it is always offered first); None until then."""
        if self._registry is None:
            try:
                default = self.default_model()
            except UpstreamError as exc:
                log.warning("openai model list unavailable code=%s detail=%s", exc.code, exc.detail)
                return None
            self._registry = ModelRegistry(self.list_models, default, allowed=self._allowed_models,
                                           ttl=self._models_ttl, name="the OpenAI-compatible server")
        return self._registry


def _context_window(entry: dict) -> int | None:
    """The context length a server reports for a model, under whichever name it uses (vLLM: max_model_len,
    llama-server: meta.n_ctx_train, Groq and OpenRouter: context_window / context_length)."""
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    for value in (entry.get("context_window"), entry.get("max_model_len"), entry.get("context_length"),
                  meta.get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None
