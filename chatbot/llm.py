"""Reply providers: the Groq chat-completions client and the offline demo, both streaming `Delta`s.

Framework-free (no Flask). Its only blocking calls are sockets, `threading` and sleeps, so it works unchanged
under eventlet or gevent monkey-patching as well as with plain threads.
"""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import groq
import httpx

if TYPE_CHECKING:
    from .demo import DemoProvider

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/gpt-oss-120b"  # llama-3.3-70b-versatile was decommissioned 2026-08-16

USER_MESSAGES = {
    "upstream_unavailable": "The AI service is unavailable right now. Please try again in a moment.",
    "upstream_rate_limited": "The AI service is busy right now. Please try again shortly.",
    "upstream_auth": "The AI service rejected the server's API key. The operator needs to check GROQ_API_KEY.",
    "model_unavailable": "The configured AI model is not available.",
    "invalid_message": "The AI service could not accept this conversation. Try a shorter or different message.",
}
_MODEL_CODES = {"model_not_found", "model_decommissioned"}
_RETRYABLE_STATUSES = {408, 409, 498}  # 498: Groq's "flex tier capacity exceeded"

RetryCallback = Callable[[float, str], None]


class UpstreamError(Exception):
    """An upstream failure mapped to a protocol error code.

    `user_message` (also str(error)) is safe to show; `detail` is for the log and never holds the API key.
    """

    def __init__(self, code: str, user_message: str, *, detail: str = "", retry_after: float | None = None):
        """Keep only the user message in args, so str() and repr() never carry the log detail."""
        super().__init__(user_message)
        self.code = code
        self.user_message = user_message
        self.detail = detail
        self.retry_after = retry_after
        self.retryable = False  # set by the mapping; only ever acted on before the first delta


@dataclass(slots=True)
class Delta:
    """One piece of a reply: answer text and, from reasoning models, thinking kept apart."""

    text: str = ""
    reasoning: str = ""


class ReplyStream:
    """Iterable of Delta for one reply; close() aborts the upstream HTTP request at once (used by stop).

    Iterate once. Iteration raises UpstreamError on any failure, also mid-stream. After close() iteration ends
    quietly and `finish_reason` is "stopped" (unless the upstream had already finished the reply).
    """

    def __init__(self) -> None:
        """Start unfinished, with no usage yet."""
        self.finish_reason: str | None = None
        self.usage: dict | None = None
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


class GroqProvider:
    """Streams chat completions from Groq (or anything speaking its API) through the official SDK."""

    name = "groq"
    demo = False

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

    def stream(self, messages: list[dict], *, on_retry: RetryCallback | None = None) -> ReplyStream:
        """Prepare one reply to `messages` (system prompt included); the request starts on iteration."""
        request: dict = {"model": self.model, "messages": list(messages), "stream": True}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_tokens is not None:
            request["max_completion_tokens"] = self.max_tokens
        return _GroqReplyStream(self, request, on_retry)

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._client.close()

    def retry_wait(self, error: UpstreamError, retries: int) -> float | None:
        """Seconds to wait before retry number `retries + 1`, or None to give up with `error`."""
        if not error.retryable or retries >= self.max_retries:
            return None
        if error.retry_after is None:
            return min(self.backoff * 2**retries, self.max_retry_wait)
        if error.code == "upstream_rate_limited" and error.retry_after > self.max_retry_wait:
            return None  # the user is better served by "try again in N s" than by a long silent wait
        return min(error.retry_after, self.max_retry_wait)

    def map_exception(self, exc: BaseException) -> UpstreamError:
        """Turn an SDK or transport exception into an UpstreamError whose detail never holds the key."""
        if isinstance(exc, groq.APIStatusError):
            error = error_from_status(exc.status_code, exc.body, exc.response.headers)
        elif isinstance(exc, groq.APITimeoutError | httpx.TimeoutException):
            error = _error("upstream_unavailable", f"timed out ({type(exc).__name__})", retryable=True)
        elif isinstance(exc, groq.APIConnectionError):
            cause = exc.__cause__ or exc
            error = _error(
                "upstream_unavailable", f"connection failed ({type(cause).__name__}: {cause})", retryable=True
            )
        elif isinstance(exc, httpx.HTTPError | OSError):
            detail = f"stream broke ({type(exc).__name__}: {exc})"
            error = _error("upstream_unavailable", detail, retryable=True)
        elif isinstance(exc, ValueError):
            error = _error("upstream_unavailable", f"malformed stream ({type(exc).__name__}: {exc})")
        else:
            error = _error("upstream_unavailable", f"unexpected {type(exc).__name__}: {exc}")
        error.detail = error.detail.replace(self._api_key, "[redacted]")
        return error


