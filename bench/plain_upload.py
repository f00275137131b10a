"""The upload benchmark's baseline: a Flask app whose one route reads a plain HTTP request body and throws it away.

    ASYNC_MODE=gevent PORT=5002 python bench/plain_upload.py

Served like app.py (app.py's monkey-patching and TCP_NODELAY listener, gevent's or eventlet's own WSGI server), so
`files_bench.py` can compare a tus upload to the real server with the cheapest possible upload on the same stack: no
session, no database, no hashing.
"""

import os
import sys

# app.py's own prelude picks the async mode and monkey-patches (before anything imports socket or threading), and its
# listener is the real server's; the script's directory is bench/, so the repository root goes on the path first.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from app import ASYNC_MODE, listener  # noqa: E402

PIECE = 256 * 1024  # what the real server's tus PATCH reads at a time (one stored part, chatbot/store/files.py)

from flask import Flask, jsonify, request  # noqa: E402

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    """Answer the benchmark's readiness probe."""
    return "ok"


@app.post("/upload")
def upload():
    """Read the body in pieces as it arrives and discard it; answer how many bytes came."""
    received = 0
    while piece := request.stream.read(PIECE):
        received += len(piece)
    return jsonify(received=received)


def main() -> None:
    """Serve until killed, with the async mode's own server."""
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5002"))
    print(f"plain upload: serving on http://{host}:{port} ({ASYNC_MODE})", file=sys.stderr, flush=True)
    if ASYNC_MODE == "eventlet":
        import eventlet.wsgi

        eventlet.wsgi.server(listener(host, port), app, log_output=False)
    elif ASYNC_MODE == "gevent":
        from gevent import pywsgi

        pywsgi.WSGIServer(listener(host, port), app, log=None).serve_forever()
    else:
        app.run(host=host, port=port, threaded=True)


if __name__ == "__main__":
    main()
