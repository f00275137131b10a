"""The provider contract: what every reply provider streams (`Delta`s through a `ReplyStream`) and how it fails
(`UpstreamError`, carrying an error code: the engine chooses the sentence). OpenAI-style HTTP error mapping lives
here too, since Groq and every OpenAI-compatible server answer errors the same way.

Framework-free (no Flask). Blocking calls are sockets, `threading` and sleeps only, so it works under eventlet or
gevent monkey-patching as well as with plain threads.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import httpx

from .errors import UpstreamError, upstream_error

__all__ = ["Delta", "Provider", "ReplyStream", "UpstreamError", "upstream_error"]

_MODEL_CODES = {"model_not_found", "model_decommissioned"}
_RETRYABLE_STATUSES = {408, 409, 498}  # 498: Groq's "flex tier capacity exceeded"
# The settings a log detail tells the operator to check, per provider ({key, model, url}).
GROQ_HINTS = {"key": "GROQ_API_KEY", "model": "GROQ_MODEL", "url": "GROQ_BASE_URL"}

RetryCallback = Callable[[float, str], None]
# Called by a provider with extra `bot_status` fields while a reply waits, e.g. {"status": "queued", "position": 2}.
StatusCallback = Callable[[dict], None]


@dataclass(slots=True)
class Delta:
    """One piece of a reply: answer text and, from reasoning models, thinking kept apart; tool calls are pieces too
    (`tool_calls`: the streamed function-call pieces by index; `executed_tools`: Groq's built-in steps)."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict] | None = None
    executed_tools: list[dict] | None = None


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Per-request settings of one reply (its conversation's); None keeps the provider's own default."""

    temperature: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None

    def over(self, temperature: float | None, max_tokens: int | None, reasoning_effort: str | None
             ) -> StreamOptions:
        """These options where set, the given defaults (the operator's) elsewhere."""
        return StreamOptions(temperature if self.temperature is None else self.temperature,
                             max_tokens if self.max_tokens is None else self.max_tokens,
                             reasoning_effort if self.reasoning_effort is None else self.reasoning_effort)


NO_OPTIONS = StreamOptions()


class ReplyStream:
    """Iterable of Delta for one reply; close() aborts the upstream HTTP request at once (used by stop).

    Iterate once. Iteration raises UpstreamError on any failure, also mid-stream. After close() iteration ends
    quietly and `finish_reason` is "stopped" (unless the upstream had already finished the reply).
    """

    def __init__(self) -> None:
        """Start unfinished, with no usage or upstream rate-limit counts yet."""
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        # The upstream's x-ratelimit-remaining-* as last reported (None: not reported, e.g. the demo).
        self.rate_limits: dict[str, int | None] = {"requests": None, "tokens": None}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._started = False

    def __iter__(self) -> Iterator[Delta]:
        """Start the reply; a ReplyStream is single-use."""
        if self._started:
            raise RuntimeError("a ReplyStream can only be iterated once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[Delta]:
        """Relay deltas until the end or close(); errors caused by close() are not errors."""
        try:
            for delta in self._deltas():
                if self._closed:
                    return
                yield delta
        except Exception:
            if self._closed:
                return
            raise

    def _deltas(self) -> Iterator[Delta]:
        """Produce the reply's deltas (implemented by each provider's stream)."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self._closed

    def close(self) -> None:
        """Stop the reply now; idempotent and safe from another thread or greenlet while iterating."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.finish_reason is None:
                self.finish_reason = "stopped"
            self._abort()
        self._stop.set()

    def _abort(self) -> None:
        """Release upstream resources at close(); called with the lock held."""

    def _finish(self, reason: str) -> None:
        """Record the upstream's finish reason unless close() came first."""
        with self._lock:
            if not self._closed:
                self.finish_reason = reason


def error_from_status(status: int, body: object, headers: httpx.Headers | dict,
                      hints: dict[str, str] | None = None) -> UpstreamError:
    """Map an HTTP error response (status, parsed body, headers) to an UpstreamError.

    `body` is the whole JSON (groq SDK) or its `error` object (openai SDK); `hints` name the settings to check in
    the log detail ({key, model, url}; Groq's by default).
    """
    hints = hints or GROQ_HINTS
    error = body.get("error", body) if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {"message": body} if isinstance(body, str) else {}
    upstream_code = error.get("code")
    message = str(error.get("message") or "")[:300]
    detail = f"HTTP {status}, code={upstream_code!r}, type={error.get('type')!r}: {message}"
    retry_after = parse_retry_after(headers)
    if status in (401, 403) or upstream_code == "invalid_api_key":
        return upstream_error("upstream_auth", detail + f" (check {hints['key']})")
    if upstream_code in _MODEL_CODES or (status == 404 and upstream_code != "unknown_url"):
        return upstream_error("model_unavailable", detail + f" (check {hints['model']}, or {hints['url']})")
    if status == 404:
        return upstream_error("upstream_unavailable", detail + f" (check {hints['url']})")
    if status == 429:
        return upstream_error("upstream_rate_limited", detail, retry_after=retry_after, retryable=True)
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return upstream_error("upstream_unavailable", detail, retry_after=retry_after, retryable=True)
    return upstream_error("invalid_message", detail)


def error_from_event(error: object, hints: dict[str, str] | None = None) -> UpstreamError:
    """Map an SSE `data: {"error": ...}` event sent mid-stream to an UpstreamError."""
    hints = hints or GROQ_HINTS
    error = error if isinstance(error, dict) else {"message": str(error)}
    code, type_ = error.get("code"), error.get("type")
    detail = f"error event, code={code!r}, type={type_!r}: {str(error.get('message') or '')[:300]}"
    if code in _MODEL_CODES:
        return upstream_error("model_unavailable", detail + f" (check {hints['model']})")
    if code == "invalid_api_key":
        return upstream_error("upstream_auth", detail + f" (check {hints['key']})")
    if code == "rate_limit_exceeded":
        return upstream_error("upstream_rate_limited", detail, retryable=True)
    return upstream_error("upstream_unavailable", detail, retryable=True)


def parse_retry_after(headers: httpx.Headers | dict) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None when absent or bad."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def ratelimit_remaining(headers: httpx.Headers | dict) -> dict[str, int | None]:
    """The upstream's `x-ratelimit-remaining-requests` / `-tokens` as ints (None when absent or unreadable)."""
    remaining: dict[str, int | None] = {}
    for kind in ("requests", "tokens"):
        value = headers.get(f"x-ratelimit-remaining-{kind}")
        try:
            remaining[kind] = max(int(float(value)), 0) if value is not None else None
        except ValueError:
            remaining[kind] = None
    return remaining


def output_tokens_per_second(usage: dict | None) -> float | None:
    """Output speed from the upstream's own timing (Groq: completion_tokens / completion_time), else None."""
    if not isinstance(usage, dict):
        return None
    tokens, seconds = usage.get("completion_tokens"), usage.get("completion_time")
    if not isinstance(tokens, int | float) or not isinstance(seconds, int | float) or tokens <= 0 or seconds <= 0:
        return None
    return tokens / seconds


class Provider(Protocol):
    """What the turn engine needs of a provider (Groq, OpenAI-compatible, local, demo)."""

    name: str  # "groq" | "openai" | "local" | "demo"
    demo: bool  # True only for the offline demo (the page labels it)
    model: str  # the default model id
    notice: str  # a sentence for the page and the welcome about who answers ("" when nothing needs saying)

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
        """Prepare one reply to `messages` (system prompt first) with `model` (None: the default) and the
        conversation's `options` (temperature, reply length cap, reasoning effort) over the provider's own,
        offering `tools` (OpenAI-format entries; only providers that take tools are ever given any)."""
        ...

    def models(self) -> list[dict]:
        """The models users may pick: [{id, label, reasoning, context_window}] (the default among them)."""
        ...

    def close(self) -> None:
        """Release pooled connections or loaded weights."""
        ...
