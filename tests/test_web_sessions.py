"""Session tokens: signed, expiring, carrying only a well-formed owner id."""

from __future__ import annotations

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from chatbot.web.sessions import LoginTokens

OWNER = "0123456789abcdef0123456789abcdef"


def test_sessions_round_trip():
    tokens = LoginTokens("k" * 32, 3600)
    assert tokens.owner(tokens.issue(OWNER)) == OWNER


@pytest.mark.parametrize("token", [None, "", 5, ["x"], "not.a.token", "x" * 600])
def test_sessions_garbage_is_refused(token):
    assert LoginTokens("k" * 32, 3600).owner(token) is None


def test_sessions_other_key_is_refused():
    assert LoginTokens("k" * 32, 3600).owner(LoginTokens("j" * 32, 3600).issue(OWNER)) is None


def test_sessions_expired_token_is_refused():
    tokens = LoginTokens("k" * 32, 60)

    class HourAgoSigner(TimestampSigner):
        def get_timestamp(self):
            return super().get_timestamp() - 3600

    old = URLSafeTimedSerializer("k" * 32, salt="chatbotws-session", signer=HourAgoSigner).dumps(OWNER)
    assert tokens.owner(old) is None


def test_sessions_signed_payload_must_be_an_owner_id():
    forged_shape = URLSafeTimedSerializer("k" * 32, salt="chatbotws-session").dumps({"owner": OWNER})
    assert LoginTokens("k" * 32, 3600).owner(forged_shape) is None
