"""Signed, expiring session tokens: the only proof of who owns which conversations."""

from __future__ import annotations

import re
import uuid

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "chatbot_token"
_OWNER = re.compile(r"^[0-9a-f]{32}$")


class SessionTokens:
    """Issues and checks tokens that carry an owner id, signed with SECRET_KEY."""

    def __init__(self, secret_key: str, max_age_seconds: float):
        """Sign with `secret_key`; tokens older than `max_age_seconds` are refused."""
        self._serializer = URLSafeTimedSerializer(secret_key, salt="chatbotws-session")
        self.max_age = int(max_age_seconds)

    def issue(self, owner_id: str) -> str:
        """A fresh token for `owner_id` (re-issued on every connect, so active sessions never expire)."""
        return self._serializer.dumps(owner_id)

    def owner(self, token: object) -> str | None:
        """The owner id a token proves, or None when it is missing, forged, malformed or expired."""
        if not isinstance(token, str) or not token or len(token) > 512:
            return None
        try:
            owner_id = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        return owner_id if isinstance(owner_id, str) and _OWNER.match(owner_id) else None

    @staticmethod
    def new_owner_id() -> str:
        """A new random owner id."""
        return uuid.uuid4().hex
