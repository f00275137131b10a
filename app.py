"""Entry point: pick the async mode (gevent by default), patch the standard library first, serve the app until
SIGTERM, then shut down gracefully."""

from __future__ import annotations

import os
import sys
import warnings

from dotenv import load_dotenv

load_dotenv(override=False)
ASYNC_MODE = os.environ.get("ASYNC_MODE", "gevent").strip().lower()

# Monkey-patching must happen before anything else imports socket, ssl, threading or time.
if ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()
elif ASYNC_MODE == "eventlet":
    # We know eventlet is in bugfix-only mode (the README says so, gevent is the alternative); no banner at start.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
    # psycopg waits for Postgres inside C unless told otherwise, holding the whole loop for every query; through the
    # (green) select module each wait yields to the other greenlets. gevent is detected by psycopg itself.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")


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


def serve(app, settings, early=None, shutdown: Shutdown | None = None) -> None:
    """Serve with the async mode's own WSGI server (what socketio.run() does, plus TCP_NODELAY and limits), on the
    early listening socket when it is for the configured address, until `shutdown` has run."""
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
        sock = sock or listener(host, port)
        if shutdown is not None:
            shutdown.listener = sock
            sock = GracefulListener(sock, shutdown)
        eventlet.wsgi.server(sock, app, log_output=False, max_size=settings["MAX_CONNECTIONS"] + 64,
                             socket_timeout=settings["PING_INTERVAL"] + 2 * settings["PING_TIMEOUT"])
    elif settings["ASYNC_MODE"] == "gevent":
        from gevent import pywsgi

        server = pywsgi.WSGIServer(sock or listener(host, port), app, log=None)
        if shutdown is not None:
            shutdown.server = server
        server.serve_forever()
    else:
        from chatbot import socketio

        socketio.run(app, host=host, port=port, log_output=False, allow_unsafe_werkzeug=True)


class GracefulListener:
    """The listening socket as eventlet's WSGI server sees it: once the shutdown has closed it, accept() waits for the
    shutdown to finish and then ends the server's loop. (Ending it at once would also close every connection,
    before the replies streaming on them are over.)"""

    def __init__(self, sock, shutdown: Shutdown) -> None:
        """Wrap `sock` for `shutdown`."""
        self.sock, self.shutdown = sock, shutdown

    def accept(self):
        """The next connection; after the shutdown, ESHUTDOWN (which ends eventlet's accept loop quietly)."""
        import errno

        try:
            return self.sock.accept()
        except OSError:
            if not self.shutdown.started:
                raise
        self.shutdown.finished.wait()
        raise OSError(errno.ESHUTDOWN, "the server is shutting down")

    def __getattr__(self, name: str):
        """Everything else is the socket's."""
        return getattr(self.sock, name)


class Shutdown:
    """SIGTERM (`docker stop`; as PID 1 the process gets no default action): stop accepting connections, let the
    replies streaming here finish for SHUTDOWN_SECONDS and end the rest as interrupted (their text so far stored and
    sent), close every socket, and let serve() return so that the process exits with 0."""

    def __init__(self, chat, settings) -> None:
        """Shut down the app whose chat service is `chat`; serve() fills in its server (gevent) or listening socket
        (eventlet)."""
        import threading  # patched by now: a green Event

        self.chat, self.settings = chat, settings
        self.server = None
        self.listener = None
        self.started = False
        self.finished = threading.Event()

    def install(self) -> None:
        """Run `self.run` in a green thread when SIGTERM arrives (gevent or eventlet; threading keeps the default).

        Not gevent's signal_handler: libev blocks the signal in the main thread only, so a SIGTERM the kernel hands
        to another thread (llama.cpp's, the offload pool's) takes its default action, which for PID 1 in a container
        is none at all. Python's own handler catches it in every thread and writes the signal's number to the
        wake-up pipe, which a green thread waits on (a plain handler would run only at the loop's next wake-up).
        """
        import select
        import signal

        from chatbot import socketio

        if ASYNC_MODE not in ("gevent", "eventlet"):
            return
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end)
        signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the byte on the pipe does the work

        def watch() -> None:
            """Wait (green: select is patched) for SIGTERM's byte on the wake-up pipe; ignore other signals'."""
            while True:
                select.select([read_end], [], [])
                if signal.SIGTERM in os.read(read_end, 64):
                    break
            self.run()

        socketio.start_background_task(watch)

    def run(self) -> None:
        """Shut down: no new connections, replies finished or interrupted, sockets closed, serve() returns."""
        if self.started:
            return
        self.started = True
        from chatbot import socketio

        print("chatbotws: SIGTERM: shutting down", file=sys.stderr, flush=True)
        self.stop_accepting()
        interrupted = self.chat.drain(self.settings["SHUTDOWN_SECONDS"])
        # Every client gets a close frame now (and reconnects, to another process behind a load balancer).
        socketio.server.eio.disconnect()
        self.finished.set()  # eventlet's accept loop ends
        if self.server is not None:
            self.server.stop(timeout=1)
        print(f"chatbotws: stopped ({interrupted} replies interrupted, their text so far stored)",
              file=sys.stderr, flush=True)
        # serve() returns once the connections are closed; a connection that hangs must not keep the process up.
        socketio.sleep(5)
        print("chatbotws: connections still open after shutdown; exiting", file=sys.stderr, flush=True)
        os._exit(0)

    def stop_accepting(self) -> None:
        """Close the listening socket, leaving the server's loop running until the connections are closed (gevent's
        close() would end serve_forever(); eventlet's accept loop ends on a shutdown(), it would wait on a close())."""
        import socket

        if self.server is not None:
            self.server.stop_accepting()
            self.server.socket.close()
        elif self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


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
    shutdown = Shutdown(chat, settings)
    shutdown.install()
    serve(app, settings, early, shutdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
