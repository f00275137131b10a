"""The benchmarks' baselines: the obvious Flask-SocketIO + groq SDK relay, which stores nothing.

    ASYNC_MODE=gevent PORT=5001 GROQ_API_KEY=gsk_x GROQ_BASE_URL=http://127.0.0.1:8099 python bench/bare_relay.py
    ... python bench/bare_relay.py --naive

bare (default): one `bot_delta` per 30 ms window (the first piece at once, then whatever arrived in the window);
--naive: one `bot_delta` per upstream chunk. Both speak the real server's wire protocol for one turn (`session_id`
on connect, `user_message` + ack, `bot_start`, `bot_delta {reply_id, seq, text}`, `bot_message`), read the stream the
SDK's obvious way (`stream=True`, iterating chunk objects), and serve like app.py (monkey-patched first, a
TCP_NODELAY listener, eventlet's and gevent's own WSGI servers with their defaults, Werkzeug for threading).
"""

import os
import sys

ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet").strip().lower()

# Monkey-patching must happen before anything else imports socket, ssl, threading or time.
if ASYNC_MODE == "eventlet":
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import itertools  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO, emit  # noqa: E402
from groq import Groq  # noqa: E402

NAIVE = "--naive" in sys.argv[1:]
WINDOW = 0.0 if NAIVE else 0.030
MODEL = os.environ.get("GROQ_MODEL", "openai/gpt-oss-120b")

app = Flask(__name__)
socketio = SocketIO(app, async_mode=ASYNC_MODE)
client = Groq()  # GROQ_API_KEY and GROQ_BASE_URL from the environment
reply_ids = itertools.count(1)


@app.get("/healthz")
def healthz():
    """Answer the benchmark's readiness probe."""
    return "ok"


@socketio.on("connect")
def on_connect(auth=None):
    """Give every connection a throwaway session, so the same client works against this and the real server."""
    session = uuid.uuid4().hex
    emit("session_id", {"session_id": session, "token": session})


@socketio.on("user_message")
def on_user_message(data=None):
    """Start streaming a reply to the message in the background and ack it."""
    text = data.get("message") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        return {"ok": False, "error": {"code": "invalid_message", "message": "Please type a message."}}
    reply_id = next(reply_ids)
    socketio.start_background_task(stream_reply, request.sid, reply_id, text)
    return {"ok": True, "message_id": reply_id, "reply_id": reply_id, "conversation_id": 1}


def stream_reply(sid: str, reply_id: int, text: str) -> None:
    """Relay one completion to the client: deltas per window (or per chunk), then the whole text."""
    socketio.emit("bot_start", {"reply_id": reply_id, "conversation_id": 1}, to=sid)
    parts: list[str] = []
    pending: list[str] = []
    seq, last_emit, finish, usage = 0, 0.0, None, None
    try:
        stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}],
                                                stream=True)
        for chunk in stream:
            if chunk.x_groq is not None and chunk.x_groq.usage is not None:
                usage = chunk.x_groq.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
            if not chunk.choices:
                continue
            finish = chunk.choices[0].finish_reason or finish
            piece = chunk.choices[0].delta.content
            if not piece:
                continue
            parts.append(piece)
            pending.append(piece)
            now = time.monotonic()
            if now - last_emit >= WINDOW:
                socketio.emit("bot_delta", {"reply_id": reply_id, "seq": seq, "text": "".join(pending)}, to=sid)
                seq, last_emit, pending = seq + 1, now, []
    except Exception:
        app.logger.exception("reply %s failed", reply_id)
        socketio.emit("error", {"code": "upstream_unavailable", "message": "The assistant is unavailable.",
                                "reply_id": reply_id}, to=sid)
        finish = "error"
    if pending:
        socketio.emit("bot_delta", {"reply_id": reply_id, "seq": seq, "text": "".join(pending)}, to=sid)
    now = datetime.now(UTC)
    socketio.emit("bot_message", {"message": "".join(parts), "timestamp": now.strftime("%H:%M"),
                                  "created_at": now.isoformat(), "conversation_id": 1, "reply_id": reply_id,
                                  "finish_reason": finish, "usage": usage}, to=sid)


def listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket with TCP_NODELAY (as app.py does), so small frames are not held back by Nagle."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.listen(1024)
    return sock


def main() -> None:
    """Serve until killed, with the async mode's own server and its defaults (eventlet: at most 1,024 clients)."""
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5001"))
    print(f"{'naive' if NAIVE else 'bare'} relay: serving on http://{host}:{port} ({ASYNC_MODE})", file=sys.stderr,
          flush=True)
    if ASYNC_MODE == "eventlet":
        import eventlet.wsgi

        eventlet.wsgi.server(listener(host, port), app, log_output=False)
    elif ASYNC_MODE == "gevent":
        from gevent import pywsgi

        pywsgi.WSGIServer(listener(host, port), app, log=None).serve_forever()
    else:
        socketio.run(app, host=host, port=port, log_output=False, allow_unsafe_werkzeug=True)


if __name__ == "__main__":
    main()
