"""The Groq dialect of the OpenAI-dialect provider: the official groq SDK, Groq's path and token-limit field, and
`reasoning_effort` for the model families that take it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import groq
from groq._constants import RAW_RESPONSE_HEADER
from groq._response import ResponseContextManager
from groq.types.chat import ChatCompletion, ChatCompletionChunk

from ..model_families import DEFAULT_GROQ_MODEL
from .base import GROQ_HINTS, StreamOptions
from .models import ALL_EFFORTS, ModelRegistry, effort_for
from .openai_dialect import OpenAIDialectProvider

log = logging.getLogger(__name__)

DEFAULT_MODEL = DEFAULT_GROQ_MODEL  # the settings' default for GROQ_MODEL


class GroqProvider(OpenAIDialectProvider):
    """Streams chat completions from Groq (or anything speaking its API) through the official SDK."""

    name = "groq"
    sdk = groq
    sdk_client_class = groq.Groq
    raw_response_header = RAW_RESPONSE_HEADER
    response_manager = ResponseContextManager
    completion_types = (ChatCompletion, ChatCompletionChunk)
    chat_path = "/openai/v1/chat/completions"
    token_limit_field = "max_completion_tokens"
    hints = GROQ_HINTS
    malformed = "malformed stream"

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_wait: float = 20.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        backoff: float = 0.5,
        reasoning_effort: str | None = None,
        allowed_models: Sequence[str] = (),
        models_ttl: float = 300.0,
        models_timeout: float = 10.0,
    ):
        """Build the SDK client; base_url None lets the SDK read GROQ_BASE_URL; `timeout` is per read.

        `reasoning_effort` is sent with models whose family takes it; `allowed_models` (empty: every chat model)
        and `models_ttl` shape the model list, read with at most `models_timeout` seconds per attempt.
        """
        if not api_key:
            raise ValueError("GroqProvider needs an API key; use DemoProvider without one")
        if reasoning_effort is not None and reasoning_effort not in ALL_EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {', '.join(ALL_EFFORTS)}")
        super().__init__(model=model or DEFAULT_MODEL, api_key=api_key, base_url=base_url, timeout=timeout,
                         connect_timeout=connect_timeout, max_retries=max_retries, max_retry_wait=max_retry_wait,
                         temperature=temperature, max_tokens=max_tokens, backoff=backoff,
                         models_timeout=models_timeout)
        self.reasoning_effort = reasoning_effort
        self._registry = ModelRegistry(self._list_models, self.model, allowed=allowed_models, ttl=models_ttl,
                                       name="Groq")

    def __repr__(self) -> str:
        """Name the provider and model, never the key."""
        return f"<GroqProvider model={self.model!r}>"

    def tune(self, request: dict, options: StreamOptions) -> None:
        """Send `reasoning_effort` with a model whose family takes it (a conversation's model of another family
        simply goes without)."""
        effort = effort_for(request["model"], options.reasoning_effort or self.reasoning_effort)
        if effort is not None:
            request["reasoning_effort"] = effort

    def models(self) -> list[dict]:
        """Groq's chat models the operator allows, the default first (cached; see ModelRegistry)."""
        return self._registry.models()

    def has_model(self, model_id: str) -> bool:
        """Whether users may pick `model_id` for a conversation."""
        return self._registry.has(model_id)

    def _list_models(self) -> list[dict]:
        """Read `GET /openai/v1/models` through the SDK (bounded by models_timeout); errors come back redacted."""
        try:
            listed = self._client.models.list(timeout=self._models_timeout)
        except Exception as exc:
            raise self.map_exception(exc) from exc
        return [model.model_dump() for model in listed.data]
