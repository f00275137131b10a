"""A fake Groq chat-completions server on loopback, scriptable per test.

It speaks `POST /openai/v1/chat/completions` the way Groq does (OpenAI-compatible JSON, SSE when `stream` is
true, Groq's error bodies), so the real `groq` SDK can be pointed at it with `base_url` or `GROQ_BASE_URL`.

    fake.script(tokens=5, delay=0.001)          # the next request streams "tok0 tok1 ... tok4 "
    fake.script(status=429, retry_after=1)      # then a rate limit
    fake.requests                               # JSON bodies received so far

Run standalone (benchmarks, real-process tests):
    python -m tests.fake_groq --port 8099 --key gsk_test --delay 0.004 --tokens 280
"""

from __future__ import annotations

import argparse
import http.server
import json
import select
import signal
import socket
import socketserver
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import pytest

ENDPOINT = "/openai/v1/chat/completions"
DEFAULT_KEY = "gsk_fake_test_key_7Hq2LmX9"
DEFAULT_TEXT = "Hello from the fake Groq."
ROLES = {"system", "user", "assistant"}
_POLL = 0.02  # how often a held stream checks for release; the fake's own pacing, not test synchronisation


@dataclass
class Script:
    """One scripted response; `FakeGroq.script` documents the fields."""

    tokens: list[str]
    reasoning: list[str]
    delay: float | None = None
    first_byte_delay: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    cut_after: int | None = None
    hold_after: int | None = None
    error_after: int | None = None
    model_not_found: bool = False
    model_decommissioned: bool = False
    finish_reason: str = "stop"
    repeat: int | None = 1


def split_text(text: str) -> list[str]:
    """Split text into ~4-character pieces (like model tokens) whose concatenation is the text."""
    return [text[i : i + 4] for i in range(0, len(text), 4)]


def _as_tokens(value: int | str | list[str] | None) -> list[str]:
    """Normalise a tokens/text/reasoning argument into a list of token strings."""
    if value is None:
        return []
    if isinstance(value, int):
        return [f"tok{i} " for i in range(value)]
    if isinstance(value, str):
        return split_text(value)
    return [str(piece) for piece in value]


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict:
    """Groq's JSON error envelope."""
    error = {"message": message, "type": type_}
    if code is not None:
        error["code"] = code
    return {"error": error}


