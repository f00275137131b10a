"""Accounts for the edges: sign-in bookkeeping, proxy users, password changes, one-time links and the admin's
changes. Framework-free: the web layer asks this service, never the store."""

from __future__ import annotations

import logging

from ..store import LinkInvalid, LoginState, Store, UsernameTaken

__all__ = ["AccountService", "LinkInvalid", "LoginState", "UsernameTaken"]

log = logging.getLogger("chatbot.access")

# What an admin may do to an account, as the store's (state or role) change.
ADMIN_ACTIONS = {"approve": ("state", "active"), "enable": ("state", "active"), "disable": ("state", "disabled"),
                 "delete": ("delete", None), "promote": ("role", "admin"), "demote": ("role", "user")}


class AccountService:
    """Accounts, logins and links, through the store."""

    def __init__(self, store: Store):
        """Work through `store`."""
        self.store = store

    # ---- reading -----------------------------------------------------------------------------------------

    def count(self) -> int:
        """How many accounts exist (none yet: the first sign-up becomes the admin)."""
        return self.store.count_users()

    def find(self, username: str) -> dict | None:
        """The account with this name, or None."""
        return self.store.find_user(username)

    def get(self, user_id: str) -> dict | None:
        """The account with this id, or None."""
        return self.store.get_user(user_id)

    def by_subject(self, subject: str) -> dict | None:
        """The account linked to an OpenID provider's subject, or None."""
        return self.store.user_by_subject(subject)

    def login_state(self, user_id: str) -> LoginState | None:
        """The account's state, role and login generation, in one read."""
        return self.store.login_state(user_id)

    def overview(self) -> list[dict]:
        """Every account with its usage, for the admin page."""
        return self.store.users_with_usage()

    # ---- signing up and in -------------------------------------------------------------------------------

    def create(self, username: str, password_hash: str | None, *, pending: bool, invite: str | None = None,
               oidc_subject: str | None = None) -> dict:
        """A new account (UsernameTaken, LinkInvalid for a spent invitation)."""
        return self.store.create_user(username, password_hash, pending=pending, invite=invite,
                                      oidc_subject=oidc_subject)

    def proxy_user(self, name: str) -> LoginState | None:
        """The active account an authenticating proxy names, made on first sight."""
        user = self.store.find_user(name)
        if user is None:
            try:
                user = self.store.create_user(name, None, pending=False)
                log.info("account created for proxy user=%s", user["id"][:8])
            except UsernameTaken:  # another request made it a moment ago
                user = self.store.find_user(name)
        state = self.store.login_state(user["id"]) if user else None
        return state if state is not None and state.active else None

    def signed_in(self, user: dict, anonymous_owner: str | None) -> int:
        """Record a sign-in: this browser's anonymous conversations move into the account; returns how many."""
        moved = self.store.adopt_conversations(user["owner_id"], anonymous_owner) if anonymous_owner else 0
        self.store.touch_owner(user["owner_id"])
        return moved

    def link_subject(self, user_id: str, subject: str) -> None:
        """Link an account to an OpenID provider's subject."""
        self.store.link_subject(user_id, subject)

    # ---- passwords and logins ----------------------------------------------------------------------------

    def set_password_hash(self, user_id: str, password_hash: str, *, end_logins: bool) -> None:
        """Store a new password hash (ending every login of the account when asked)."""
        self.store.set_password_hash(user_id, password_hash, end_sessions=end_logins)

    def end_logins(self, user_id: str) -> None:
        """End every login of the account (a new login generation)."""
        self.store.end_sessions(user_id)

    def check_link(self, token: str, purpose: str) -> dict | None:
        """The one-time link (`invite` or `reset`) a token names while it is valid, or None."""
        return self.store.check_link(token, purpose)

    def reset_password(self, token: str, password_hash: str) -> str:
        """Use a reset link: set the password and end every login; returns the account id (LinkInvalid)."""
        return self.store.reset_password(token, password_hash)

    # ---- the admin's changes -----------------------------------------------------------------------------

    def change(self, user_id: str, action: str) -> None:
        """Approve, enable, disable, delete, promote or demote an account (KeyError for another action)."""
        kind, value = ADMIN_ACTIONS[action]
        if kind == "state":
            self.store.set_user_state(user_id, value)
        elif kind == "role":
            self.store.set_user_role(user_id, value)
        else:
            self.store.delete_user(user_id)

    def set_daily_token_limit(self, user_id: str, limit: int | None) -> None:
        """Set or clear one account's daily LLM-token override."""
        self.store.set_daily_token_limit(user_id, limit)

    def create_link(self, purpose: str, *, created_by: str, ttl_seconds: float, user_id: str | None = None) -> str:
        """A one-time link token (only its hash is kept)."""
        return self.store.create_link(purpose, created_by=created_by, ttl_seconds=ttl_seconds, user_id=user_id)
