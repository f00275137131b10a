"""Entry point: pick the async mode (eventlet by default), patch the standard library first, serve the app."""

import os
import sys
import warnings

from dotenv import load_dotenv

load_dotenv(override=False)
ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet").strip().lower()

# Monkey-patching must happen before anything else imports socket, ssl, threading or time.
if ASYNC_MODE == "eventlet":
    # We know eventlet is in bugfix-only mode (the README says so, gevent is the alternative); no banner at start.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
    # psycopg waits for Postgres inside C unless told otherwise, holding the whole loop for every query; through the
    # (green) select module each wait yields to the other greenlets. gevent is detected by psycopg itself.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()


def early_listener():
    """The listening socket, opened before the slow imports and start-up (about 3 s), or None.

    After a restart every client reconnects at once: while nothing listens they are refused and back off for
    seconds; with the socket open they wait in the kernel's backlog and are served as soon as the app is ready.
    Only from plain HOST/PORT values (the settings check them, and say what is wrong, later) and for the servers
    app.py runs itself (not Werkzeug's, under threading).
    """
    if ASYNC_MODE not in ("eventlet", "gevent"):
        return None
    host, port = os.environ.get("HOST", "127.0.0.1").strip(), os.environ.get("PORT", "5000").strip()
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    try:
        return listener(host, int(port)), (host, int(port))
    except OSError:
        return None  # e.g. the port is taken: serve() tries again and reports it


def raise_open_files_limit() -> None:
    """Every Socket.IO client holds a socket: lift the soft open-files limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError):
        pass


def listener(host: str, port: int):
    """A listening TCP socket with TCP_NODELAY, which every accepted connection inherits.

    Without it a small Socket.IO frame (an ack, a delta) can wait ~40 ms for the client's delayed ACK (Nagle).
    """
    import socket

    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.listen(1024)
    return sock


def serve(app, settings, early=None) -> None:
    """Serve with the async mode's own WSGI server (what socketio.run() does, plus TCP_NODELAY and limits), on the
    early listening socket when it is for the configured address."""
    host, port = settings["HOST"], settings["PORT"]
    sock = None
    if early is not None:
        sock, address = early
        if address != (host, port) or settings["ASYNC_MODE"] != ASYNC_MODE:
            sock.close()
            sock = None
    if settings["ASYNC_MODE"] == "eventlet":
        import eventlet.wsgi

        # max_size: eventlet otherwise caps simultaneous connections at 1,024 (leave room for plain HTTP).
        # socket_timeout: a connection silent for longer than a ping round (which every live client answers) is
        # dead or a slowloris, and must not hold one of those slots.
        eventlet.wsgi.server(sock or listener(host, port), app, log_output=False,
                             max_size=settings["MAX_CONNECTIONS"] + 64,
                             socket_timeout=settings["PING_INTERVAL"] + 2 * settings["PING_TIMEOUT"])
    elif settings["ASYNC_MODE"] == "gevent":
        from gevent import pywsgi

        pywsgi.WSGIServer(sock or listener(host, port), app, log=None).serve_forever()
    else:
        from chatbot import socketio

        socketio.run(app, host=host, port=port, log_output=False, allow_unsafe_werkzeug=True)


def main() -> int:
    """Build the app from the environment and serve it until interrupted."""
    early = early_listener()
    from chatbot import create_app, socketio
    from chatbot.config import ConfigError
    from chatbot.web.services import services

    try:
        app = create_app()
    except ConfigError as exc:
        print(f"chatbotws: configuration error: {exc}", file=sys.stderr)
        return 2  # the early socket closes with the process
    raise_open_files_limit()
    settings = app.config
    chat = services(app).chat
    socketio.start_background_task(chat.conversations.maintenance_loop)
    if settings["AUTH_MODE"] != "open":
        socketio.start_background_task(chat.logins.loop)  # sockets whose login ended go within a ping round
    provider = chat.provider
    mode = "offline demo" if provider.demo else f"{provider.name} model {provider.model or '(server default)'}"
    print(f"chatbotws: serving on http://{settings['HOST']}:{settings['PORT']} "
          f"({settings['ASYNC_MODE']}, {mode})", file=sys.stderr, flush=True)
    if getattr(provider, "reason", None):
        print(f"chatbotws: the offline demo answers because {provider.reason}", file=sys.stderr, flush=True)
    serve(app, settings, early)
    return 0


if __name__ == "__main__":
    sys.exit(main())
