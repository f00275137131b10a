"""The OpenAI-compatible provider: any server speaking `/v1/chat/completions` (Ollama, vLLM, llama.cpp's
llama-server, LM Studio, OpenRouter, OpenAI itself) through the official `openai` SDK, which — unlike the groq SDK —
takes the base URL as given. Streams are read as raw SSE lines by the shared `sse.ChatCompletionStream`.
"""

from __future__ import annotations

import logging

import httpx
import openai

from .base import ReplyStream, RetryCallback, StatusCallback, UpstreamError, error_from_status, upstream_error
from .sse import ChatCompletionStream, RetryPolicy

log = logging.getLogger(__name__)

# Sent when OPENAI_API_KEY is unset: local servers ignore the header, and the SDK refuses to run without one.
NO_KEY = "no-key"
# vLLM and llama.cpp stream thinking as `reasoning_content`; newer servers (and OpenRouter) as `reasoning`.
REASONING_FIELDS = ("reasoning_content", "reasoning")
HINTS = {"key": "OPENAI_API_KEY", "model": "OPENAI_MODEL", "url": "OPENAI_BASE_URL (it usually ends in /v1)"}


class OpenAICompatProvider(RetryPolicy):
    """Streams chat completions from an OpenAI-compatible server through the official openai SDK."""

    name = "openai"
    demo = False
    notice = ""
    hints = HINTS

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
    ):
        """Build the SDK client for `base_url` (e.g. http://localhost:11434/v1); `timeout` is per read.

        Without `model` the server's first listed model is used, looked up on first need.
        """
        if not base_url:
            raise ValueError("OpenAICompatProvider needs a base URL such as http://localhost:11434/v1")
        self.model = model or ""
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key or ""
        # Retries are ours (only before the first delta); SDK retries would stack under them.
        self._client = openai.OpenAI(api_key=api_key or NO_KEY, base_url=base_url.rstrip("/"), max_retries=0,
                                     timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def __repr__(self) -> str:
        """Name the provider, server and model, never the key."""
        return f"<OpenAICompatProvider base_url={str(self._client.base_url)!r} model={self.model!r}>"

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        on_retry: RetryCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> ReplyStream:
        """Prepare one reply to `messages`; the request starts on iteration."""
        request: dict = {"model": model or self.model, "messages": list(messages), "stream": True,
                         "stream_options": {"include_usage": True}}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        return ChatCompletionStream(self, request, on_retry, reasoning_fields=REASONING_FIELDS)

    def open_stream(self, request: dict):
        """The SDK's raw streaming response for one request (a context manager; nothing is parsed as objects)."""
        if not request["model"]:
            request["model"] = self.default_model()
        return self._client.chat.completions.with_streaming_response.create(**request)

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
        """The server's models from `GET /models`: [{id, label, reasoning, context_window}]; raises UpstreamError."""
        try:
            response = self._client.models.with_raw_response.list()
            body = response.http_response.json()
        except Exception as exc:
            raise self.map_exception(exc) from exc
        entries = body.get("data") if isinstance(body, dict) else None
        models = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                models.append({"id": entry["id"], "label": entry["id"], "reasoning": False,
                               "context_window": _context_window(entry)})
        return models

    def models(self) -> list[dict]:
        """The configured model only (the server's list is read by the model registry through `list_models`)."""
        return [{"id": self.model, "label": self.model, "reasoning": False, "context_window": None}]

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._client.close()

    def map_exception(self, exc: BaseException) -> UpstreamError:
        """Turn an SDK or transport exception into an UpstreamError whose detail never holds the key."""
        if isinstance(exc, UpstreamError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            error = error_from_status(exc.status_code, exc.body, exc.response.headers, hints=HINTS)
        elif isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            error = upstream_error("upstream_unavailable", f"timed out ({type(exc).__name__})", retryable=True)
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            error = upstream_error("upstream_unavailable",
                                   f"connection failed ({type(cause).__name__}: {cause}; check {HINTS['url']})",
                                   retryable=True)
        elif isinstance(exc, httpx.HTTPError | OSError):
            error = upstream_error("upstream_unavailable", f"stream broke ({type(exc).__name__}: {exc})",
                                   retryable=True)
        elif isinstance(exc, ValueError):
            error = upstream_error("upstream_unavailable", f"malformed response ({type(exc).__name__}: {exc})")
        else:
            error = upstream_error("upstream_unavailable", f"unexpected {type(exc).__name__}: {exc}")
        if self._api_key:
            error.detail = error.detail.replace(self._api_key, "[redacted]")
        return error


def _context_window(entry: dict) -> int | None:
    """The context length a server reports for a model, under whichever name it uses."""
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    for value in (entry.get("context_window"), entry.get("max_model_len"), entry.get("context_length"),
                  meta.get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None
