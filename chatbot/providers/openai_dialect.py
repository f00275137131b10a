"""One provider for every server speaking the OpenAI chat-completions dialect, through an official SDK (the `openai`
one, or the `groq` one for Groq), streams read as raw SSE lines by `sse.ChatCompletionStream`. What differs between
servers is a small dialect: the SDK, the path, the name of the token limit, extra request fields, where thinking
arrives, and which settings a log detail points at. Groq's dialect is in groq.py, the generic one in openai_compat.py.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, ClassVar

import httpx

from .base import (
    NO_OPTIONS,
    ReplyStream,
    RetryCallback,
    StatusCallback,
    StreamOptions,
    UpstreamError,
    error_from_status,
    upstream_error,
)
from .sse import ChatCompletionStream, RetryPolicy
from .transport import sdk_client


class OpenAIDialectProvider(RetryPolicy):
    """Streams chat completions through an OpenAI-style SDK; subclasses set the dialect and the model list."""

    name: ClassVar[str]
    demo = False
    notice = ""
    # The dialect: the SDK module (its client, HTTP client, Stream and errors), its raw-response helpers, the chat
    # path and extra request options, the token-limit field, fixed extra body fields, thinking's delta fields.
    sdk: ClassVar[Any]
    sdk_client_class: ClassVar[Any]
    raw_response_header: ClassVar[str]
    response_manager: ClassVar[Any]
    completion_types: ClassVar[tuple[Any, Any]]
    chat_path: ClassVar[str]
    request_options: ClassVar[dict] = {}
    token_limit_field: ClassVar[str] = "max_tokens"
    body_extras: ClassVar[dict] = {}
    reasoning_fields: ClassVar[tuple[str, ...] | None] = None  # None: the stream's default
    hints: ClassVar[dict[str, str]]
    connection_hint: ClassVar[str] = ""  # added to a connection failure's log detail
    malformed: ClassVar[str] = "malformed response"

    def __init__(self, *, model: str, api_key: str, base_url: str | None, timeout: float, connect_timeout: float,
                 max_retries: int, max_retry_wait: float, temperature: float | None, max_tokens: int | None,
                 backoff: float, models_timeout: float):
        """Keep the retry and sampling options and build the SDK client (`timeout` is per read)."""
        self.model = model
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key
        self._models_timeout = models_timeout
        # Retries are ours (only before the first delta); SDK retries would stack under them.
        self._client = sdk_client(self.sdk_client_class, self.sdk.DefaultHttpxClient, api_key=api_key,
                                  base_url=base_url, max_retries=0,
                                  timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        on_retry: RetryCallback | None = None,
        on_status: StatusCallback | None = None,
        options: StreamOptions | None = None,
        tools: list[dict] | None = None,
    ) -> ReplyStream:
        """Prepare one reply to `messages` (system prompt included) with the conversation's `options` over the
        operator's, offering `tools`; the request starts on iteration."""
        request: dict = {"model": model or self.model, "messages": list(messages), "stream": True,
                         **copy.deepcopy(self.body_extras)}
        options = (options or NO_OPTIONS).over(self.temperature, self.max_tokens, None)
        if options.temperature is not None:
            request["temperature"] = options.temperature
        if options.max_tokens is not None:
            request[self.token_limit_field] = options.max_tokens
        if tools:  # the turn's offered tools (chatbot.tools); their calls come back as deltas
            request["tools"] = tools
        self.tune(request, options)
        if self.reasoning_fields is None:
            return ChatCompletionStream(self, request, on_retry)
        return ChatCompletionStream(self, request, on_retry, reasoning_fields=self.reasoning_fields)

    def tune(self, request: dict, options: StreamOptions) -> None:
        """Add the dialect's per-model fields to a request (none by default: a reasoning effort is not sent, as
        servers differ on it)."""

    def default_model(self) -> str:
        """The model a request without one uses."""
        return self.model

    def open_stream(self, request: dict):
        """The SDK's raw streaming response for one request (a context manager; nothing is parsed as objects).

        This is what `chat.completions.with_streaming_response.create` does, less its per-request transform of the
        body against the SDK's types: our body is plain JSON already, and the transform walks every message of the
        context (about 0.3 ms per message here, several ms a turn). The SDK still does auth, URL, headers, timeouts
        and error statuses.
        """
        if not request["model"]:
            request["model"] = self.default_model()
        completion, chunk = self.completion_types
        return self.response_manager(functools.partial(
            self._client.post, self.chat_path, body=request,
            options={"headers": {self.raw_response_header: "stream"}, **self.request_options}, cast_to=completion,
            stream=True, stream_cls=self.sdk.Stream[chunk]))

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._client.close()

    def map_exception(self, exc: BaseException) -> UpstreamError:
        """Turn an SDK or transport exception into an UpstreamError whose detail never holds the key."""
        if isinstance(exc, UpstreamError):
            return exc
        if isinstance(exc, self.sdk.APIStatusError):
            error = error_from_status(exc.status_code, exc.body, exc.response.headers, hints=self.hints)
        elif isinstance(exc, self.sdk.APITimeoutError | httpx.TimeoutException):
            error = upstream_error("upstream_unavailable", f"timed out ({type(exc).__name__})", retryable=True)
        elif isinstance(exc, self.sdk.APIConnectionError):
            cause = exc.__cause__ or exc
            error = upstream_error("upstream_unavailable",
                                   f"connection failed ({type(cause).__name__}: {cause}{self.connection_hint})",
                                   retryable=True)
        elif isinstance(exc, httpx.HTTPError | OSError):
            error = upstream_error("upstream_unavailable", f"stream broke ({type(exc).__name__}: {exc})",
                                   retryable=True)
        elif isinstance(exc, ValueError):
            error = upstream_error("upstream_unavailable", f"{self.malformed} ({type(exc).__name__}: {exc})")
        else:
            error = upstream_error("upstream_unavailable", f"unexpected {type(exc).__name__}: {exc}")
        if self._api_key:
            error.detail = error.detail.replace(self._api_key, "[redacted]")
        return error
