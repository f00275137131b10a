"""The Groq provider: chat completions streamed through the official groq SDK, read as raw SSE lines (`sse`)."""

from __future__ import annotations

import logging

import groq
import httpx

from .base import ReplyStream, RetryCallback, StatusCallback, UpstreamError, error_from_status, upstream_error
from .sse import ChatCompletionStream, RetryPolicy

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
    ):
        """Build the SDK client; base_url None lets the SDK read GROQ_BASE_URL; `timeout` is per read."""
        if not api_key:
            raise ValueError("GroqProvider needs an API key; use DemoProvider without one")
        self.model = model or DEFAULT_MODEL
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key
        # Retries are ours (only before the first delta); SDK retries would stack under them.
        self._client = groq.Groq(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )

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
    ) -> ReplyStream:
        """Prepare one reply to `messages` (system prompt included); the request starts on iteration."""
        request: dict = {"model": model or self.model, "messages": list(messages), "stream": True}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_tokens is not None:
            request["max_completion_tokens"] = self.max_tokens
        return ChatCompletionStream(self, request, on_retry)

    def models(self) -> list[dict]:
        """The configured model only (the provider's model list is read by the model registry)."""
        return [{"id": self.model, "label": self.model, "reasoning": False, "context_window": None}]

    def open_stream(self, request: dict):
        """The SDK's raw streaming response for one request (a context manager; nothing is parsed as objects)."""
        return self._client.chat.completions.with_streaming_response.create(**request)

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
