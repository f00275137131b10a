"""HTTP: files over tus 1.0.0 (core + creation + termination) at /files, their status and their download.

Credentials: `Authorization: Bearer <token>` (the `token` of `session_id`), or the page's session cookie, which
for anything that changes something must come with the page's CSRF token in `X-CSRFToken`. A foreign or unknown
id is 404 on every verb. Bodies are streamed into the store piece by piece, never held whole.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import uuid
from urllib.parse import quote

from flask import Blueprint, Flask, Response, jsonify, request
from flask_wtf.csrf import ValidationError, validate_csrf
from werkzeug.exceptions import ClientDisconnected

from ..files.names import ascii_filename
from ..protocol import MESSAGES, ChatError
from ..store import NotFound, OffsetMismatch, UploadTooLong
from .access import auth_mode, request_owner
from .services import files as files_service

bp = Blueprint("uploads", __name__)
log = logging.getLogger("chatbot.uploads")

TUS_VERSION = "1.0.0"
OFFSET_TYPE = "application/offset+octet-stream"
# Downloads: nothing in them may run, load or frame anything, whatever a browser thinks they are.
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
# Served under their own type; anything else (HTML included) goes out as plain text or bytes, always attachment.
SAFE_DOCUMENT_TYPES = {"application/pdf", "application/json", "text/csv", "text/markdown", "text/plain",
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
STATUS = {"auth_required": 401, "session_not_found": 401, "rate_limited": 429, "file_too_large": 413,
          "storage_full": 413, "file_not_ready": 409, "not_found": 404, "invalid_message": 400}


def init_uploads(app: Flask) -> None:
    """Register the blueprint; CSRF is checked here (cookie callers only), not by the app-wide form check."""
    app.register_blueprint(bp)
    app.extensions["csrf"].exempt(bp)


def _error(code: str, message: str | None = None, status: int | None = None, **headers) -> Response:
    """A JSON error body with the protocol's code."""
    response = jsonify(error={"code": code, "message": message or MESSAGES.get(code, code)})
    response.status_code = status or STATUS.get(code, 400)
    response.headers.update(headers)
    return response


def _not_found() -> Response:
    """The answer for an id that is not the caller's (unknown or foreign alike)."""
    return _error("not_found", "That file does not exist (or is not yours).", 404)


@bp.after_request
def tus_headers(response: Response) -> Response:
    """Tus-Resumable on every response (tus requires it on all but OPTIONS, whose answer in the spec has it too);
    nothing here is cached by shared caches."""
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _owner() -> str:
    """The caller's owner id (bearer token or cookie); a cookie caller changing something must bring the CSRF
    token. ChatError auth_required otherwise."""
    owner_id = request_owner()
    if owner_id is None:
        raise ChatError("auth_required", "Please sign in first (or send Authorization: Bearer <token>).")
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    if request.method in ("POST", "PATCH", "DELETE") and not bearer and auth_mode() != "proxy":
        token = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
        try:
            validate_csrf(token)
        except ValidationError:
            raise ChatError("auth_required", "The CSRF token is missing or wrong: reload the page.") from None
    return owner_id


def _guarded(view):
    """Run a view with its errors as HTTP answers: ChatError by code, NotFound as 404, anything else 500 with a
    reference (the detail only in the log)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Refused as exc:
            return exc.response
        except ChatError as exc:
            headers = {"Retry-After": str(int(exc.retry_after + 0.999))} if exc.retry_after else {}
            return _error(exc.code, exc.message, **headers)
        except NotFound:
            return _not_found()
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("files %s %s ref=%s failed", request.method, request.path, ref)
            return _error("internal", f"Something went wrong on our side (reference {ref}).", 500)

    return wrapper


class Refused(Exception):
    """A request answered with `response` before it does anything."""

    def __init__(self, response: Response):
        """Keep the answer."""
        super().__init__(response.status)
        self.response = response


def _check_version() -> None:
    """Refused with 412 for a client speaking another tus version."""
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise Refused(_error("invalid_message", "This server speaks tus 1.0.0 (send Tus-Resumable: 1.0.0).", 412,
                             **{"Tus-Version": TUS_VERSION}))


def _conflict(offset: int) -> Response:
    """409: the upload stands elsewhere (its offset in the header)."""
    return _error("invalid_message", "Upload-Offset is not where this upload stands: ask with HEAD.", 409,
                  **{"Upload-Offset": str(offset)})


def _metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs (a key alone has an empty value)."""
    found = {}
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0]:
            continue
        if len(parts) > 2:
            raise ChatError("invalid_message", "Upload-Metadata must be comma-separated 'key base64value' pairs.")
        try:
            found[parts[0]] = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise ChatError("invalid_message", "Upload-Metadata values must be base64 of UTF-8 text.") from None
    return found


