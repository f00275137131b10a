"""Single sign-on with any OpenID Connect provider (Authlib): discovery, state, nonce and PKCE; the provider's
subject signs in its linked account, a verified email links an existing one, anyone else signs up as SIGNUP says."""

from __future__ import annotations

import logging

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, request, session, url_for

from ..turns.accounts import LinkInvalid, UsernameTaken
from .access import current_user
from .auth import page, sign_in
from .services import accounts, services

bp = Blueprint("oidc", __name__)
log = logging.getLogger("chatbot.oidc")

REFUSED = "Single sign-on did not work out. Please try again, or sign in with your password."


def init_oidc(app: Flask) -> None:
    """Register the provider from OIDC_ISSUER (its discovery document is read on first use)."""
    if not app.config["OIDC_ISSUER"]:
        return
    oauth = OAuth(app)
    oauth.register(
        "oidc", client_id=app.config["OIDC_CLIENT_ID"], client_secret=app.config["OIDC_CLIENT_SECRET"],
        server_metadata_url=app.config["OIDC_ISSUER"] + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256", "timeout": 10},
    )
    services(app).oidc = oauth.oidc


def _client():
    """The registered provider, or 404 when single sign-on is off."""
    client = services().oidc
    if client is None:
        abort(404)
    return client


@bp.get("/signin/sso")
def start():
    """Send the browser to the provider (Authlib keeps state, nonce and the PKCE verifier in the session)."""
    client = _client()
    if current_user() is not None:
        return redirect(url_for("main.index"))
    session["oidc_invite"] = request.args.get("invite", "")[:200]
    try:
        return client.authorize_redirect(url_for("oidc.callback", _external=True))
    except Exception as exc:  # the provider's discovery document is out of reach
        log.warning("sso start failed: %r", exc)
        return page("auth/refused.html", 502, message="The single sign-on provider is not answering right now.")


@bp.get("/signin/sso/callback")
def callback():
    """The provider sends the browser back: state, code (with the PKCE verifier), id_token signature and nonce
    are all checked by Authlib; any failure is one plain refusal."""
    client = _client()
    try:
        token = client.authorize_access_token()
        claims = token.get("userinfo") or {}
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or "id_token" not in token:
            raise ValueError("no id_token subject")
    except Exception as exc:
        log.warning("sso refused: %s", type(exc).__name__)
        return page("auth/refused.html", 400, message=REFUSED)
    invite = session.pop("oidc_invite", "") or None
    return _sign_in_subject(subject, claims, invite)


def _sign_in_subject(subject: str, claims: dict, invite: str | None):
    """Sign in the account linked to `subject`, link one by verified email, or make one as SIGNUP allows."""
    user = accounts().by_subject(subject)
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    if user is None and email and claims.get("email_verified") is True:
        user = accounts().find(email)
        if user is not None and user["oidc_subject"] is None:
            accounts().link_subject(user["id"], subject)
            log.info("sso linked user=%s by verified email", user["id"][:8])
        elif user is not None:  # that account is linked to another subject already
            return page("auth/refused.html", 409, message="That email belongs to an account linked elsewhere.")
    if user is None:
        user = _sign_up(subject, claims, email, invite)
        if not isinstance(user, dict):
            return user
    if user["state"] != "active":
        return page("auth/pending.html" if user["state"] == "pending" else "auth/refused.html", 403,
                    message="This account is disabled. Ask an admin.")
    return sign_in(user)


def _sign_up(subject: str, claims: dict, email: str | None, invite: str | None):
    """A new account for a provider's user, as SIGNUP allows (the first account is the admin)."""
    policy = current_app.config["SIGNUP"]
    first = accounts().count() == 0
    if not first and (policy == "closed" or (policy == "invite" and not invite)):
        return page("auth/refused.html", 403, message="Sign-up is closed here: ask an admin for an invitation.")
    name = email if email and claims.get("email_verified") is True else None
    name = name or claims.get("preferred_username") or f"sso-{subject}"
    try:
        user = accounts().create(str(name)[:254], None, pending=policy == "approval",
                                   invite=invite if policy == "invite" else None, oidc_subject=subject)
    except UsernameTaken:
        return page("auth/refused.html", 409, message="An account with that name exists already: sign in with "
                    "its password first.")
    except LinkInvalid:
        return page("auth/refused.html", 403, message="That invitation has been used or has expired.")
    log.info("signup user=%s by sso role=%s state=%s", user["id"][:8], user["role"], user["state"])
    return user
