"""Who is asking: the login a request carries (session cookie or bearer token, or in proxy mode the header an
authenticating proxy set), checked against the account's state and login generation. One read per request."""

from __future__ import annotations

import functools
import ipaddress
import logging
import re

from flask import current_app, g, jsonify, redirect, request, url_for

from ..turns.accounts import LoginState
from .services import accounts, tokens
from .sessions import COOKIE_NAME, Login

log = logging.getLogger("chatbot.access")

# What a proxy may name a user with: printable, no spaces or separators that could smuggle anything into logs.
_PROXY_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,254}$")


def auth_mode() -> str:
    """open, accounts or proxy."""
    return current_app.config["AUTH_MODE"]


def client_ip() -> str:
    """The client's address (with TRUST_PROXY, ProxyFix has put the proxy's X-Forwarded-For hop here)."""
    return request.remote_addr or "unknown"


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None without one."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def request_token(auth: object = None) -> str | None:
    """The token a request carries: Socket.IO `auth.token`, `Authorization: Bearer`, or the session cookie."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    bearer = bearer_token()
    return bearer if bearer is not None else request.cookies.get(COOKIE_NAME)


def request_owner() -> str | None:
    """The owner an HTTP request proves by `Authorization: Bearer <token>` or the session cookie (in accounts and
    proxy mode: the signed-in account's)."""
    if auth_mode() != "open":
        user = current_user()
        return user.owner_id if user is not None else None
    bearer = bearer_token()
    return tokens().owner(bearer if bearer is not None else request.cookies.get(COOKIE_NAME))


def anonymous_owner() -> str | None:
    """The anonymous session this browser's cookie proves (to move its conversations at sign-in), if any."""
    return tokens().owner(request.cookies.get(COOKIE_NAME))


def current_user(auth: object = None) -> LoginState | None:
    """The signed-in, active account of this request (cached per request), or None.

    accounts: a login token whose login generation is still the account's. proxy: the account named by the
    proxy's header, only with TRUST_PROXY and only when the connection came from a trusted proxy address.
    """
    if "chatbot_user" not in g:
        g.chatbot_user = _proxy_user() if auth_mode() == "proxy" else _token_user(request_token(auth))
    return g.chatbot_user


def current_login(auth: object = None) -> Login | None:
    """The signed-in user as a Login (owner, account, login generation), or None."""
    user = current_user(auth)
    return None if user is None else Login(user.owner_id, user.user_id, user.session_version)


def socket_login(auth: object) -> Login | None:
    """The login a Socket.IO handshake claims: proxy mode checks the proxy's account here; a token is only read,
    and checked against the account in the connect's one read (ChatService.connect)."""
    if auth_mode() == "proxy":
        return current_login()
    login = tokens().read(request_token(auth))
    return login if login is not None and login.signed_in else None


def _token_user(token: str | None) -> LoginState | None:
    """The account a login token names, if the token is still valid for it."""
    login = tokens().read(token)
    if login is None or not login.signed_in:
        return None
    user = accounts().login_state(login.user_id)
    if user is None or not user.active or user.session_version != login.generation or user.owner_id != login.owner_id:
        return None
    return user


def proxy_hop_trusted() -> bool:
    """Whether this connection came straight from a trusted proxy (TRUST_PROXY and AUTH_PROXY_TRUSTED)."""
    config = current_app.config
    if not config["TRUST_PROXY"]:
        return False
    # ProxyFix has put the client's address in REMOTE_ADDR; the peer that actually connected is kept here.
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR") or request.environ.get("REMOTE_ADDR")
    try:
        address = ipaddress.ip_address((peer or "").split("%", 1)[0])
    except ValueError:
        return False
    return any(address in network for network in config["AUTH_PROXY_TRUSTED"])


def _proxy_user() -> LoginState | None:
    """The account named by the proxy's header (made on first sight: the proxy has authenticated the person)."""
    name = request.headers.get(current_app.config["AUTH_PROXY_HEADER"], "").strip()
    if not name:
        return None
    if not proxy_hop_trusted():
        log.warning("proxy header %s ignored: not from a trusted proxy hop", current_app.config["AUTH_PROXY_HEADER"])
        return None
    if not _PROXY_NAME.match(name):
        log.warning("proxy header %s ignored: not a user name", current_app.config["AUTH_PROXY_HEADER"])
        return None
    return accounts().proxy_user(name)


def login_required(view):
    """An HTTP view that needs a signed-in user in accounts/proxy mode: a page redirects to sign-in, anything
    else answers 401 with a JSON error."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if auth_mode() != "open" and current_user() is None:
            if request.method == "GET" and not _is_api():
                return redirect(url_for("auth.signin"))
            return jsonify(error={"code": "auth_required", "message": "Please sign in first."}), 401
        return view(*args, **kwargs)

    return wrapper


def _is_api() -> bool:
    """Whether the request is for data (an export or a bearer-token client), not a page."""
    return request.path.startswith("/conversations/") or request.headers.get("Authorization", "").startswith("Bearer")
