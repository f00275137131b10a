"""The durable store: owners (a visitor's or an account's conversation space), accounts, conversations, messages
(a tree) and usage on SQLite or Postgres, owner-scoped. Messages are written only by the turn path (turns.py)."""

from __future__ import annotations

from .accounts import AccountQueries, LinkInvalid, LoginState, UsernameTaken
from .charts import ChartQueries
from .chunks import ChunkQueries
from .conversations import ConversationQueries
from .engine import Database, UnsupportedDatabase, alembic_config, isolated_database
from .files import FileQueries, OffsetMismatch, StorageFull, UploadTooLong
from .imports import ImportQueries
from .messages import MessageQueries
from .projects import ProjectQueries
from .rows import AUTO_TITLE_MAX, DEFAULT_TITLE, NotFound
from .schema import (
    CLIENT_ID_MAX,
    MESSAGE_FIELDS,
    SQLITE_BUSY_TIMEOUT_MS,
    TITLE_MAX,
    conversations,
    messages,
    metadata,
    normalize_url,
    owners,
    schema_version,
    users,
)
from .search import QUERY_MAX, SearchQueries
from .settings import PresetNameTaken, SettingsQueries, TurnSettings
from .shares import ShareQueries
from .tools import ToolQueries
from .tree import Branch, TreeQueries
from .turns import NotEditable, NothingToRegenerate, TurnQueries, TurnStart
from .usage import QuotaExceeded, UsageQueries, reply_tokens


class Store(FileQueries, ChunkQueries, ChartQueries, ImportQueries, ProjectQueries, ShareQueries, SettingsQueries,
            SearchQueries, TreeQueries, TurnQueries, UsageQueries, AccountQueries, MessageQueries, ConversationQueries,
            ToolQueries, Database):
    """Conversation store shared by all handlers; each call runs in its own short transaction."""


__all__ = [
    "FileQueries", "OffsetMismatch", "StorageFull", "UploadTooLong",
    "LinkInvalid", "LoginState", "QuotaExceeded", "UsernameTaken", "reply_tokens", "users",
    "AUTO_TITLE_MAX", "CLIENT_ID_MAX", "DEFAULT_TITLE", "MESSAGE_FIELDS", "NotFound", "QUERY_MAX",
    "SQLITE_BUSY_TIMEOUT_MS", "Branch", "NotEditable", "NothingToRegenerate", "Store", "TITLE_MAX", "TurnStart",
    "alembic_config", "conversations", "isolated_database", "messages", "metadata", "normalize_url", "owners",
    "schema_version", "PresetNameTaken", "TurnSettings", "UnsupportedDatabase",
]
