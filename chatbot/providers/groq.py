"""The Groq provider: chat completions streamed through the official groq SDK, read as raw SSE lines (`sse`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import groq
import httpx
from groq._constants import RAW_RESPONSE_HEADER
from groq._response import ResponseContextManager
from groq.types.chat import ChatCompletion, ChatCompletionChunk

from .base import ReplyStream, RetryCallback, StatusCallback, UpstreamError, error_from_status, upstream_error
from .models import ALL_EFFORTS, ModelRegistry, effort_for
from .sse import ChatCompletionStream, RetryPolicy
from .transport import sdk_client

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/gpt-oss-120b"  # llama-3.3-70b-versatile was decommissioned 2026-08-16


class GroqProvider(RetryPolicy):
    """Streams chat completions from Groq (or anything speaking its API) through the official SDK."""

    name = "groq"
    demo = False
    notice = ""

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
        self.model = model or DEFAULT_MODEL
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.reasoning_effort = reasoning_effort
        self._api_key = api_key
        self._models_timeout = models_timeout
        self._registry = ModelRegistry(self._list_models, self.model, allowed=allowed_models, ttl=models_ttl,
                                       name="Groq")
        # Retries are ours (only before the first delta); SDK retries would stack under them.
        self._client = sdk_client(groq.Groq, groq.DefaultHttpxClient, api_key=api_key, base_url=base_url,
                                  max_retries=0, timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def __repr__(self) -> str:
        """Name the provider and model, never the key."""
        return f"<GroqProvider model={self.model!r}>"

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        on_retry: RetryCallback | None = None,
        on_status: StatusCallback | None = None,
        tools: list[dict] | None = None,
    ) -> ReplyStream:
        """Prepare one reply to `messages` (system prompt included); the request starts on iteration."""
        request: dict = {"model": model or self.model, "messages": list(messages), "stream": True}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_tokens is not None:
            request["max_completion_tokens"] = self.max_tokens
        if tools:  # the turn's offered tools (chatbot.tools); their calls come back as deltas
            request["tools"] = tools
        effort = effort_for(request["model"], self.reasoning_effort)
        if effort is not None:  # a conversation's model of another family simply goes without
            request["reasoning_effort"] = effort
        return ChatCompletionStream(self, request, on_retry)

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

    def open_stream(self, request: dict):
        """The SDK's raw streaming response for one request (a context manager; nothing is parsed as objects).

        This is what `chat.completions.with_streaming_response.create` does, less its per-request transform of the
        body against the SDK's types: our body is plain JSON already, and the transform walks every message of the
        context (about 0.3 ms per message here, several ms a turn). The SDK still does auth, URL, headers, timeouts
        and error statuses.
        """
        return ResponseContextManager(functools.partial(
            self._client.post, "/openai/v1/chat/completions", body=request,
            options={"headers": {RAW_RESPONSE_HEADER: "stream"}}, cast_to=ChatCompletion, stream=True,
            stream_cls=groq.Stream[ChatCompletionChunk]))

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._client.close()

    def map_exception(self, exc: BaseException) -> UpstreamError:
        """Turn an SDK or transport exception into an UpstreamError whose detail never holds the key."""
        if isinstance(exc, groq.APIStatusError):
            error = error_from_status(exc.status_code, exc.body, exc.response.headers)
        elif isinstance(exc, groq.APITimeoutError | httpx.TimeoutException):
            error = upstream_error("upstream_unavailable", f"timed out ({type(exc).__name__})", retryable=True)
        elif isinstance(exc, groq.APIConnectionError):
            cause = exc.__cause__ or exc
            error = upstream_error(
                "upstream_unavailable", f"connection failed ({type(cause).__name__}: {cause})", retryable=True
            )
        elif isinstance(exc, httpx.HTTPError | OSError):
            detail = f"stream broke ({type(exc).__name__}: {exc})"
            error = upstream_error("upstream_unavailable", detail, retryable=True)
        elif isinstance(exc, ValueError):
            error = upstream_error("upstream_unavailable", f"malformed stream ({type(exc).__name__}: {exc})")
        else:
            error = upstream_error("upstream_unavailable", f"unexpected {type(exc).__name__}: {exc}")
        error.detail = error.detail.replace(self._api_key, "[redacted]")
        return error
