"""ChatbotWS: a Flask-SocketIO chat server that streams model replies and keeps every conversation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

__version__ = "0.1.0"

from .extensions import socketio

__all__ = ["create_app", "socketio"]

# Socket.IO's and Engine.IO's own messages, in our format; below WARNING they would log every packet's content.
_socket_log = logging.getLogger("chatbot.socketio")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings, store (migrated), LLM provider, reply registry, Socket.IO and routes."""
    from .config import ConfigError, load_settings
    from .files.service import FileService
    from .metrics import Metrics
    from .passwords import Passwords
    from .providers import make_provider
    from .providers.local import LocalModelUnavailable, runtime_problem
    from .ratelimit import RateLimiter
    from .store import Store, UnsupportedDatabase
    from .turns.accounts import AccountService
    from .turns.registry import make_replies
    from .turns.service import STALE_REPLY_SECONDS, ChatService
    from .web import (
        admin,
        auth,
        charts,
        events,  # noqa: F401  (registers the Socket.IO handlers)
        oidc,
        share,
        uploads,
    )
    from .web.guards import MAX_BINARY_PARTS, PollingBodyLimit, cap_websocket_frames, guard_packets
    from .web.routes import bp
    from .web.services import AppServices, install
    from .web.sessions import LoginTokens

    app = Flask(__name__, instance_relative_config=True, root_path=None,
                template_folder="../templates", static_folder="../static")
    settings = load_settings(app.instance_path, test_config)
    app.config.update(settings, VERSION=__version__)
    configure_logging(settings["LOG_LEVEL"])

    store = Store(settings["DATABASE_URL"])
    try:
        store.migrate()
    except UnsupportedDatabase as exc:
        store.close()
        raise ConfigError(f"DATABASE_URL: {exc}") from None
    replies = make_replies(settings["REDIS_URL"], settings["REDIS_PREFIX"])
    # One process owns every reply, so whatever was streaming when it last stopped is over; with Redis other
    # processes may be streaming right now, so only replies with no checkpoint for a while count as dead.
    interrupted = store.interrupt_streaming(stale_after=STALE_REPLY_SECONDS if settings["REDIS_URL"] else None)
    if interrupted:
        logging.getLogger("chatbot").info("startup marked=%d streaming replies as interrupted", interrupted)
    problem = runtime_problem(settings["LOCAL_MODEL_PATH"]) if settings["LLM_PROVIDER"] == "local" else None
    if problem:
        raise ConfigError(f"LLM_PROVIDER=local cannot run: {problem}")
    try:
        provider = make_provider(settings)
    except LocalModelUnavailable as exc:  # only when LLM_PROVIDER=local was asked for; `auto` falls back
        raise ConfigError(f"LLM_PROVIDER=local cannot run: {exc}") from None
    limiter = RateLimiter(settings["REDIS_URL"], prefix=settings["REDIS_PREFIX"],
                          messages=settings["RATE_LIMIT_MESSAGES"],
                          messages_per_ip=settings["RATE_LIMIT_MESSAGES_PER_IP"],
                          connections=settings["RATE_LIMIT_CONNECTIONS"], actions=settings["RATE_LIMIT_ACTIONS"],
                          searches=settings["RATE_LIMIT_SEARCH"], signin=settings["RATE_LIMIT_SIGNIN"],
                          signin_per_ip=settings["RATE_LIMIT_SIGNIN_PER_IP"], uploads=settings["RATE_LIMIT_UPLOADS"])

    socketio.init_app(app, async_mode=settings["ASYNC_MODE"], message_queue=settings["REDIS_URL"],
                      channel=f"{settings['REDIS_PREFIX']}-socketio",
                      cors_allowed_origins=origin_checker(settings["ALLOWED_ORIGINS"]),
                      max_http_buffer_size=settings["MAX_FRAME_BYTES"],
                      ping_interval=settings["PING_INTERVAL"], ping_timeout=settings["PING_TIMEOUT"],
                      manage_session=False, logger=_socket_log, engineio_logger=_socket_log)
    cap_websocket_frames(socketio.server.eio, settings["MAX_FRAME_BYTES"])
    guard_packets(socketio.server, MAX_BINARY_PARTS)
    app.wsgi_app = PollingBodyLimit(app.wsgi_app, settings["MAX_FRAME_BYTES"])
    if settings["TRUST_PROXY"]:
        # Outermost, so Socket.IO's origin check and every handler see the client's address and scheme as the
        # one proxy in front reports them (its last X-Forwarded-For hop, not whatever the client put first).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    metrics = Metrics()
    from .tools.service import ToolService

    tools = ToolService(settings, metrics=metrics)
    chat = ChatService(store=store, provider=provider, replies=replies, limiter=limiter, socketio=socketio,
                       settings=settings, metrics=metrics, tools=tools)
    metrics.track(connected_sockets=lambda: len(chat.sockets), replies_in_flight=chat.replies_in_flight)
    install(app, AppServices(
        chat=chat, accounts=AccountService(store), metrics=metrics,
        tokens=LoginTokens(settings["SECRET_KEY"], settings["SESSION_TTL_DAYS"] * 86400),
        passwords=Passwords(time_cost=settings["ARGON2_TIME_COST"], memory_kib=settings["ARGON2_MEMORY_KIB"],
                            parallelism=settings["ARGON2_PARALLELISM"]),
        store=store, provider=provider, replies=replies, limiter=limiter,
        files=FileService(store=store, settings=settings, limiter=limiter, spawn=socketio.start_background_task)))
    auth.init_auth(app)
    uploads.init_uploads(app)
    oidc.init_oidc(app)
    for blueprint in (bp, auth.bp, oidc.bp, admin.bp, share.bp, charts.bp):
        app.register_blueprint(blueprint)
    if settings["AUTH_MODE"] == "proxy" and not settings["TRUST_PROXY"]:
        logging.getLogger("chatbot").warning("AUTH_MODE=proxy without TRUST_PROXY: every request is refused until "
                                             "TRUST_PROXY=true (and AUTH_PROXY_TRUSTED names the proxy)")
    return app


def origin_checker(allowed: tuple[str, ...]):
    """Accept a Socket.IO handshake from the page's own origin or an exact ALLOWED_ORIGINS entry."""
    extra = set(allowed)

    def check(origin: str | None, environ: dict) -> bool:
        """Called by python-engineio for a handshake that carries an Origin header."""
        if "*" in extra:
            return True
        host = environ.get("HTTP_HOST")
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{host}" if host else None
        return origin is not None and (origin == own or origin in extra)

    return check


class _KeyValueFormatter(logging.Formatter):
    """One line per record: time, level, logger, message (which carries key=value pairs)."""

    def __init__(self) -> None:
        """Use ISO-like UTC timestamps."""
        super().__init__("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Fold a traceback into its record's line, so one event is always one line."""
        return super().format(record).replace("\n", "\\n")


def configure_logging(level: str) -> None:
    """Send the app's logs to stderr, one structured line per event (set once per process)."""
    root = logging.getLogger("chatbot")
    root.setLevel(level.upper())
    _socket_log.setLevel(max(logging.WARNING, root.level))
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(_KeyValueFormatter())
        root.addHandler(handler)
        root.propagate = False
