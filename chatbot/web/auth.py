"""Sign-up, sign-in, sign-out (here and everywhere), password change and reset: server-rendered pages with CSRF
tokens and no script. The login rides on the session cookie, re-issued on every sign-in."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, abort, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..protocol import ChatError
from ..turns.accounts import LinkInvalid, UsernameTaken
from .access import anonymous_owner, auth_mode, client_ip, current_user
from .forms import ActionForm, PasswordForm, ResetForm, SignInForm, SignUpForm
from .services import accounts, chat, limiter, passwords, tokens
from .sessions import COOKIE_NAME

bp = Blueprint("auth", __name__)
log = logging.getLogger("chatbot.auth")

WRONG = "That name and password don't match an account."


def init_auth(app: Flask) -> None:
    """CSRF protection for every form post, with a friendly 400, and the Flask session that carries its token.

    Socket.IO's own requests never reach Flask's views (python-engineio answers them first), so they need no
    exemption; the socket is protected by the origin check and the login instead.
    """
    app.secret_key = app.config["SECRET_KEY"]
    app.config.update(SESSION_COOKIE_NAME="chatbot_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_TIME_LIMIT=None,
                      # The strict HTTPS check wants a Referer, which our no-referrer policy never sends; the
                      # token (in the session) and SameSite cookies protect the forms.
                      WTF_CSRF_SSL_STRICT=False)
    CSRFProtect(app)
    app.before_request(refuse_foreign_posts)
    app.register_error_handler(CSRFError, lambda exc: page("auth/refused.html", 400, message=(
        "This form was too old or not sent from this site. Go back, reload the page and try again.")))


def refuse_foreign_posts():
    """A form post whose Origin is another site's is refused outright (on top of the CSRF token)."""
    origin = request.headers.get("Origin")
    if request.method != "POST" or origin is None:
        return None
    own = f"{request.scheme}://{request.host}"
    if origin == own or origin in current_app.config["ALLOWED_ORIGINS"]:
        return None
    return page("auth/refused.html", 400, message="This form was not sent from this site.")


