"""Signed, expiring login tokens: the only proof of who owns which conversations, and of who is signed in."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "chatbot_token"
_OWNER = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Login:
    """What a token proves: an owner (conversation space) and, when signed in, the account and its login
    generation at sign-in (a token whose generation is no longer the account's is dead)."""

    owner_id: str
    user_id: str | None = None
    generation: int | None = None

    @property
    def signed_in(self) -> bool:
        """Whether the token names an account (else it is an anonymous session)."""
        return self.user_id is not None


class LoginTokens:
    """Issues and checks tokens that carry an owner id (and a login), signed with SECRET_KEY."""

    def __init__(self, secret_key: str, max_age_seconds: float):
        """Sign with `secret_key`; tokens older than `max_age_seconds` are refused."""
        self._serializer = URLSafeTimedSerializer(secret_key, salt="chatbotws-session")
        self.max_age = int(max_age_seconds)

    def issue(self, owner_id: str) -> str:
        """A fresh token for an anonymous `owner_id` (re-issued on every connect, so active sessions never expire)."""
        return self._serializer.dumps(owner_id)

    def issue_login(self, owner_id: str, user_id: str, generation: int) -> str:
        """A token for a signed-in account; a random part makes every sign-in's token new (no fixation)."""
        return self._serializer.dumps({"o": owner_id, "u": user_id, "v": generation, "n": secrets.token_hex(8)})

    def read(self, token: object) -> Login | None:
        """What a token proves, or None when it is missing, forged, malformed or expired."""
        if not isinstance(token, str) or not token or len(token) > 512:
            return None
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if isinstance(data, str):
            return Login(data) if _OWNER.match(data) else None
        if not isinstance(data, dict):
            return None
        owner_id, user_id, generation = data.get("o"), data.get("u"), data.get("v")
        if not (isinstance(owner_id, str) and _OWNER.match(owner_id) and isinstance(user_id, str)
                and _OWNER.match(user_id) and isinstance(generation, int) and not isinstance(generation, bool)):
            return None
        return Login(owner_id, user_id, generation)

    def owner(self, token: object) -> str | None:
        """The owner id an anonymous token proves (a signed-in token proves nothing here: see read)."""
        login = self.read(token)
        return login.owner_id if login is not None and not login.signed_in else None

    def renew(self, login: Login) -> str:
        """A fresh token for the same login (sessions expire only after SESSION_TTL_DAYS without a visit)."""
        if login.signed_in:
            return self.issue_login(login.owner_id, login.user_id, login.generation)
        return self.issue(login.owner_id)

    @staticmethod
    def new_owner_id() -> str:
        """A new random owner id."""
        return uuid.uuid4().hex
