"""The wire protocol: error codes with their one set of user-facing sentences, payload validation, payload builders."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

MESSAGES = {
    # Starts with the seed server's own text, so a seed client that matched on it still does.
    "session_not_found": "Session not found: that is not this connection's session. Reload the page to start again.",
    "invalid_message": "That message could not be read.",
    "message_too_long": "That message is too long.",
    "busy": "A reply is still being written in this conversation. Wait for it or stop it first.",
    "rate_limited": "You are sending messages too quickly. Please wait a moment.",
    "not_found": "That conversation or message does not exist (or is not yours).",
    "upstream_unavailable": "The AI service is not answering right now. Please try again in a moment.",
    "upstream_rate_limited": "The AI service is busy right now. Please try again shortly.",
    "upstream_auth": "The AI service rejected this server's credentials. The operator has been told.",
    "model_unavailable": "The configured AI model is not available. The operator has been told.",
    "tool_unavailable": "That tool is not available here: the model, or the AI service's plan or region, does not "
                        "offer it. Turn it off in Tools and try again.",
    "internal": "Something went wrong on our side.",
    "auth_required": "Please sign in first.",
    "file_not_ready": "That file is not ready yet: wait until it has finished uploading and being read.",
    "file_unsupported": "That file cannot be used here.",
    "file_too_large": "That file is too large.",
    "storage_full": "Your storage for files is full: delete some files first.",
    "model_cannot_see": "This model cannot see pictures: pick a model that can, or remove the pictures.",
}
# The one sentence for an upstream that refused the conversation itself (HTTP 400): code invalid_message.
UPSTREAM_REJECTED = "The AI service could not accept this conversation. Try a shorter or different message."


def upstream_sentence(code: str) -> str:
    """The sentence people see for a provider's error code (an upstream refusal reads apart from a bad message)."""
    return UPSTREAM_REJECTED if code == "invalid_message" else MESSAGES[code]

