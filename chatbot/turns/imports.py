"""Reading an import file: a ChatGPT export (`conversations.json`: a list of conversations whose `mapping` is a
tree of nodes, branches included) or our own JSON export (`{conversation, messages}` with `parent_id`s). A file
that is not one of them, or is malformed anywhere, is refused with one sentence; nothing of it is imported."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from datetime import UTC, datetime

from ..protocol import ChatError
from ..store.imports import ImportedConversation, ImportedMessage
from ..store.settings import SETTING_NAMES
from .settings import settings_changes

IMPORT_MAX_BYTES = 50 * 1024 * 1024
IMPORT_MAX_CONVERSATIONS = 5_000
IMPORT_MAX_MESSAGES = 200_000
ROLES = ("user", "assistant")


def refused(sentence: str) -> ChatError:
    """The refusal of a file that cannot be imported."""
    return ChatError("invalid_message", f"Nothing was imported: {sentence}")


def parse_import(raw: bytes) -> list[ImportedConversation]:
    """Every conversation of an import file, checked whole before anything is written."""
    if len(raw) > IMPORT_MAX_BYTES:
        raise refused(f"the file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise refused("the file is not JSON.") from None
    if isinstance(data, list):
        imported = [chatgpt_conversation(item, n) for n, item in enumerate(data, 1)]
    elif isinstance(data, dict) and "conversation" in data and "messages" in data:
        imported = [own_conversation(data)]
    else:
        raise refused("this is neither a ChatGPT export (conversations.json) nor a ChatbotWS JSON export.")
    if not imported:
        raise refused("the file holds no conversations.")
    if len(imported) > IMPORT_MAX_CONVERSATIONS:
        raise refused(f"the file holds more than {IMPORT_MAX_CONVERSATIONS:,} conversations.")
    if sum(len(c.messages) for c in imported) > IMPORT_MAX_MESSAGES:
        raise refused(f"the file holds more than {IMPORT_MAX_MESSAGES:,} messages.")
    return imported


def _time(value: object) -> datetime | None:
    """A timestamp as a ChatGPT export (seconds since 1970) or ours (ISO 8601) writes it; None when absent or bad."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _text_of(content: object) -> str | None:
    """The text of a ChatGPT message's content (its string parts), or None when it has none (pictures, tools)."""
    if not isinstance(content, dict):
        return None
    parts = content.get("parts")
    if isinstance(parts, list):
        text = "\n".join(part for part in parts if isinstance(part, str))
    else:
        text = content.get("text") if isinstance(content.get("text"), str) else ""
    return text if text.strip() else None


def _node_time(node: dict) -> datetime:
    """When a ChatGPT node's message was written (the oldest possible time when unknown): versions in age order."""
    message = node.get("message")
    return (_time(message.get("create_time")) if isinstance(message, dict) else None) or datetime.min.replace(
        tzinfo=UTC)


def chatgpt_conversation(item: object, n: int) -> ImportedConversation:
    """One conversation of a ChatGPT export: the user and assistant messages of its `mapping` tree, every branch
    kept; system, tool and empty nodes are left out, their children hung on the nearest message above them."""
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise refused(f"conversation {n} has no message tree (`mapping`).")
    mapping = item["mapping"]
    for key, node in mapping.items():
        if not isinstance(node, dict) or not (node.get("parent") is None or isinstance(node.get("parent"), str)):
            raise refused(f"conversation {n} has a malformed node {key!r}.")
    children: dict[str | None, list[str]] = defaultdict(list)
    for key, node in mapping.items():
        parent = node.get("parent")
        children[parent if parent in mapping else None].append(key)
    kept: dict[str, str | None] = {}  # node key -> the key of the message it hangs on (None: a root)
    conversation = ImportedConversation(title=str(item.get("title") or ""), created_at=_time(item.get("create_time")))
    # Breadth-first from the roots: parents come before children; a node in a cycle is never reached.
    queue: deque[tuple[str, str | None]] = deque((key, None) for key in children[None])
    seen: set[str] = set()
    while queue:
        key, above = queue.popleft()
        if key in seen:
            continue
        seen.add(key)
        message = mapping[key].get("message")
        role = ((message or {}).get("author") or {}).get("role") if isinstance(message, dict) else None
        text = _text_of(message.get("content")) if isinstance(message, dict) else None
        if role in ROLES and text is not None:
            metadata = message.get("metadata")
            model = metadata.get("model_slug") if isinstance(metadata, dict) else None
            conversation.messages.append(ImportedMessage(key, above, role, text, _time(message.get("create_time")),
                                                         model if isinstance(model, str) else None))
            kept[key], below = above, key
        else:
            kept[key], below = above, above
        queue.extend((child, below) for child in sorted(children[key], key=lambda child: _node_time(mapping[child])))
    current, keys = item.get("current_node"), {message.key for message in conversation.messages}
    while isinstance(current, str) and current in kept and current not in keys:
        current = kept[current]
    conversation.leaf = current if isinstance(current, str) else None
    return conversation


def own_conversation(data: dict) -> ImportedConversation:
    """Our own JSON export: the conversation's whole tree and its active leaf."""
    meta, rows = data["conversation"], data["messages"]
    if not isinstance(meta, dict) or not isinstance(rows, list):
        raise refused("the export's `conversation` must be an object and its `messages` a list.")
    conversation = ImportedConversation(title=str(meta.get("title") or ""), created_at=_time(meta.get("created_at")))
    try:  # the conversation's settings come along, checked as update_conversation checks them
        conversation.settings = settings_changes({name: meta[name] for name in SETTING_NAMES if name in meta})
    except ChatError as exc:
        raise refused(exc.message[0].lower() + exc.message[1:]) from None
    known: set[str] = set()
    for n, row in enumerate(sorted(rows, key=lambda r: r.get("id", 0) if isinstance(r, dict) else 0), 1):
        if not isinstance(row, dict) or isinstance(row.get("id"), bool) or not isinstance(row.get("id"), int):
            raise refused(f"message {n} has no id.")
        if row.get("role") not in ROLES or not isinstance(row.get("content"), str):
            raise refused(f"message {row['id']} needs a role (user or assistant) and text.")
        parent = row.get("parent_id")
        if parent is not None and str(parent) not in known:
            raise refused(f"message {row['id']} follows a message that is not before it in the file.")
        key = str(row["id"])
        if key in known:
            raise refused(f"message id {row['id']} appears twice.")
        known.add(key)
        model = row.get("model")
        conversation.messages.append(ImportedMessage(key, None if parent is None else str(parent), row["role"],
                                                     row["content"], _time(row.get("created_at")),
                                                     model if isinstance(model, str) else None))
    leaf = meta.get("active_leaf_id")
    conversation.leaf = str(leaf) if leaf is not None and str(leaf) in known else None
    return conversation
