"""The admin page (admins only): every account with its state, role, last visit and usage; approve, disable,
enable, delete with all its data, make admin, per-user token quota, invitation and password reset links."""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, abort, current_app, redirect, request, url_for

from ..turns.accounts import ADMIN_ACTIONS
from .access import auth_mode, current_user
from .auth import end_live_sessions, page
from .forms import ActionForm, QuotaForm
from .services import accounts

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = logging.getLogger("chatbot.admin")


def admin_required(view):
    """Signed in as an admin, or: the sign-in page for nobody, 403 for an ordinary user."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if auth_mode() == "open":
            abort(404)
        user = current_user()
        if user is None:
            return redirect(url_for("auth.signin"))
        if user.role != "admin":
            return page("auth/refused.html", 403, message="This page is for admins only.")
        return view(*args, **kwargs)

    return wrapper


def _overview(status: int = 200, **context):
    """The admin page."""
    return page("admin.html", status, users=accounts().overview(), me=current_user(), actions=ActionForm(),
                quota_form=QuotaForm(), default_tokens=current_app.config["USER_DAILY_TOKENS"],
                links=auth_mode() == "accounts", **context)


@bp.get("")
@admin_required
def overview():
    """Every account and what can be done to it."""
    return _overview()


@bp.post("/users/<user_id>/<action>")
@admin_required
def change(user_id: str, action: str):
    """Approve, disable, enable, delete, make admin or make user; the admin cannot lock themselves out."""
    ActionForm().validate_on_submit() or abort(400)
    target = accounts().get(user_id)
    if target is None:
        abort(404)
    if user_id == current_user().user_id and action in {"disable", "delete", "demote"}:
        return _overview(409, error="You can't do that to your own account (ask another admin).")
    if action not in ADMIN_ACTIONS:
        abort(404)
    if action == "delete" and request.form.get("confirm") != "yes":
        return _overview(400, error="Tick “sure” to delete an account with all its conversations.")
    accounts().change(user_id, action)
    if action in {"disable", "delete"}:
        end_live_sessions()
    log.info("admin user=%s action=%s target=%s", current_user().user_id[:8], action, user_id[:8])
    return redirect(url_for("admin.overview"))


@bp.post("/users/<user_id>/quota")
@admin_required
def quota(user_id: str):
    """Set or clear one account's daily token override."""
    form = QuotaForm()
    if accounts().get(user_id) is None:
        abort(404)
    if not form.validate_on_submit():
        return _overview(400, error=" ".join(form.daily_tokens.errors) or "That is not a number of tokens.")
    accounts().set_daily_token_limit(user_id, form.limit())
    log.info("admin user=%s action=quota target=%s", current_user().user_id[:8], user_id[:8])
    return redirect(url_for("admin.overview"))


@bp.post("/invite")
@admin_required
def invite():
    """Make a one-time invitation link (shown once: only its hash is kept)."""
    ActionForm().validate_on_submit() or abort(400)
    if auth_mode() != "accounts":
        abort(404)
    token = accounts().create_link("invite", created_by=current_user().user_id, ttl_seconds=_ttl())
    link = url_for("auth.signup", invite=token, _external=True)
    return _overview(link=link, link_kind="invitation")


@bp.post("/users/<user_id>/reset")
@admin_required
def reset_link(user_id: str):
    """Make a one-time password reset link for an account (shown once)."""
    ActionForm().validate_on_submit() or abort(400)
    target = accounts().get(user_id)
    if target is None or auth_mode() != "accounts":
        abort(404)
    token = accounts().create_link("reset", created_by=current_user().user_id, user_id=user_id, ttl_seconds=_ttl())
    link = url_for("auth.reset", token=token, _external=True)
    return _overview(link=link, link_kind=f"password reset for {target['username']}")


def _ttl() -> float:
    """How long a one-time link stays valid, in seconds."""
    return current_app.config["LINK_TTL_HOURS"] * 3600


@bp.after_request
def no_store(response):
    """Admin pages show links and people's data: never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response
