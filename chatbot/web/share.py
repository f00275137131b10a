"""The shared page: `GET /share/<share_id>` shows a share link's snapshot read-only, rendered by the server from
stored text (escaped; the chat's own sanitizer then renders the Markdown), `noindex`, issuing no login or session
(only a reader who already has chats gets the CSRF token of "Continue in my chats"); and `POST
/share/<share_id>/continue` copies it into the reader's own conversations."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, redirect, render_template, url_for

from ..store import NotFound
from ..tools.summary import step_title
from .access import anonymous_owner, auth_mode, current_user
from .services import chat

bp = Blueprint("share", __name__)
log = logging.getLogger("chatbot.share")

NOINDEX = "noindex, nofollow, noarchive"


def reader_owner() -> str | None:
    """The conversation space of the person reading, if they have one (signed in, or an open-mode session)."""
    if auth_mode() == "open":
        return anonymous_owner()
    user = current_user()
    return None if user is None else user.owner_id


def readable() -> bool:
    """Whether SHARE_LINKS lets this request read share links at all."""
    mode = current_app.config["SHARE_LINKS"]
    return mode == "public" or (mode == "signed_in" and current_user() is not None)


@bp.get("/share/<share_id>")
def page(share_id: str):
    """A share link's page: the snapshot, read-only; 404 for a revoked, expired or unknown link (and for every
    link when SHARE_LINKS is off, or is signed_in and the reader is not)."""
    if current_app.config["SHARE_LINKS"] == "signed_in" and current_user() is None:
        return redirect(url_for("auth.signin"))
    share = chat().team.shared(share_id) if readable() else None
    if share is None:
        abort(404)
    owner = reader_owner()
    response = Response(render_template("share.html", share=share, can_continue=owner is not None,
                                        page_config={"share_id": share["share_id"]}, step_title=step_title))
    response.headers["X-Robots-Tag"] = NOINDEX
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/share/<share_id>/continue")
def continue_in_my_chats(share_id: str):
    """Copy the snapshot into the reader's own conversations (their active one from now) and open the chat."""
    owner = reader_owner()
    if owner is None or not readable():
        abort(404)
    try:
        chat().team.continue_share(owner, share_id)
    except NotFound:
        abort(404)
    return redirect(url_for("main.index"))


@bp.after_request
def noindex(response: Response) -> Response:
    """Nothing under /share is for search engines, a 404 included."""
    response.headers.setdefault("X-Robots-Tag", NOINDEX)
    return response
