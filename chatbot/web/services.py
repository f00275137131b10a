"""The one door from the edges to the engine: the app's services, built once in `create_app`, with typed accessors.
Every other web module asks these functions, never `app.extensions` itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from ..files.service import FileService
from ..metrics import Metrics
from ..passwords import Passwords
from ..providers import Provider
from ..ratelimit import RateLimiter
from ..store import Store
from ..turns.accounts import AccountService
from ..turns.registry import Replies
from ..turns.service import ChatService
from ..turns.tooling import ToolActions
from .sessions import LoginTokens


@dataclass
class AppServices:
    """What the edges work with: the chat engine and accounts, the metrics, the login-token signer, the password
    hasher, the uploads, and (for readiness and the page) the store, provider, reply registry and limiter behind
    them."""

    chat: ChatService
    accounts: AccountService
    metrics: Metrics
    tokens: LoginTokens
    passwords: Passwords
    store: Store
    provider: Provider
    replies: Replies
    limiter: RateLimiter
    files: FileService
    oidc: Any = None  # the registered OpenID Connect client, when OIDC_ISSUER is set


def install(app: Flask, services: AppServices) -> None:
    """Put the services in the app (once, in create_app)."""
    app.extensions["chatbot"] = services


def services(app: Flask | None = None) -> AppServices:
    """The app's services (the current app's by default)."""
    return (app or current_app).extensions["chatbot"]


def chat() -> ChatService:
    """The chat engine: connections, turns, branches and conversations."""
    return services().chat


def tools() -> ToolActions:
    """The tool events' work: list, choose, approve."""
    return services().chat.tools


def accounts() -> AccountService:
    """Accounts, logins and links."""
    return services().accounts


def tokens() -> LoginTokens:
    """The login-token signer."""
    return services().tokens


def passwords() -> Passwords:
    """The password hasher."""
    return services().passwords


def metrics() -> Metrics:
    """This process's metrics."""
    return services().metrics


def limiter() -> RateLimiter:
    """The rate limiter."""
    return services().limiter


def provider() -> Provider:
    """The LLM provider serving replies."""
    return services().provider


def files() -> FileService:
    """Uploads (tus) and the files they become."""
    return services().files