_ID = re.compile(r"^[0-9a-f]{32}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
# C0 controls other than tab, newline and carriage return have no place in chat text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ChatError(Exception):
    """A failure the client is told about as `error {code, message}`."""

    def __init__(self, code: str, message: str | None = None, *, retry_after: float | None = None,
                 kind: str | None = None):
        """Build the error; `message` defaults to the code's standard sentence; `kind` says which of our limits
        refused (message, ip, action, connection, server_full, concurrent) for the metrics, never the client."""
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES[code]
        self.retry_after = retry_after
        self.kind = kind

    def payload(self, **extra: Any) -> dict[str, Any]:
        """The `error` event payload."""
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            data["retry_after"] = round(self.retry_after, 1)
        data.update(extra)
        return data


def payload_dict(payload: Any) -> dict[str, Any]:
    """The payload as a dict; a missing payload is an empty one, anything else is invalid."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ChatError("invalid_message", "The event payload must be a JSON object.")
    return payload


def message_text(payload: dict[str, Any], max_chars: int, *, allow_blank: bool = False) -> str:
    """The `message` field: a non-blank string of valid Unicode, without control characters, within the limit
    (blank allowed with `allow_blank`: a message that carries files)."""
    text = payload.get("message")
    if not isinstance(text, str):
        raise ChatError("invalid_message", "The message must be text.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ChatError("invalid_message", "The message contains invalid characters.") from None
    if _CONTROL.search(text):
        raise ChatError("invalid_message", "The message contains control characters.")
    if not text.strip() and not allow_blank:
        raise ChatError("invalid_message", "The message is empty.")
    if len(text) > max_chars:
        raise ChatError("message_too_long", f"That message is too long: the limit is {max_chars} characters.")
    return text


def optional_id(payload: dict[str, Any], field: str) -> str | None:
    """An optional 32-hex id field (conversation or session); wrong shape → not_found (it cannot be anyone's)."""
    value = payload.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChatError("invalid_message", f"{field} must be a string.")
    if not _ID.match(value):
        raise ChatError("not_found")
    return value


def required_id(payload: dict[str, Any], field: str) -> str:
    """A required 32-hex id field."""
    value = optional_id(payload, field)
    if value is None:
        raise ChatError("invalid_message", f"{field} is required.")
    return value


def client_id(payload: dict[str, Any]) -> str | None:
    """The optional idempotency key of a user message."""
    value = payload.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise ChatError("invalid_message", "client_id must be 1-100 letters, digits or -_.:")
    return value


def reply_id(payload: dict[str, Any], *, required: bool = True) -> int | None:
    """The `reply_id` field: a positive integer."""
    value = payload.get("reply_id")
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ChatError("invalid_message", "reply_id must be a positive integer.")
    return value


def after_seq(payload: dict[str, Any], field: str = "after_seq") -> int:
    """The `after_seq` (or `after_reasoning_seq`) field of resume: -1 (nothing seen yet) or a seq already applied."""
    value = payload.get(field, -1)
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value < 2**31:
        raise ChatError("invalid_message", f"{field} must be an integer ≥ -1.")
    return value


_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$")


def model_id(payload: dict[str, Any]) -> str | None:
    """The `model` field of set_model: a model id (letters, digits and ._:/@+-, at most 100), or null (the default)."""
    value = payload.get("model")
    if value is None:
        return None
    if not isinstance(value, str) or not _MODEL.match(value):
        raise ChatError("invalid_message", "model must be a model id from list_models, or null for the default.")
    return value


def title_text(payload: dict[str, Any]) -> str:
    """The `title` field of rename: non-blank text of at most 200 characters."""
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip() or _CONTROL.search(title):
        raise ChatError("invalid_message", "The title must be non-empty text.")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        raise ChatError("invalid_message", "The title contains invalid characters.") from None
    if len(title) > 200:
        raise ChatError("message_too_long", "That title is too long: the limit is 200 characters.")
    return " ".join(title.split())


def message_id(payload: dict[str, Any]) -> int:
    """The `message_id` field of edit_message and switch_branch: a positive integer."""
    value = payload.get("message_id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ChatError("invalid_message", "message_id must be a positive integer.")
    return value


def search_query(payload: dict[str, Any], max_chars: int) -> str:
    """The `query` field of search: text without control characters, at most `max_chars` once trimmed."""
    query = payload.get("query")
    if not isinstance(query, str):
        raise ChatError("invalid_message", "The search must be text.")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise ChatError("invalid_message", "The search contains invalid characters.") from None
    query = query.strip()
    if _CONTROL.search(query):
        raise ChatError("invalid_message", "The search contains control characters.")
    if len(query) > max_chars:
        raise ChatError("invalid_message", f"That search is too long: at most {max_chars} characters.")
    return query


def search_limit(payload: dict[str, Any], most: int) -> int:
    """The optional `limit` of search: 1 to `most` results (20 when absent)."""
    value = payload.get("limit", min(20, most))
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
        raise ChatError("invalid_message", f"limit must be an integer from 1 to {most}.")
    return value


def before_id(payload: dict[str, Any]) -> int | None:
    """The `before_id` field of load_more: a message id (a positive integer), or absent for the newest page."""
    value = payload.get("before_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ChatError("invalid_message", "before_id must be a positive integer.")
    return value


def attachment_ids(payload: dict[str, Any]) -> list[str] | None:
    """The optional `attachments` field of user_message and edit_message: distinct file ids (None when absent;
    a malformed id cannot be anyone's file: not_found)."""
    value = payload.get("attachments")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value) or len(value) > 100:
        raise ChatError("invalid_message", "attachments must be a list of file ids.")
    if len(set(value)) != len(value):
        raise ChatError("invalid_message", "attachments names a file twice.")
    if not all(_ID.match(item) for item in value):
        raise ChatError("not_found", "That file does not exist (or is not yours).")
    return value


# ---- payload builders ------------------------------------------------------------------------------------------


def wire_message(message: dict, *, reasoning: bool = True) -> dict:
    """A stored message as `history` and `load_more` show it (a streaming reply is resumed, not shown), with its
    place in the tree (its parent and, on a path, which of its versions it is); its thinking only when `reasoning`
    (the operator may hide it: SHOW_REASONING)."""
    data = {key: message[key] for key in ("id", "role", "content", "created_at", "status")}
    data["parent_id"] = message.get("parent_id")
    if "versions" in message:
        data.update(version=message["version"], versions=message["versions"], sibling_ids=message["sibling_ids"])
    if message["role"] == "assistant":
        data["reply_id"] = message["id"]
        for key in ("model", "usage", "speed", "finish_reason", "tools"):
            if message.get(key) is not None:
                data[key] = message[key]
        if reasoning and message.get("reasoning"):
            data["reasoning"] = message["reasoning"]
        if message["status"] == "streaming":
            data["content"] = ""
            data.pop("reasoning", None)
            data.pop("tools", None)  # a streaming reply's steps come with resume, in order
    if message.get("client_id"):
        data["client_id"] = message["client_id"]
    for key in ("attachments", "sources"):  # files a user message carries; excerpts a reply was given
        if message.get(key):
            data[key] = message[key]
    return data


def history(conversation_id: str, messages: list[dict], more: bool, *, reasoning: bool = True) -> dict:
    """The `history` payload: a conversation's newest page of messages, and whether older ones exist."""
    return {"conversation_id": conversation_id, "messages": [wire_message(m, reasoning=reasoning) for m in messages],
            "more": more}


def final_message(message: dict, finish_reason: str | None, *, reasoning: bool = True) -> dict:
    """The final `bot_message` of a reply: its whole text, and (when known) thinking, model, usage and speed."""
    created = datetime.fromisoformat(message["created_at"])
    data = {"message": message["content"], "timestamp": created.strftime("%H:%M"),
            "created_at": message["created_at"], "conversation_id": message["conversation_id"],
            "reply_id": message["id"], "message_id": message["id"], "finish_reason": finish_reason,
            "usage": message.get("usage"), "model": message.get("model"), "speed": message.get("speed")}
    if message.get("tools"):
        data["tools"] = message["tools"]
    if reasoning and message.get("reasoning"):
        data["reasoning"] = message["reasoning"]
    if message.get("sources"):
        data["sources"] = message["sources"]
    return data


def welcome(conversation_id: str, text: str) -> dict:
    """The welcome `bot_message` of an empty conversation (not stored)."""
    now = datetime.now(UTC)
    return {"message": text, "timestamp": now.strftime("%H:%M"), "created_at": now.isoformat(),
            "conversation_id": conversation_id, "welcome": True}
