"""A fake Groq server on loopback, scriptable per test (HTTP in `fakes.groq_http`, wire format in `fakes.groq_wire`).

It speaks Groq's API the way Groq does (OpenAI-compatible JSON, SSE when `stream` is true, Groq's error bodies,
`x_groq.usage` with timings, `x-ratelimit-*` headers, the model list), so the real `groq` SDK can be pointed at it
with `base_url` or `GROQ_BASE_URL`. It also answers the plain OpenAI paths (`/v1/chat/completions`, `/v1/models`),
so the `openai` SDK works with `base_url=fake.base_url + "/v1"`.

    fake.script(tokens=5, delay=0.001)          # the next request streams "tok0 tok1 ... tok4 "
    fake.script(reasoning="Let me think.", text="Hi")   # thinking first (delta.reasoning), then the answer
    fake.script(status=429, retry_after=1)      # then a rate limit
    fake.script(tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "42"}}])  # asks for a function call
    fake.script(executed_tools=[{"type": "search", "arguments": {"query": "q"}, "output": "…"}], text="Found.")
    fake.script_models(status=500)              # the next model-list request fails
    fake.requests, fake.paths                   # chat bodies received so far, and the path each was sent to

Run standalone (benchmarks, real-process tests):
    python -m fakes.groq --port 8099 --key gsk_test --delay 0.004 --tokens 280
"""

from __future__ import annotations

import argparse
import copy
import json
import select
import signal
import socket
import threading
import uuid
from collections import deque

from fakes.groq_http import Server
from fakes.groq_wire import (
    DEFAULT_MODELS,
    ENDPOINT,
    MODELS_ENDPOINT,
    OPENAI_ENDPOINT,
    OPENAI_MODELS_ENDPOINT,
    ModelsScript,
    Script,
    as_tokens,
    error_body,
    model_entry,
    split_text,
    validate_body,
)

__all__ = [
    "DEFAULT_KEY", "DEFAULT_MODELS", "DEFAULT_RATELIMIT", "DEFAULT_TEXT", "ENDPOINT", "MODELS_ENDPOINT",
    "OPENAI_ENDPOINT", "OPENAI_MODELS_ENDPOINT", "FakeGroq", "error_body", "split_text",
    "validate_body",
]

DEFAULT_KEY = "gsk_fake_test_key_7Hq2LmX9"
DEFAULT_TEXT = "Hello from the fake Groq."
DEFAULT_RATELIMIT = {"requests": 14399, "tokens": 5999}
_POLL = 0.02  # how often a held stream checks for release; the fake's own pacing, not test synchronisation


