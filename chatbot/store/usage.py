"""Usage per account: hourly counters written by a reply's final write (turns.finish_reply), the daily token quota
checked inside a turn's one transaction, and the admin page's figures (last 24 hours and 30 days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from .rows import _iso, _now
from .schema import owners, usage_hourly, users

USAGE_KEPT = timedelta(days=31)
# The admin page's figures per account: replies, tokens and tool calls in the last 24 hours and 30 days.
USAGE_FIGURES = ("messages_24h", "tokens_24h", "tool_calls_24h", "messages_30d", "tokens_30d", "tool_calls_30d")


class QuotaExceeded(Exception):
    """The account has used its tokens for today (UTC); `resets_at` is the next midnight UTC."""

    def __init__(self, limit: int, used: int, resets_at: datetime):
        """Remember the limit, what was used and when the allowance comes back."""
        super().__init__(limit, used)
        self.limit, self.used, self.resets_at = limit, used, resets_at


def _hour(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _midnight(moment: datetime) -> datetime:
    """The start of the UTC day `moment` falls in."""
    return _hour(moment).replace(hour=0)


def reply_tokens(usage: dict | None, text: str) -> int:
    """The tokens a reply cost: the provider's total, or (a stopped or failed stream has none) about 4 characters
    of text per token."""
    total = (usage or {}).get("total_tokens")
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        return total
    return (len(text) + 3) // 4


class UsageQueries:
    """Usage and quota queries (mixed into Store, which provides `_transaction` and `dialect`)."""

    def users_with_usage(self) -> list[dict]:
        """Every account (oldest first) with its state, role, last-seen time, and replies, tokens and tool calls in
        the last 24 hours and 30 days — for the admin page."""
        now = _hour(_now())
        day, month = now - timedelta(hours=23), now - timedelta(days=30)

        def recent(column, since):
            return sa.func.coalesce(sa.func.sum(sa.case((usage_hourly.c.hour >= since, column), else_=0)), 0)

        totals = (sa.select(usage_hourly.c.user_id,
                            recent(usage_hourly.c.messages, day).label("messages_24h"),
                            recent(usage_hourly.c.tokens, day).label("tokens_24h"),
                            recent(usage_hourly.c.tool_calls, day).label("tool_calls_24h"),
                            sa.func.sum(usage_hourly.c.messages).label("messages_30d"),
                            sa.func.sum(usage_hourly.c.tokens).label("tokens_30d"),
                            sa.func.sum(usage_hourly.c.tool_calls).label("tool_calls_30d"))
                  .where(usage_hourly.c.hour > month).group_by(usage_hourly.c.user_id).subquery())
        query = (sa.select(users.c.id, users.c.username, users.c.role, users.c.state, users.c.created_at,
                           users.c.daily_token_limit, users.c.oidc_subject, owners.c.last_seen_at,
                           (users.c.password_hash.is_not(None)).label("has_password"),
                           *(sa.func.coalesce(totals.c[name], 0).label(name)
                             for name in USAGE_FIGURES))
                 .join(owners, owners.c.user_id == users.c.id)
                 .outerjoin(totals, totals.c.user_id == users.c.id)
                 .order_by(users.c.created_at, users.c.id))
        with self._transaction(write=False) as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["created_at"] = _iso(row["created_at"])
            row["last_seen_at"] = _iso(row["last_seen_at"])
            for name in USAGE_FIGURES:
                row[name] = int(row[name])
        return rows

    def delete_old_usage(self) -> int:
        """Forget hourly usage older than the admin page shows; return how many rows went."""
        with self._transaction() as conn:
            return conn.execute(sa.delete(usage_hourly).where(usage_hourly.c.hour < _now() - USAGE_KEPT)).rowcount

    # inside other transactions

    def _check_quota(self, conn: Connection, owner_id: str, default_limit: int) -> None:
        """Raise QuotaExceeded when the owner's account has spent its daily tokens (0 = no limit; an anonymous
        owner has none). One statement, inside the turn's transaction."""
        midnight = _midnight(_now())
        used = (sa.select(sa.func.coalesce(sa.func.sum(usage_hourly.c.tokens), 0))
                .where(usage_hourly.c.user_id == users.c.id, usage_hourly.c.hour >= midnight)
                .correlate(users).scalar_subquery())
        row = conn.execute(sa.select(users.c.daily_token_limit, used.label("used"))
                           .join(owners, owners.c.user_id == users.c.id).where(owners.c.id == owner_id)).first()
        if row is None:
            return
        limit = row.daily_token_limit if row.daily_token_limit is not None else default_limit
        if limit and row.used >= limit:
            raise QuotaExceeded(limit, int(row.used), midnight + timedelta(days=1))

    def _count_usage(self, conn: Connection, user_id: str, tokens: int, tool_calls: int = 0) -> None:
        """Add one reply, `tokens` and `tool_calls` to the account's counter for this hour (an upsert)."""
        insert = (postgres_insert if self.dialect == "postgresql" else sqlite_insert)(usage_hourly)
        statement = insert.values(user_id=user_id, hour=_hour(_now()), messages=1, tokens=tokens,
                                  tool_calls=tool_calls)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[usage_hourly.c.user_id, usage_hourly.c.hour],
            set_={"messages": usage_hourly.c.messages + 1, "tokens": usage_hourly.c.tokens + tokens,
                  "tool_calls": usage_hourly.c.tool_calls + tool_calls}))