class _GroqReplyStream(ReplyStream):
    """One streamed Groq reply, read as raw SSE lines (≈9 µs per chunk; SDK chunk objects cost ≈67 µs)."""

    def __init__(self, provider: GroqProvider, request: dict, on_retry: RetryCallback | None):
        """Remember what to send; nothing is sent yet."""
        super().__init__()
        self._provider = provider
        self._request = request
        self._on_retry = on_retry
        self._response: httpx.Response | None = None
        self._reading = False
        self._yielded = False
        self._upstream_done = False

    def _deltas(self) -> Iterator[Delta]:
        """Run attempts, retrying retryable failures only while nothing has been yielded."""
        retries = 0
        while not self._closed:
            try:
                yield from self._attempt()
                return
            except UpstreamError as exc:
                error = exc
                wait = None if self._yielded or self._closed else self._provider.retry_wait(exc, retries)
                if wait is None:
                    raise
            retries += 1
            log.warning(
                "Groq request failed (%s: %s); retry %d/%d in %.2fs",
                error.code,
                error.detail,
                retries,
                self._provider.max_retries,
                wait,
            )
            if self._on_retry is not None:
                try:
                    self._on_retry(wait, error.code)
                except Exception:
                    log.exception("on_retry callback failed")
            if self._stop.wait(wait):
                return

    def _attempt(self) -> Iterator[Delta]:
        """Send the request once and relay its SSE stream."""
        try:
            manager = self._provider._client.chat.completions.with_streaming_response.create(**self._request)
            with manager as raw:
                if not self._attach(raw.http_response):
                    return
                try:
                    yield from self._parse(raw.http_response)
                finally:
                    with self._lock:
                        self._response = None
        except UpstreamError:
            raise
        except Exception as exc:
            if self._upstream_done:
                return  # the reply was complete; a hiccup while closing the body loses nothing
            raise self._provider.map_exception(exc) from exc

    def _attach(self, response: httpx.Response) -> bool:
        """Expose the response to close(); False if close() already happened."""
        with self._lock:
            if self._closed:
                return False
            self._response = response
            return True

    def _parse(self, response: httpx.Response) -> Iterator[Delta]:
        """Parse SSE lines with json, yielding each non-empty delta as soon as its line arrives."""
        lines = response.iter_lines()
        while True:
            self._reading = True
            if self._closed:
                return
            line = next(lines, None)
            self._reading = False
            if line is None:
                break
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, event:/id: fields
            data = line[5:].strip()
            if data == "[DONE]":
                self._upstream_done = True
                return
            chunk = json.loads(data)
            if "error" in chunk:
                raise error_from_event(chunk["error"])
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                reasoning = delta.get("reasoning") or ""
                if text or reasoning:
                    self._yielded = True
                    yield Delta(text, reasoning)
                if choice.get("finish_reason"):
                    self._upstream_done = True
                    self._finish(choice["finish_reason"])
            x_groq = chunk.get("x_groq")
            usage = (x_groq.get("usage") if x_groq else None) or chunk.get("usage")
            if usage:
                self.usage = usage
        if not self._upstream_done and not self._closed:
            detail = "stream ended without [DONE] or finish_reason"
            raise _error("upstream_unavailable", detail, retryable=True)

    def _abort(self) -> None:
        """Close the response, or wake a reader blocked on it so it closes the response itself."""
        response = self._response
        if response is None:
            return  # not connected yet: the attempt sees the flag when headers arrive
        if self._reading:
            _shutdown_socket(response)
        else:
            response.close()


def _shutdown_socket(response: httpx.Response) -> None:
    """Shut the connection down under a blocked reader: it wakes with EOF in any thread or greenlet."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:
        response.close()
        return
    try:
        # Shutdown acts on the connection, so a dup of the descriptor works and sidesteps TLS/green wrappers.
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _error(code: str, detail: str, *, retry_after: float | None = None, retryable: bool = False) -> UpstreamError:
    """Build an UpstreamError with the standard user message for `code`."""
    error = UpstreamError(code, USER_MESSAGES[code], detail=detail, retry_after=retry_after)
    error.retryable = retryable
    return error


def error_from_status(status: int, body: object, headers: httpx.Headers | dict) -> UpstreamError:
    """Map an HTTP error response (status, parsed body, headers) to an UpstreamError."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    upstream_code = error.get("code")
    message = str(error.get("message") or "")[:300]
    detail = f"HTTP {status}, code={upstream_code!r}, type={error.get('type')!r}: {message}"
    retry_after = parse_retry_after(headers)
    if status in (401, 403) or upstream_code == "invalid_api_key":
        return _error("upstream_auth", detail + " (check GROQ_API_KEY)")
    if upstream_code in _MODEL_CODES or (status == 404 and upstream_code != "unknown_url"):
        return _error("model_unavailable", detail + " (check GROQ_MODEL)")
    if status == 404:
        return _error("upstream_unavailable", detail + " (check GROQ_BASE_URL)")
    if status == 429:
        return _error("upstream_rate_limited", detail, retry_after=retry_after, retryable=True)
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return _error("upstream_unavailable", detail, retry_after=retry_after, retryable=True)
    return _error("invalid_message", detail)


def error_from_event(error: object) -> UpstreamError:
    """Map an SSE `data: {"error": ...}` event sent mid-stream to an UpstreamError."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    code, type_ = error.get("code"), error.get("type")
    detail = f"error event, code={code!r}, type={type_!r}: {str(error.get('message') or '')[:300]}"
    if code in _MODEL_CODES:
        return _error("model_unavailable", detail + " (check GROQ_MODEL)")
    if code == "invalid_api_key":
        return _error("upstream_auth", detail + " (check GROQ_API_KEY)")
    if code == "rate_limit_exceeded":
        return _error("upstream_rate_limited", detail, retryable=True)
    return _error("upstream_unavailable", detail, retryable=True)


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


def make_provider(
    *, api_key: str | None, model: str, base_url: str | None = None, **options
) -> GroqProvider | DemoProvider:
    """The Groq provider when a key is set, else the offline demo provider."""
    from .demo import DemoProvider  # the demo builds on this module's ReplyStream

    token_delay = options.pop("token_delay", None)
    api_key = (api_key or "").strip()
    if api_key:
        return GroqProvider(api_key, model or DEFAULT_MODEL, base_url=base_url, **options)
    return DemoProvider() if token_delay is None else DemoProvider(token_delay=token_delay)