class FakeGroq:
    """A running fake Groq server; `base_url` goes to the SDK, `script()` decides the next responses.

    Attributes tests may read or set: `requests` (chat bodies) and `paths` (their paths), `model_requests` (paths
    of model-list reads), `models` (the list served), `ratelimit` (remaining counts sent as x-ratelimit-* headers;
    {} sends none), `reasoning_field` ("reasoning" like Groq, or "reasoning_content" like vLLM/llama.cpp),
    `last_text` / `last_reasoning` (of the latest response).
    """

    def __init__(
        self,
        api_key: str | None = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        default_text: str = DEFAULT_TEXT,
        default_tokens: int | None = None,
        reasoning_field: str = "reasoning",
    ):
        """Bind to a free loopback port (or `port`); `delay` is the default pause between streamed chunks.

        `api_key` None accepts any key (like a local OpenAI-compatible server).
        """
        self.api_key = api_key
        self.delay = delay
        self.reasoning_field = reasoning_field
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.model_requests: list[str] = []
        self.models: list[dict] = copy.deepcopy(DEFAULT_MODELS)
        self.ratelimit: dict = dict(DEFAULT_RATELIMIT)
        self.last_text = ""
        self.last_reasoning = ""
        self.streams = 0
        self.disconnects = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._scripts: deque[Script] = deque()
        self._models_scripts: deque[ModelsScript] = deque()
        self._default_tokens = as_tokens(default_tokens if default_tokens is not None else default_text)
        self._chunks = 0
        self._released = threading.Event()
        self._closing = threading.Event()
        self._server = Server((host, port), self)
        self.port = self._server.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-groq", daemon=True
        )

    def start(self) -> FakeGroq:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: release held streams, drop open connections, free the port."""
        self._closing.set()
        self._released.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._server.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeGroq:
        """Start the server for a with-block."""
        return self.start()

    def __exit__(self, *exc_info) -> None:
        """Stop the server at the end of a with-block."""
        self.close()

    def script(
        self,
        *,
        tokens: int | list[str] | None = None,
        text: str | None = None,
        delay: float | None = None,
        first_byte_delay: float = 0.0,
        reasoning: int | str | list[str] | None = None,
        reasoning_field: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        cut_after: int | None = None,
        hold_after: int | None = None,
        error_after: int | None = None,
        model_not_found: bool = False,
        model_decommissioned: bool = False,
        finish_reason: str | None = None,
        usage: dict | None = None,
        ratelimit: dict | None = None,
        repeat: int | None = 1,
        tool_calls: list[dict] | None = None,
        executed_tools: list[dict] | None = None,
        error_message: str | None = None,
    ) -> None:
        """Queue the response for the next chat request(s) that pass the key and body checks.

        tokens: N ("tok0 ", "tok1 ", ...) or a list; text: split into ~4-char tokens (''.join == text);
        reasoning: thinking streamed before the answer, one chunk per piece, in `delta.<reasoning_field>`
        (default: the fake's `reasoning_field`); delay: pause between chunks;
        first_byte_delay: pause before the status line; status: 401/429/5xx/other error response;
        retry_after: seconds for the retry-after header; cut_after: drop the connection after N chunks;
        hold_after: pause after N chunks until release(); error_after: an SSE error event after N chunks;
        model_not_found / model_decommissioned: Groq's 404 / 400 model errors; usage: fields that override the
        reported usage (e.g. {"completion_time": 0.5}); ratelimit: remaining counts for the x-ratelimit-* headers
        of this response ({} for none); repeat: how many requests this serves (None: all following ones).
        tool_calls: function calls asked for after the text ([{name, arguments: dict | str, id?}]), streamed by
        index with the arguments in pieces; finish_reason then defaults to "tool_calls" and the text to "".
        executed_tools: Groq built-in steps ([{type, arguments, output?, search_results?, code_results?}]),
        streamed after the reasoning as a start and a done delta each, and kept in a non-streamed message.
        error_message: the message of a scripted 4xx other than 401/429 (e.g. a refused built-in tool).
        Chunks count answer, reasoning and tool pieces, not the final chunk.
        """
        if tokens is None and text is None:
            text = "" if tool_calls else DEFAULT_TEXT
        entry = Script(
            tokens=as_tokens(tokens if tokens is not None else text),
            reasoning=as_tokens(reasoning),
            delay=delay,
            first_byte_delay=first_byte_delay,
            status=status,
            retry_after=retry_after,
            cut_after=cut_after,
            hold_after=hold_after,
            error_after=error_after,
            model_not_found=model_not_found,
            model_decommissioned=model_decommissioned,
            finish_reason=finish_reason or ("tool_calls" if tool_calls else "stop"),
            repeat=repeat,
            reasoning_field=reasoning_field,
            usage=dict(usage or {}),
            ratelimit=None if ratelimit is None else dict(ratelimit),
            tool_calls=[_function_call(call) for call in tool_calls or []],
            executed_tools=[_executed_tool(n, tool) for n, tool in enumerate(executed_tools or [])],
            error_message=error_message,
        )
        if hold_after is not None:
            self._released.clear()
        with self._lock:
            self._scripts.append(entry)

    def script_models(
        self,
        *,
        models: list[dict | str] | None = None,
        status: int | None = None,
        first_byte_delay: float = 0.0,
        repeat: int | None = 1,
    ) -> None:
        """Queue the answer to the next model-list request(s).

        models: the list to serve (dicts as Groq sends them, or bare ids); status: 401/5xx/other error instead;
        first_byte_delay: pause before answering (to make a client time out); repeat: how many requests this
        serves (None: all following ones). Without a script, `self.models` is served.
        """
        listed = None if models is None else [model_entry(m) if isinstance(m, str) else m for m in models]
        with self._lock:
            self._models_scripts.append(ModelsScript(listed, status, first_byte_delay, repeat))

    def release(self) -> None:
        """Let held streams continue."""
        self._released.set()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least n chat requests have been received; TimeoutError otherwise."""
        self._wait_until(lambda: len(self.requests) >= n, timeout, f"{n} request(s)")

    def wait_streamed(self, n_chunks: int, timeout: float = 5.0) -> None:
        """Block until the most recent stream has written n chunks; TimeoutError otherwise."""
        self._wait_until(lambda: self.streams and self._chunks >= n_chunks, timeout, f"{n_chunks} chunk(s)")

    def wait_disconnected(self, n: int = 1, timeout: float = 5.0) -> None:
        """Block until clients have gone away mid-response n times in total; TimeoutError otherwise."""
        self._wait_until(lambda: self.disconnects >= n, timeout, f"{n} client disconnect(s)")

    def _wait_until(self, predicate, timeout: float, what: str) -> None:
        """Wait on the condition until predicate() holds."""
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(f"fake Groq: no {what} within {timeout}s")

    def _record(self, body: dict, path: str) -> None:
        """Remember a received chat body and its path, and wake waiters."""
        with self._changed:
            self.requests.append(body)
            self.paths.append(path)
            self._changed.notify_all()

    def _record_models(self, path: str) -> None:
        """Remember a model-list request's path."""
        with self._changed:
            self.model_requests.append(path)
            self._changed.notify_all()

    def _next_script(self) -> Script:
        """Pop the next scripted response, or build the default reply."""
        with self._lock:
            if not self._scripts:
                return Script(tokens=list(self._default_tokens), reasoning=[])
            return _take(self._scripts)

    def _next_models_script(self) -> ModelsScript:
        """Pop the next scripted model-list answer, or the plain list."""
        with self._lock:
            return _take(self._models_scripts) if self._models_scripts else ModelsScript()

    def _stream_started(self) -> None:
        """Reset the per-stream counters."""
        with self._changed:
            self.streams += 1
            self._chunks = 0
            self.last_text = ""
            self.last_reasoning = ""
            self._changed.notify_all()

    def _streamed(self, kind: str, piece: str | dict) -> None:
        """Account for one written chunk (answer, reasoning or a tool piece) and wake waiters."""
        with self._changed:
            self._chunks += 1
            if kind == "content":
                self.last_text += piece
            elif isinstance(piece, str):
                self.last_reasoning += piece
            self._changed.notify_all()

    def _completed(self, text: str, reasoning: str) -> None:
        """Remember the text of a non-streamed response."""
        with self._lock:
            self.last_text = text
            self.last_reasoning = reasoning

    def _mark_disconnected(self) -> None:
        """Count a client that went away mid-response."""
        with self._changed:
            self.disconnects += 1
            self._changed.notify_all()

    def _hold(self, conn: socket.socket) -> bool:
        """Pause a stream until release() or close(); False if the client went away meanwhile."""
        while not self._released.is_set():
            if self._wait_or_gone(conn, _POLL):
                return False
        return not self._closing.is_set()

    def _wait_or_gone(self, conn: socket.socket, seconds: float) -> bool:
        """Pause up to `seconds`; True as soon as the client has gone (or the fake is closing)."""
        if self._closing.is_set():
            return True
        poller = select.poll()  # not select.select: benchmarks hold file descriptors past 1024
        poller.register(conn, select.POLLIN)
        if not poller.poll(seconds * 1000):
            return False
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def _arguments(value: dict | str) -> str:
    """Tool arguments as the JSON text the API carries."""
    return value if isinstance(value, str) else json.dumps(value)


def _function_call(call: dict) -> dict:
    """A scripted function call with its id and JSON arguments filled in."""
    return {"id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}", "name": call["name"],
            "arguments": _arguments(call.get("arguments", {}))}


def _executed_tool(index: int, tool: dict) -> dict:
    """A scripted built-in tool step as Groq reports it (index, type, JSON arguments, results)."""
    return {"index": index, **tool, "arguments": _arguments(tool.get("arguments", {}))}


def _take(queue: deque):
    """The first queued script, dropped from the queue once it has served its `repeat` requests."""
    entry = queue[0]
    if entry.repeat is not None:
        entry.repeat -= 1
        if entry.repeat <= 0:
            queue.popleft()
    return entry


def main(argv: list[str] | None = None) -> None:
    """Serve a FakeGroq in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description="Fake Groq chat-completions server on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--tokens", type=int, default=None, help="default reply: N tokens instead of a greeting")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeGroq(args.key, host=args.host, port=args.port, delay=args.delay, default_tokens=args.tokens) as fake:
        print(f"fake-groq listening on {fake.base_url}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