def _number_header(name: str) -> int:
    """A non-negative integer header; ChatError invalid_message when missing or malformed."""
    value = request.headers.get(name, "")
    if not value.isdigit() or len(value) > 18:
        raise ChatError("invalid_message", f"{name} must be a non-negative integer.")
    return int(value)


class _Body:
    """The request body as a stream whose end comes early when the client goes away (what arrived is kept)."""

    def __init__(self, stream):
        """Wrap Werkzeug's input stream."""
        self.stream = stream

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; b"" at the end or once the client has disconnected."""
        try:
            return self.stream.read(size)
        except (ClientDisconnected, OSError):
            log.info("files PATCH client went away mid-body; what arrived is stored")
            return b""


@bp.route("/files", methods=["OPTIONS"], provide_automatic_options=False)
def options():
    """What this tus server can do (no credentials needed)."""
    response = Response(status=204)
    response.headers.update({"Tus-Version": TUS_VERSION,
                             "Tus-Extension": "creation,termination",
                             "Tus-Max-Size": str(files_service().max_bytes)})
    return response


@bp.post("/files")
@_guarded
def create():
    """Creation: Upload-Length (at most MAX_UPLOAD_MB, else 413) and Upload-Metadata `filename` → 201 + Location."""
    _check_version()
    owner_id = _owner()
    if "Upload-Defer-Length" in request.headers:
        raise ChatError("invalid_message", "Upload-Length is required (deferred lengths are not supported).")
    length = _number_header("Upload-Length")
    name = _metadata(request.headers.get("Upload-Metadata", "")).get("filename")
    try:
        info = files_service().create(owner_id, name, length)
    except NotFound:  # a valid token for a session that was deleted
        raise ChatError("session_not_found") from None
    log.info("files create file=%s session=%s length=%d", info["id"][:8], owner_id[:8], length)
    response = Response(status=201)
    response.headers["Location"] = f"/files/{info['id']}"
    return response


@bp.route("/files/<file_id>", methods=["HEAD"])
@_guarded
def head(file_id: str):
    """The upload's offset and length (resume from here)."""
    info = files_service().info(_owner(), file_id)
    response = Response(status=200)
    response.headers.update({"Upload-Offset": str(info["received"]), "Upload-Length": str(info["length"]),
                             "Cache-Control": "no-store"})
    return response


@bp.patch("/files/<file_id>")
@_guarded
def patch(file_id: str):
    """Append the body at Upload-Offset (409 when the upload is elsewhere) → 204 + the new Upload-Offset."""
    _check_version()
    owner_id = _owner()
    service = files_service()
    info = service.info(owner_id, file_id)  # 404 before anything else is said about the id
    if request.mimetype != OFFSET_TYPE:
        return _error("invalid_message", f"PATCH bodies must be {OFFSET_TYPE}.", 415)
    offset = _number_header("Upload-Offset")
    if offset != info["received"] or info["status"] != "uploading":
        return _conflict(info["received"])
    if request.content_length is not None and offset + request.content_length > info["length"]:
        return _error("file_too_large", "This body goes past the upload's Upload-Length.", 413)
    try:
        offset = service.append(owner_id, file_id, offset, _Body(request.stream))
    except OffsetMismatch as exc:  # another request moved it meanwhile
        return _conflict(exc.offset)
    except UploadTooLong:
        return _error("file_too_large", "This body goes past the upload's Upload-Length.", 413)
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(offset)
    return response


@bp.delete("/files/<file_id>")
@_guarded
def delete(file_id: str):
    """Termination: the upload (or file) and its bytes are gone."""
    _check_version()
    owner_id = _owner()
    files_service().delete(owner_id, file_id)
    log.info("files delete file=%s session=%s", file_id[:8], owner_id[:8])
    return Response(status=204)


@bp.get("/files/<file_id>/info")
@_guarded
def info(file_id: str):
    """The file's status: {id, name, kind, mime, size, status, pages?, error?}."""
    service = files_service()
    return jsonify(service.public(service.info(_owner(), file_id)))


@bp.get("/files/<file_id>")
@_guarded
def download(file_id: str):
    """The stored bytes: pictures (re-encoded by us) inline as JPEG/PNG, documents always as attachment."""
    found, body = files_service().download(_owner(), file_id)
    if found["kind"] == "image" and found["mime"] in ("image/jpeg", "image/png"):
        mimetype, disposition = found["mime"], "inline"
    else:
        mimetype = found["mime"] if found["mime"] in SAFE_DOCUMENT_TYPES else (
            "text/plain" if (found["mime"] or "").startswith("text/") else "application/octet-stream")
        disposition = "attachment"
    response = Response(body, mimetype=mimetype)
    if mimetype.startswith("text/"):
        response.charset = "utf-8"
    response.headers["Content-Length"] = str(found["size"])
    response.headers["Content-Disposition"] = (f'{disposition}; filename="{ascii_filename(found["name"])}"; '
                                               f"filename*=UTF-8''{quote(found['name'], safe='')}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response