def page(template: str, status: int = 200, **context) -> Response:
    """Render an auth page (never cached) with what every one of them shows."""
    config = current_app.config
    response = Response(render_template(template, signup=config["SIGNUP"], oidc=bool(config["OIDC_ISSUER"]),
                                        oidc_label=config["OIDC_LABEL"], **context), status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def set_login_cookie(response: Response, token: str) -> Response:
    """Put a login token in the HttpOnly, SameSite cookie the page and its socket ride on."""
    response.set_cookie(COOKIE_NAME, token, max_age=tokens().max_age, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response


def sign_in(user: dict) -> Response:
    """Start a session for `user`: a new token (rotated: nothing from before the sign-in carries over), and the
    conversations this browser made anonymously moved into the account."""
    moved = accounts().signed_in(user, anonymous_owner())
    if moved:
        log.info("signin user=%s adopted=%d anonymous conversations", user["id"][:8], moved)
    log.info("signin user=%s", user["id"][:8])
    token = tokens().issue_login(user["owner_id"], user["id"], user["session_version"])
    return set_login_cookie(redirect(url_for("main.index")), token)


def end_live_sessions() -> None:
    """Drop this process's sockets whose login just ended (other processes notice within a ping round)."""
    chat().logins.sweep()


def _accounts_only() -> None:
    """These pages exist in accounts mode only."""
    if auth_mode() != "accounts":
        abort(404)


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    """The sign-in page; a name and password that match an active account start a session."""
    if auth_mode() == "proxy":
        return page("auth/proxy.html", 401)
    _accounts_only()
    if current_user() is not None:
        return redirect(url_for("main.index"))
    form = SignInForm()
    if not form.validate_on_submit():
        return page("auth/signin.html", 400 if request.method == "POST" else 200, form=form,
                    notice=request.args.get("notice"))
    try:
        limiter().signin(form.username.data, client_ip())
    except ChatError as exc:
        log.info("signin refused code=rate_limited ip=%s", client_ip())
        return page("auth/signin.html", 429, form=form, error=exc.message)
    user = accounts().find(form.username.data)
    # The same argon2 verification runs for an unknown name (against a dummy hash) as for a wrong password.
    if not passwords().verify(user["password_hash"] if user else None, form.password.data):
        log.info("signin refused code=wrong ip=%s", client_ip())
        return page("auth/signin.html", 401, form=form, error=WRONG)
    if user["state"] != "active":
        return page("auth/signin.html", 403, form=form, error=(
            "Your account is waiting for an admin's approval." if user["state"] == "pending"
            else "This account is disabled. Ask an admin."))
    if passwords().needs_rehash(user["password_hash"]):
        accounts().set_password_hash(user["id"], passwords().hash(form.password.data), end_logins=False)
    return sign_in(user)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """The sign-up page, as SIGNUP allows: open, approval (an admin approves), invite (a one-time link), closed.
    The very first account is always possible: it becomes the admin."""
    _accounts_only()
    if current_user() is not None:
        return redirect(url_for("main.index"))
    policy, first = current_app.config["SIGNUP"], accounts().count() == 0
    form = SignUpForm()
    invite = form.invite.data or request.args.get("invite", "")
    form.invite.data = invite
    if not first and (policy == "closed" or (policy == "invite" and accounts().check_link(invite, "invite") is None)):
        reason = "closed" if policy == "closed" else "invite"
        return page("auth/signup.html", 403 if request.method == "POST" else 200, form=None, closed=reason)
    if not form.validate_on_submit():
        return page("auth/signup.html", 400 if request.method == "POST" else 200, form=form, first=first)
    try:
        limiter().signup(client_ip())
        user = accounts().create(form.username.data, passwords().hash(form.password.data),
                                   pending=policy == "approval", invite=invite if policy == "invite" else None)
    except ChatError as exc:
        return page("auth/signup.html", 429, form=form, error=exc.message)
    except UsernameTaken:
        return page("auth/signup.html", 409, form=form, error="That name is taken. Pick another or sign in.")
    except LinkInvalid:
        return page("auth/signup.html", 403, form=None, closed="invite")
    log.info("signup user=%s role=%s state=%s", user["id"][:8], user["role"], user["state"])
    if user["state"] == "pending":
        return page("auth/pending.html", 202)
    return sign_in(user)


@bp.post("/signout")
def signout():
    """Sign out of this browser: the cookie goes (the account's other sessions stay)."""
    ActionForm().validate_on_submit() or abort(400)
    response = redirect(url_for("auth.signin") if auth_mode() == "accounts" else url_for("main.index"))
    response.delete_cookie(COOKIE_NAME, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


@bp.post("/signout/everywhere")
def signout_everywhere():
    """End every session of the account, in every browser and socket, this one included."""
    ActionForm().validate_on_submit() or abort(400)
    user = current_user()
    if user is None:
        return redirect(url_for("auth.signin"))
    accounts().end_logins(user.user_id)
    end_live_sessions()
    log.info("signout_everywhere user=%s", user.user_id[:8])
    response = redirect(url_for("auth.signin", notice="everywhere"))
    response.delete_cookie(COOKIE_NAME, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


@bp.route("/account", methods=["GET", "POST"])
def account():
    """One's account: change the password (which ends every other session), sign out everywhere."""
    _accounts_only()
    user = current_user()
    if user is None:
        return redirect(url_for("auth.signin"))
    form = PasswordForm()
    if not form.validate_on_submit():
        return page("auth/account.html", 400 if request.method == "POST" else 200, form=form, user=user,
                    actions=ActionForm())
    stored = accounts().get(user.user_id)
    if not passwords().verify(stored["password_hash"], form.current.data):
        return page("auth/account.html", 401, form=form, user=user, actions=ActionForm(),
                    error="That is not your current password.")
    accounts().set_password_hash(user.user_id, passwords().hash(form.password.data), end_logins=True)
    end_live_sessions()
    log.info("password_changed user=%s", user.user_id[:8])
    # This browser stays signed in with a token of the new login generation; every other one is dead.
    return sign_in(accounts().get(user.user_id))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """A password reset link made by an admin: choose a new password; every session of the account ends."""
    _accounts_only()
    if accounts().check_link(token, "reset") is None:
        return page("auth/reset.html", 404, form=None)
    form = ResetForm()
    if not form.validate_on_submit():
        return page("auth/reset.html", 400 if request.method == "POST" else 200, form=form)
    try:
        limiter().signup(client_ip())
        user_id = accounts().reset_password(token, passwords().hash(form.password.data))
    except ChatError as exc:
        return page("auth/reset.html", 429, form=form, error=exc.message)
    except LinkInvalid:
        return page("auth/reset.html", 404, form=None)
    end_live_sessions()
    log.info("password_reset user=%s", user_id[:8])
    return redirect(url_for("auth.signin", notice="reset"))
