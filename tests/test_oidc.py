"""Single sign-on against a fake OpenID provider on loopback: discovery, JWKS, PKCE and nonce, linking by verified
email, sign-up policy; a bad state, nonce, signature or audience is each refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from chatbot.config import ConfigError, load_settings
from tests.accounts_kit import location, text
from tests.fake_oidc import FakeOIDC
from tests.test_accounts import accounts, browser, store_of  # noqa: F401  (the fixture too)


@pytest.fixture
def provider():
    """The fake provider for one test."""
    with FakeOIDC() as fake:
        yield fake


@pytest.fixture
def sso_app(accounts, provider):  # noqa: F811
    """Factory: an accounts-mode app that signs in through the fake provider."""
    return lambda **overrides: accounts(**provider.settings(), **overrides)


def single_sign_on(web, *, state: str | None = None):
    """Go through the provider: start, the provider's authorize (it signs in at once), back to our callback."""
    start = web.get("/signin/sso")
    assert start.status_code == 302, text(start)
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    query = {key: values[0] for key, values in parse_qs(callback.query).items()}
    if state is not None:
        query["state"] = state
    return web.get(f"{callback.path}?{urlencode(query)}")


def test_sso_first_user_becomes_the_admin_with_pkce_and_nonce(sso_app, provider):
    app = sso_app()
    web = browser(app)
    assert "Sign in with single sign-on" in text(web.get("/signin"))
    response = single_sign_on(web)
    assert response.status_code == 302 and location(response) == "/"
    user = store_of(app).user_by_subject("subject-1")
    assert (user["username"], user["role"], user["password_hash"]) == ("sso@example.org", "admin", None)
    asked, exchanged = provider.authorize_requests[0], provider.token_requests[0]
    assert asked["code_challenge_method"] == "S256" and asked["nonce"] and asked["state"]
    assert "openid" in asked["scope"].split() and exchanged["code_verifier"]
    assert web.get("/").status_code == 200


def test_sso_returning_subject_signs_in_the_same_account(sso_app, provider):
    app = sso_app()
    single_sign_on(browser(app))
    provider.user = {**provider.user, "email": "changed@example.org"}
    assert location(single_sign_on(browser(app))) == "/"
    assert store_of(app).count_users() == 1


def test_sso_links_an_existing_account_by_verified_email(sso_app, provider):
    app = sso_app()
    browser(app).signup("admin")
    browser(app).signup("SSO@example.org")
    web = browser(app)
    assert location(single_sign_on(web)) == "/"
    assert store_of(app).find_user("sso@example.org")["oidc_subject"] == "subject-1"
    assert store_of(app).count_users() == 2


def test_sso_does_not_link_by_an_unverified_email(sso_app, provider):
    app = sso_app()
    browser(app).signup("sso@example.org")
    provider.user = {**provider.user, "email_verified": False}
    single_sign_on(browser(app))
    assert store_of(app).find_user("sso@example.org")["oidc_subject"] is None
    assert store_of(app).user_by_subject("subject-1")["username"] == "sso-subject-1"  # an account of its own


@pytest.mark.parametrize("policy", ["closed", "invite"])
def test_sso_new_user_follows_the_signup_policy(sso_app, provider, policy):
    app = sso_app(SIGNUP=policy)
    browser(app).signup("admin")
    response = single_sign_on(browser(app))
    assert response.status_code == 403 and store_of(app).user_by_subject("subject-1") is None


def test_sso_new_user_waits_for_approval(sso_app, provider):
    app = sso_app(SIGNUP="approval")
    browser(app).signup("admin")
    response = single_sign_on(browser(app))
    assert response.status_code == 403 and "approval" in text(response)
    assert store_of(app).user_by_subject("subject-1")["state"] == "pending"


@pytest.mark.parametrize("fault", ["state", "nonce", "signature", "audience", "issuer", "expired"])
def test_sso_bad_state_nonce_signature_or_claims_are_refused(sso_app, provider, fault):
    app = sso_app()
    web = browser(app)
    if fault == "nonce":
        provider.nonce_override = "a-nonce-we-never-sent"
    elif fault == "signature":
        provider.sign_with_other_key = True
    elif fault == "audience":
        provider.claims_override = {"aud": "someone-else"}
    elif fault == "issuer":
        provider.claims_override = {"iss": "http://127.0.0.1:1"}
    elif fault == "expired":
        provider.claims_override = {"exp": 1_000_000_000}
    response = single_sign_on(web, state="forged-state" if fault == "state" else None)
    assert response.status_code == 400 and "Single sign-on did not work out" in text(response)
    assert store_of(app).count_users() == 0 and location(web.get("/")) == "/signin"


def test_sso_off_means_no_routes_and_no_button(accounts):  # noqa: F811
    app = accounts()
    web = browser(app)
    assert web.get("/signin/sso").status_code == 404
    assert "single sign-on" not in text(web.get("/signin"))


@pytest.mark.parametrize("missing", ["OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"])
def test_sso_settings_come_together(tmp_path, provider, missing):
    environ = {"AUTH_MODE": "accounts", **provider.settings()}
    del environ[missing]
    with pytest.raises(ConfigError, match=rf"^{missing} must be set too"):
        load_settings(tmp_path, environ=environ)
