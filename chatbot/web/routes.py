"""HTTP: the chat page, health and readiness probes, metrics, and conversation export and import."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from ..protocol import ChatError
from ..store import NotFound
from ..tools.summary import markdown_steps
from ..turns.imports import IMPORT_MAX_BYTES
from .access import auth_mode, current_login, current_user, login_required, request_owner
from .auth import set_login_cookie
from .file_export import markdown_lines
from .services import chat, provider, tokens
from .services import metrics as app_metrics

bp = Blueprint("main", __name__)
log = logging.getLogger("chatbot.routes")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Every response: own-origin-only CSP, no sniffing, no framing, no referrer leaks."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


@bp.get("/")
@login_required
def index():
    """The chat page; sets the HttpOnly session cookie the page's socket rides on (accounts and proxy mode: for
    the signed-in user only; anyone else is sent to sign in)."""
    llm = provider()
    user = current_user() if auth_mode() != "open" else None
    page_config = {"demo": llm.demo, "model": llm.model, "provider": llm.name, "notice": llm.notice,
                   "max_message_chars": current_app.config["MAX_MESSAGE_CHARS"],
                   "version": current_app.config["VERSION"], "auth": auth_mode(),
                   "share_links": current_app.config["SHARE_LINKS"]}
    response = Response(render_template("chat.html", page_config=page_config, user=user, auth_mode=auth_mode()))
    # Re-issued on every visit, so the session expires only after SESSION_TTL_DAYS without one.
    if auth_mode() == "open":
        token = tokens().issue(request_owner() or tokens().new_owner_id())
    else:
        token = tokens().renew(current_login())
    set_login_cookie(response, token)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the database (and Redis, when configured) answer; says which provider and model serve."""
    checks = {}
    for name, probe in chat().probes().items():
        try:
            probe()
            checks[name] = "ok"
        except Exception:
            log.exception("readiness: %s check failed", name)
            checks[name] = "failed"
    ready = all(value == "ok" for value in checks.values())
    llm = provider()
    return jsonify(status="ok" if ready else "unavailable", checks=checks, provider=llm.name,
                   model=llm.model), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    """Prometheus metrics of this process (each process of a deployment exposes its own)."""
    body, content_type = app_metrics().render()
    return Response(body, content_type=content_type)


@bp.get("/conversations/<conversation_id>/export.<fmt>")
@login_required
def export(conversation_id: str, fmt: str):
    """Download one of the session's conversations: JSON holds the whole tree, Markdown the active path."""
    owner_id = request_owner()
    if fmt not in ("md", "json"):
        return _not_found()
    if owner_id is None:
        return jsonify(error={"code": "session_not_found", "message": "No valid session."}), 401
    try:
        # JSON: the whole tree, every version with its parent_id, and the path shown; Markdown: the active path.
        conversation, messages = chat().conversations.export(owner_id, conversation_id, whole_tree=fmt == "json")
    except NotFound:
        return _not_found()
    if not current_app.config["SHOW_REASONING"]:
        messages = [{**message, "reasoning": None} for message in messages]
    filename = f"conversation-{conversation_id[:8]}.{fmt}"
    if fmt == "json":
        body = json.dumps({"conversation": conversation, "messages": messages,
                           "files": chat().attachments.export_files(owner_id, messages)}, ensure_ascii=False, indent=2)
        mimetype = "application/json"
    else:
        body = to_markdown(conversation, messages)
        mimetype = "text/markdown; charset=utf-8"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/conversations/import")
@login_required
def import_conversations():
    """Import a ChatGPT export (conversations.json) or a ChatbotWS JSON export sent as the request body (the page
    sends it with its CSRF token): every conversation, or on any error none."""
    owner_id = request_owner()
    if owner_id is None:
        return jsonify(error={"code": "session_not_found", "message": "No valid session."}), 401
    if (request.content_length or 0) > IMPORT_MAX_BYTES:
        return jsonify(error={"code": "message_too_long", "message": "That file is too large to import."}), 413
    try:
        return jsonify(chat().team.import_file(owner_id, request.get_data(cache=False)))
    except ChatError as exc:
        return jsonify(ok=False, error=exc.payload()), 429 if exc.code == "rate_limited" else 400


def to_markdown(conversation: dict, messages: list[dict]) -> str:
    """A conversation as a Markdown document."""
    out = [f"# {conversation['title']}", "", f"_Exported from ChatbotWS — started {conversation['created_at']}_", ""]
    for message in messages:
        who = "You" if message["role"] == "user" else "Assistant"
        note = "" if message["status"] == "complete" else f" ({message['status']})"
        out += [f"## {who}{note} — {message['created_at']}", ""]
        if message.get("reasoning"):
            thinking = "\n".join(f"> {line}" if line else ">" for line in message["reasoning"].splitlines())
            out += ["> **Thinking** (the model's reasoning before it answered; not part of the answer)", ">",
                    thinking, ""]
        out += markdown_steps(message.get("tools"))
        out += [message["content"], "", *markdown_lines(message)]
    return "\n".join(out)


def _not_found():
    """The export route's answer for anything that is not the caller's."""
    return jsonify(error={"code": "not_found", "message": "That conversation does not exist (or is not yours)."}), 404