def validate_body(body: object) -> str | None:
    """Return why a chat-completions body is invalid (Groq-style wording), or None when it is valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' : property 'model' is missing or not a string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' : minimum number of items is 1"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"'messages.{i}' : discriminator property 'role' has invalid value"
        if not isinstance(message.get("content"), str):
            return f"'messages.{i}.content' : value must be a string"
    return None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded HTTP server that disables Nagle on every accepted socket and tracks open connections."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 1024  # benchmarks open hundreds of streams at once

    def __init__(self, address, fake: FakeGroq):
        """Bind the server and remember the FakeGroq that scripts it."""
        self.fake = fake
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def server_bind(self):
        """Bind without HTTPServer's reverse-DNS lookup of the host (slow on some machines)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        """Accept a connection with TCP_NODELAY, so small SSE writes are not held back ~40 ms by Nagle."""
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake._lock:
            self.connections.add(conn)
        return conn, addr

    def shutdown_request(self, request):
        """Forget the connection, then close it as usual."""
        with self.fake._lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """Stay quiet about clients that went away; that is what several tests do on purpose."""


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves one connection (HTTP/1.1 keep-alive, like the real API)."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-groq"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by BaseHTTPRequestHandler
        """Keep test output clean."""

    def do_GET(self):
        """Answer any GET with Groq's unknown-URL error."""
        self._send_json(404, error_body(f"Unknown request URL: GET {self.path}.", code="unknown_url"))

    def do_POST(self):
        """Check key, path and body like Groq, then play the next script."""
        fake: FakeGroq = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        else:
            fake._record(body)
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._send_json(401, error_body("Invalid API Key", code="invalid_api_key"))
            return
        if self.path.split("?", 1)[0] != ENDPOINT:
            self._send_json(404, error_body(f"Unknown request URL: POST {self.path}.", code="unknown_url"))
            return
        if body is None:
            self._send_json(400, error_body("We could not parse the JSON body of your request."))
            return
        problem = validate_body(body)
        if problem:
            self._send_json(400, error_body(problem))
            return
        script = fake._next_script()
        if script.first_byte_delay and fake._wait_or_gone(self.connection, script.first_byte_delay):
            fake._mark_disconnected()
            self.close_connection = True
            return
        if self._send_fault(script, body["model"]):
            return
        if body.get("stream"):
            self._stream(script, body)
        else:
            self._complete(script, body)

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        """Write a complete JSON response."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_fault(self, script: Script, model: str) -> bool:
        """Send the scripted error response, if any; return whether one was sent."""
        headers = {} if script.retry_after is None else {"retry-after": _header_seconds(script.retry_after)}
        if script.model_not_found:
            message = f"The model `{model}` does not exist or you do not have access to it."
            self._send_json(404, error_body(message, code="model_not_found"))
        elif script.model_decommissioned:
            message = f"The model `{model}` has been decommissioned and is no longer supported."
            self._send_json(400, error_body(message, code="model_decommissioned"))
        elif script.status is None:
            return False
        elif script.status == 401:
            self._send_json(401, error_body("Invalid API Key", code="invalid_api_key"))
        elif script.status == 429:
            wait = script.retry_after if script.retry_after is not None else 7.66
            message = (
                f"Rate limit reached for model `{model}` in organization `org_fake` service tier `on_demand` "
                f"on tokens per minute (TPM): Limit 6000, Used 5900, Requested 500. "
                f"Please try again in {wait}s."
            )
            self._send_json(429, error_body(message, "tokens", "rate_limit_exceeded"), headers)
        elif script.status >= 500:
            message = "Service Unavailable" if script.status == 503 else "Internal Server Error"
            self._send_json(script.status, error_body(message, "internal_server_error"), headers)
        else:
            self._send_json(script.status, error_body(f"Scripted error {script.status}."), headers)
        return True

    def _complete(self, script: Script, body: dict) -> None:
        """Send one non-streamed chat.completion."""
        fake: FakeGroq = self.server.fake
        text = "".join(script.tokens)
        message = {"role": "assistant", "content": text}
        if script.reasoning:
            message["reasoning"] = "".join(script.reasoning)
        with fake._lock:
            fake.last_text = text
            fake.last_reasoning = message.get("reasoning", "")
        payload = {
            "id": f"chatcmpl-{uuid.uuid4()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": script.finish_reason}],
            "usage": _usage(body, len(script.tokens) + len(script.reasoning)),
            "system_fingerprint": "fp_fake",
            "x_groq": {"id": f"req_{uuid.uuid4().hex}"},
        }
        self._send_json(200, payload)

    def _stream(self, script: Script, body: dict) -> None:
        """Stream the script as SSE over chunked transfer encoding, honouring cut/hold/error/delay."""
        fake: FakeGroq = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        fake._stream_started()
        delay = fake.delay if script.delay is None else script.delay
        base = {
            "id": f"chatcmpl-{uuid.uuid4()}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
        }
        base["model"] = body["model"]
        request_id = f"req_{uuid.uuid4().hex}"
        pieces = [("reasoning", piece) for piece in script.reasoning] + [("content", t) for t in script.tokens]
        try:
            for sent, (kind, piece) in enumerate(pieces):
                if sent == script.cut_after:
                    self._cut()
                    return
                if sent == script.error_after:
                    self._write_event(error_body("Internal Server Error", "internal_server_error"))
                    self._write(b"")
                    return
                if sent == script.hold_after and not fake._hold(self.connection):
                    raise BrokenPipeError("client went away while held")
                if sent and delay and fake._wait_or_gone(self.connection, delay):
                    raise BrokenPipeError("client went away")
                delta = {kind: piece}
                if sent == 0:
                    delta = {"role": "assistant", **delta}
                chunk = {
                    **base,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                }
                if sent == 0:
                    chunk["x_groq"] = {"id": request_id}
                self._write_event(chunk)
                fake._streamed(kind, piece)
            if script.cut_after is not None and script.cut_after >= len(pieces):
                self._cut()
                return
            usage = {
                "queue_time": 0.001,
                **_usage(body, len(pieces)),
                "completion_time": 0.01,
                "total_time": 0.02,
            }
            final = {
                **base,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": script.finish_reason}],
            }
            final["x_groq"] = {"id": request_id, "usage": usage}
            self._write_event(final)
            self._write(b"data: [DONE]\n\n")
            self._write(b"")
        except OSError:
            fake._mark_disconnected()
            self.close_connection = True

    def _write_event(self, payload: dict) -> None:
        """Write one SSE data event as one HTTP chunk."""
        self._write(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")

    def _write(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk (an empty one ends the body) and flush it at once."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _cut(self) -> None:
        """Drop the connection mid-body, the way a broken upstream or proxy does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _header_seconds(value: float) -> str:
    """Format seconds for a retry-after header (integers without a decimal point)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _usage(body: dict, completion_tokens: int) -> dict:
    """A plausible usage block: prompt tokens ~ words in the messages."""
    prompt = sum(len(m.get("content", "").split()) for m in body.get("messages", []) if isinstance(m, dict))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


class FakeGroq:
    """A running fake Groq server; `base_url` goes to the SDK, `script()` decides the next responses."""

    def __init__(
        self,
        api_key: str = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        default_text: str = DEFAULT_TEXT,
        default_tokens: int | None = None,
    ):
        """Bind to a free loopback port (or `port`); `delay` is the default pause between streamed chunks."""
        self.api_key = api_key
        self.delay = delay
        self.requests: list[dict] = []
        self.last_text = ""
        self.last_reasoning = ""
        self.streams = 0
        self.disconnects = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._scripts: deque[Script] = deque()
        self._default_tokens = _as_tokens(default_tokens if default_tokens is not None else default_text)
        self._chunks = 0
        self._released = threading.Event()
        self._closing = threading.Event()
        self._server = _Server((host, port), self)
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
        status: int | None = None,
        retry_after: float | None = None,
        cut_after: int | None = None,
        hold_after: int | None = None,
        error_after: int | None = None,
        model_not_found: bool = False,
        model_decommissioned: bool = False,
        finish_reason: str = "stop",
        repeat: int | None = 1,
    ) -> None:
        """Queue the response for the next request(s) that pass the key and body checks.

        tokens: N ("tok0 ", "tok1 ", ...) or a list; text: split into ~4-char tokens (''.join == text);
        reasoning: streamed as `delta.reasoning` before the answer; delay: pause between chunks;
        first_byte_delay: pause before the status line; status: 401/429/5xx/other error response;
        retry_after: seconds for the retry-after header; cut_after: drop the connection after N chunks;
        hold_after: pause after N chunks until release(); error_after: an SSE error event after N chunks;
        model_not_found / model_decommissioned: Groq's 404 / 400 model errors; repeat: how many requests this
        serves (None: all following ones). Chunks count answer and reasoning pieces, not the final chunk.
        """
        if tokens is None and text is None:
            text = DEFAULT_TEXT
        entry = Script(
            tokens=_as_tokens(tokens if tokens is not None else text),
            reasoning=_as_tokens(reasoning),
            delay=delay,
            first_byte_delay=first_byte_delay,
            status=status,
            retry_after=retry_after,
            cut_after=cut_after,
            hold_after=hold_after,
            error_after=error_after,
            model_not_found=model_not_found,
            model_decommissioned=model_decommissioned,
            finish_reason=finish_reason,
            repeat=repeat,
        )
        if hold_after is not None:
            self._released.clear()
        with self._lock:
            self._scripts.append(entry)

    def release(self) -> None:
        """Let held streams continue."""
        self._released.set()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least n requests have been received; TimeoutError otherwise."""
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

    def _record(self, body: dict) -> None:
        """Remember a received body and wake waiters."""
        with self._changed:
            self.requests.append(body)
            self._changed.notify_all()

    def _next_script(self) -> Script:
        """Pop the next scripted response, or build the default reply."""
        with self._lock:
            if not self._scripts:
                return Script(tokens=list(self._default_tokens), reasoning=[])
            entry = self._scripts[0]
            if entry.repeat is not None:
                entry.repeat -= 1
                if entry.repeat <= 0:
                    self._scripts.popleft()
            return entry

    def _stream_started(self) -> None:
        """Reset the per-stream counters."""
        with self._changed:
            self.streams += 1
            self._chunks = 0
            self.last_text = ""
            self.last_reasoning = ""
            self._changed.notify_all()

    def _streamed(self, kind: str, piece: str) -> None:
        """Account for one written chunk and wake waiters."""
        with self._changed:
            self._chunks += 1
            if kind == "content":
                self.last_text += piece
            else:
                self.last_reasoning += piece
            self._changed.notify_all()

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


@pytest.fixture
def fake_groq():
    """A started FakeGroq for one test, closed afterwards."""
    with FakeGroq() as fake:
        yield fake


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
