"""Row shapes and input rules shared by the store's queries: ids, text, titles, times, row → dict."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult

from .schema import CLIENT_ID_MAX, MESSAGE_FIELDS, TITLE_MAX, conversations, messages

DEFAULT_TITLE = "New chat"
AUTO_TITLE_MAX = 60
ROLES = frozenset({"user", "assistant"})
STATUSES = frozenset({"complete", "streaming", "stopped", "interrupted", "error"})
_ID_RE = re.compile(r"[0-9a-f]{32}")
_INT4_MAX = 2**31 - 1


# Columns in the order of a message dict's keys.
_MESSAGE_COLUMNS = tuple(messages.c[name] for name in MESSAGE_FIELDS)


class NotFound(Exception):
    """The conversation or message does not exist or is not the owner's."""


def _now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    """Format a UTC time the same way on every backend, e.g. 2026-11-25T19:33:10.123456+00:00."""
    return value.isoformat(timespec="microseconds")


def _seconds(value: object, what: str) -> timedelta:
    """Return a non-negative finite number of seconds as a timedelta, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{what} must be a finite number >= 0")
    return timedelta(seconds=value)


def _valid_id(value: object) -> bool:
    """Tell whether value looks like one of our 32-hex ids (anything else cannot exist)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def _valid_message_id(value: object) -> bool:
    """Tell whether value can be a message id (Postgres rejects integers beyond int4 outright)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT4_MAX


def _check_text(value: object, what: str) -> str:
    """Return value if it is storable text on both backends, else ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{what} is not valid Unicode") from err
    return value


def _is_client_id(value: object) -> bool:
    """Tell whether value is a usable client id: 1 to CLIENT_ID_MAX characters of storable text."""
    try:
        return 0 < len(_check_text(value, "client_id")) <= CLIENT_ID_MAX
    except ValueError:
        return False


def _clean_stream_text(value: str) -> str:
    """Make model output storable: Postgres refuses NUL and lone surrogates cannot be encoded."""
    value = value.replace("\x00", "\ufffd")
    return value.encode("utf-8", "replace").decode("utf-8")


def _clean_title(title: object) -> str:
    """Strip and collapse whitespace, cap the length; ValueError when nothing is left."""
    title = " ".join(_check_text(title, "title").split())[:TITLE_MAX].rstrip()
    if not title:
        raise ValueError("title must not be empty")
    return title


def _title_from_content(content: str) -> str | None:
    """Derive a one-line title from a first user message, cut at a word boundary when long."""
    text = " ".join(content.split())
    if len(text) <= AUTO_TITLE_MAX:
        return text or None
    cut = text[: AUTO_TITLE_MAX - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > AUTO_TITLE_MAX // 2 else cut).rstrip() + "…"


def _message(row: sa.Row) -> dict:
    """Turn a messages row into the message dict."""
    message = dict(row._mapping)
    message["created_at"] = _iso(message["created_at"])
    return message


def _conversation(row: sa.Row) -> dict:
    """Turn a conversations row (with its message count) into the conversation dict."""
    conversation = dict(row._mapping)
    conversation["created_at"] = _iso(conversation["created_at"])
    conversation["updated_at"] = _iso(conversation["updated_at"])
    return conversation


# A new conversation's settings and project (None: the operator's defaults; in no project).
NEW_CONVERSATION_SETTINGS = {"instructions": None, "temperature": None, "max_tokens": None,
                             "reasoning_effort": None, "project_id": None}

_CONVERSATION_COLUMNS = (
    conversations.c.id,
    conversations.c.title,
    conversations.c.created_at,
    conversations.c.updated_at,
    conversations.c.model,
    conversations.c.instructions,
    conversations.c.temperature,
    conversations.c.max_tokens,
    conversations.c.reasoning_effort,
    conversations.c.project_id,
    sa.select(sa.func.count())
    .where(messages.c.conversation_id == conversations.c.id)
    .correlate(conversations)
    .scalar_subquery()
    .label("message_count"),
    conversations.c.tools,  # the tool ids its replies may use (0007)
)


# Statements built once. Building a statement (operators, coercions, a bind parameter per value) and its cache key
# costs SQLAlchemy several times what SQLite takes to run it, so the turn path's statements are made once, with bind
# parameters, and reused: their cache key is memoized and the compiled form comes from the engine's cache.


@functools.cache
def _insert_statement(table: sa.Table) -> sa.Insert:
    """INSERT INTO table; the columns come from the parameters."""
    return sa.insert(table)


@functools.cache
def _update_statement(table: sa.Table, names: tuple[str, ...]) -> sa.Update:
    """UPDATE table SET name = :v_name, ... WHERE id = :row_id (bind names must differ from the columns')."""
    return sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(
        {name: sa.bindparam(f"v_{name}", type_=table.c[name].type) for name in names})


def owned_row(conn: Connection, table: sa.Table, owner_id: str, row_id: str) -> sa.Row:
    """The row `row_id` of an owner-scoped table (with an `owner_id` column); NotFound if it is not the owner's."""
    if not (_valid_id(owner_id) and _valid_id(row_id)):
        raise NotFound(row_id)
    row = conn.execute(sa.select(table).where(table.c.id == row_id, table.c.owner_id == owner_id)).first()
    if row is None:
        raise NotFound(row_id)
    return row


def insert_row(conn: Connection, table: sa.Table, **values) -> CursorResult:
    """Insert one row of `values` with the table's prepared INSERT."""
    return conn.execute(_insert_statement(table), values)


def update_row(conn: Connection, table: sa.Table, row_id: object, **values) -> CursorResult:
    """Set `values` on the row whose id is `row_id`, with a statement prepared once per set of columns."""
    params = {f"v_{name}": value for name, value in values.items()}
    params["row_id"] = row_id
    return conn.execute(_update_statement(table, tuple(values)), params)
