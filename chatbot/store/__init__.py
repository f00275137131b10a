"""The durable store: owners (sessions), conversations and messages on SQLite or Postgres, owner-scoped."""

from __future__ import annotations

from .queries import (
    AUTO_TITLE_MAX,
    DEFAULT_TITLE,
    NotFound,
    Store,
    isolated_database,
)
from .schema import (
    CLIENT_ID_MAX,
    MESSAGE_FIELDS,
    MIGRATIONS,
    SQLITE_BUSY_TIMEOUT_MS,
    TITLE_MAX,
    conversations,
    messages,
    metadata,
    normalize_url,
    owners,
    schema_version,
)

__all__ = [
    "AUTO_TITLE_MAX", "CLIENT_ID_MAX", "DEFAULT_TITLE", "MESSAGE_FIELDS", "MIGRATIONS", "NotFound",
    "SQLITE_BUSY_TIMEOUT_MS", "Store", "TITLE_MAX", "conversations", "isolated_database", "messages", "metadata",
    "normalize_url", "owners", "schema_version",
]
