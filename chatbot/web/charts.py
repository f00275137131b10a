"""The usage charts' figures as JSON: every model and account for admins (`/admin/usage.json`), one's own for a
signed-in person (`/account/usage.json`, with the daily quota). The pages draw them with uPlot (static/js/charts.js)."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify

from .access import auth_mode, current_user
from .admin import admin_required
from .services import chat

bp = Blueprint("charts", __name__)


@bp.get("/admin/usage.json")
@admin_required
def everyone():
    """Replies, tokens and tool calls per day over 30 days, per model and per account."""
    return no_store(jsonify(chat().team.usage()))


@bp.get("/account/usage.json")
def own():
    """The signed-in account's replies, tokens and tool calls per day over 30 days, and its daily token quota."""
    user = current_user() if auth_mode() != "open" else None
    if user is None:
        abort(404)
    return no_store(jsonify(chat().team.own_usage(user.user_id)))


def no_store(response):
    """Figures change with every reply: never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response
