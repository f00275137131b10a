"""The fake Groq's threaded HTTP server, which plays the scripts of `fakes.groq.FakeGroq` on loopback.

The wire format (paths, bodies, usage, headers) is in `fakes.groq_wire`.
"""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import time
import uuid
from typing import Any

from fakes.groq_wire import (
    CHAT_PATHS,
    ENDPOINT,
    MODEL_PATHS,
    Script,
    error_body,
    executed_tool_pieces,
    full_tool_calls,
    header_seconds,
    ratelimit_headers,
    tool_call_pieces,
    usage_block,
    validate_body,
)

# The FakeGroq that scripts a server is typed loosely here: fakes.groq imports this module, and a typing import back
# would make an import circle.
FakeGroq = Any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded HTTP server that disables Nagle on every accepted socket and tracks open connections."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 1024  # benchmarks open hundreds of streams at once

    def __init__(self, address, fake: FakeGroq):
        """Bind the server and remember the FakeGroq that scripts it."""
        self.fake = fake
        self.connections: set[socket.socket] = set()
        super().__init__(address, Handler)

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


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves one connection (HTTP/1.1 keep-alive, like the real API)."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-groq"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by BaseHTTPRequestHandler
        """Keep test output clean."""

    @property
    def fake(self) -> FakeGroq:
        """The FakeGroq scripting this server."""
        return self.server.fake

    def _authorised(self) -> bool:
        """Check the bearer key like Groq (a fake without a key accepts any); answer 401 when it is wrong."""
        if self.fake.api_key is None or self.headers.get("Authorization") == f"Bearer {self.fake.api_key}":
            return True
        self._send_json(401, error_body("Invalid API Key", code="invalid_api_key"))
        return False

    def do_GET(self):
        """Serve the model list (and single models) at both dialects' paths; anything else is an unknown URL."""
        path = self.path.split("?", 1)[0]
        prefix = next((p for p in MODEL_PATHS if path.startswith(p + "/")), None)
        if path not in MODEL_PATHS and prefix is None:
            self._send_json(404, error_body(f"Unknown request URL: GET {self.path}.", code="unknown_url"))
            return
        self.fake._record_models(path)
        if not self._authorised():
            return
        script = self.fake._next_models_script()
        if script.first_byte_delay and self.fake._wait_or_gone(self.connection, script.first_byte_delay):
            self.close_connection = True
            return
        if script.status is not None:
            self._send_status_error(script.status)
            return
        models = self.fake.models if script.models is None else script.models
        if prefix is None:
            self._send_json(200, {"object": "list", "data": models})
            return
        wanted = path[len(prefix) + 1 :]
        found = next((m for m in models if m.get("id") == wanted), None)
        if found is None:
            message = f"The model `{wanted}` does not exist or you do not have access to it."
            self._send_json(404, error_body(message, code="model_not_found"))
        else:
            self._send_json(200, found)

    def do_POST(self):
        """Check key, path and body like Groq, then play the next script."""
        fake = self.fake
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        else:
            fake._record(body, path)
        if not self._authorised():
            return
        if path not in CHAT_PATHS:
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
            self._stream(script, body, groq=path == ENDPOINT)
        else:
            self._complete(script, body, groq=path == ENDPOINT)

    def _ratelimit_headers(self, script: Script) -> dict:
        """The x-ratelimit-* headers for this response: the script's remaining counts, else the fake's."""
        return ratelimit_headers(self.fake.ratelimit if script.ratelimit is None else script.ratelimit)

    def _send_json(self, status: int, payload: dict | list, headers: dict | None = None) -> None:
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
        headers = self._ratelimit_headers(script)
        if script.retry_after is not None:
            headers["retry-after"] = header_seconds(script.retry_after)
        if script.model_not_found:
            message = f"The model `{model}` does not exist or you do not have access to it."
            self._send_json(404, error_body(message, code="model_not_found"), headers)
        elif script.model_decommissioned:
            message = f"The model `{model}` has been decommissioned and is no longer supported."
            self._send_json(400, error_body(message, code="model_decommissioned"), headers)
        elif script.status is None:
            return False
        elif script.status == 429:
            wait = script.retry_after if script.retry_after is not None else 7.66
            message = (
                f"Rate limit reached for model `{model}` in organization `org_fake` service tier `on_demand` "
                f"on tokens per minute (TPM): Limit 6000, Used 5900, Requested 500. "
                f"Please try again in {wait}s."
            )
            self._send_json(429, error_body(message, "tokens", "rate_limit_exceeded"), headers)
        else:
            self._send_status_error(script.status, headers, script.error_message)
        return True

    def _send_status_error(self, status: int, headers: dict | None = None, message: str | None = None) -> None:
        """Send Groq's body for a scripted 401, 5xx or other error status."""
        if status == 401:
            self._send_json(401, error_body("Invalid API Key", code="invalid_api_key"), headers)
        elif status >= 500:
            message = "Service Unavailable" if status == 503 else "Internal Server Error"
            self._send_json(status, error_body(message, "internal_server_error"), headers)
        else:
            self._send_json(status, error_body(message or f"Scripted error {status}."), headers)

    def _complete(self, script: Script, body: dict, *, groq: bool) -> None:
        """Send one non-streamed chat.completion."""
        text = "".join(script.tokens)
        message = {"role": "assistant", "content": text}
        if script.reasoning:
            message[script.reasoning_field or self.fake.reasoning_field] = "".join(script.reasoning)
        if script.tool_calls:
            message["tool_calls"] = full_tool_calls(script.tool_calls)
        if script.executed_tools:
            message["executed_tools"] = script.executed_tools
        self.fake._completed(text, "".join(script.reasoning))
        payload = {
            "id": f"chatcmpl-{uuid.uuid4()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": script.finish_reason}],
            "usage": usage_block(body, script, groq=groq),
            "system_fingerprint": "fp_fake",
        }
        if groq:
            payload["x_groq"] = {"id": f"req_{uuid.uuid4().hex}"}
        self._send_json(200, payload, self._ratelimit_headers(script))

    def _stream(self, script: Script, body: dict, *, groq: bool) -> None:
        """Stream the script as SSE over chunked transfer encoding, honouring cut/hold/error/delay."""
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in self._ratelimit_headers(script).items():
            self.send_header(name, value)
        self.end_headers()
        fake._stream_started()
        delay = fake.delay if script.delay is None else script.delay
        base = {"id": f"chatcmpl-{uuid.uuid4()}", "object": "chat.completion.chunk", "created": int(time.time())}
        base["model"] = body["model"]
        options = body.get("stream_options")
        include_usage = not groq and isinstance(options, dict) and options.get("include_usage") is True
        if include_usage:
            base["usage"] = None  # OpenAI's shape: every chunk says usage is null, the extra last chunk has it
        request_id = f"req_{uuid.uuid4().hex}"
        reasoning_field = script.reasoning_field or fake.reasoning_field
        pieces = [(reasoning_field, piece) for piece in script.reasoning]
        pieces += [("executed_tools", piece) for piece in executed_tool_pieces(script.executed_tools)]
        pieces += [("content", t) for t in script.tokens]
        pieces += [("tool_calls", piece) for piece in tool_call_pieces(script.tool_calls)]
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
                delta = {kind: [piece] if kind in ("tool_calls", "executed_tools") else piece}
                if sent == 0:
                    delta = {"role": "assistant", **delta}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
                if sent == 0 and groq:
                    chunk["x_groq"] = {"id": request_id}
                self._write_event(chunk)
                fake._streamed(kind, piece)
            if script.cut_after is not None and script.cut_after >= len(pieces):
                self._cut()
                return
            finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": script.finish_reason}
            final = {**base, "choices": [finish]}
            if groq:
                final["x_groq"] = {"id": request_id, "usage": usage_block(body, script, groq=True)}
            self._write_event(final)
            if include_usage:
                self._write_event({**base, "choices": [], "usage": usage_block(body, script, groq=False)})
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
