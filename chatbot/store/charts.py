"""Usage over the last days for charts: replies, tokens and tool calls per UTC day, per model (from the replies
themselves) and per account (from the hourly usage counters) — one indexed query per chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from .rows import _now
from .schema import messages, usage_hourly, users

CHART_DAYS = 30
METRICS = ("messages", "tokens", "tool_calls")


def day_list(days: int, today: date) -> list[str]:
    """The ISO dates of the last `days` UTC days, oldest first, today last."""
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def _series(rows, key: str, days: list[str]) -> dict[str, dict[str, list[int]]]:
    """{key value: {messages, tokens, tool_calls: [per day]}} from (key, day, messages, tokens, tool_calls) rows."""
    index = {day: n for n, day in enumerate(days)}
    series: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        name, day = getattr(row, key), str(row.day)[:10]
        if day not in index:
            continue
        entry = series.setdefault(name, {metric: [0] * len(days) for metric in METRICS})
        for metric in METRICS:
            entry[metric][index[day]] += int(getattr(row, metric) or 0)
    return series


class ChartQueries:
    """Chart queries (mixed into Store, which provides `_transaction` and `dialect`)."""

    def _day(self, column: sa.ColumnElement) -> sa.ColumnElement:
        """The UTC date of a timestamp column as text (SQLite keeps UTC text; Postgres converts from UTC)."""
        if self.dialect == "sqlite":
            return sa.func.substr(column, 1, 10)
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")

    def _tool_calls(self) -> sa.ScalarSelect:
        """A reply's tool calls, counted from its steps as the usage counters count them (declined ones never ran):
        a subquery on the reply's own row, so the chart stays one query."""
        if self.dialect == "sqlite":
            steps = sa.func.json_each(messages.c.tools).table_valued("value").alias("step")
            status = sa.func.json_extract(steps.c.value, "$.status")
        else:
            steps = sa.func.json_array_elements(messages.c.tools).table_valued("value").alias("step")
            status = steps.c.value.op("->>")("status")
        return (sa.select(sa.func.count()).select_from(steps)
                .where(sa.func.coalesce(status, "") != "declined").scalar_subquery())

    def usage_by_day(self, days: int = CHART_DAYS, *, user_id: str | None = None) -> dict:
        """Replies, tokens and tool calls per UTC day over the last `days` days: per model (every reply, by the model
        that wrote it) and per account (by user name); with `user_id`, that account's own figures only."""
        today = _now().astimezone(UTC).date()
        since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
        listed = day_list(days, today)
        tokens = sa.func.coalesce(messages.c.usage["total_tokens"].as_integer(), 0)
        day = self._day(messages.c.created_at).label("day")
        by_model = (sa.select(sa.func.coalesce(messages.c.model, "unknown").label("model"), day,
                              sa.func.count().label("messages"), sa.func.sum(tokens).label("tokens"),
                              sa.func.sum(self._tool_calls()).label("tool_calls"))
                    .where(messages.c.created_at >= since, messages.c.role == "assistant")
                    .group_by("model", "day"))
        user_day = self._day(usage_hourly.c.hour).label("day")
        by_user = (sa.select(users.c.username, user_day, sa.func.sum(usage_hourly.c.messages).label("messages"),
                             sa.func.sum(usage_hourly.c.tokens).label("tokens"),
                             sa.func.sum(usage_hourly.c.tool_calls).label("tool_calls"))
                   .join(users, users.c.id == usage_hourly.c.user_id)
                   .where(usage_hourly.c.hour >= since)
                   .group_by(users.c.username, "day"))
        if user_id is not None:
            by_user = by_user.where(usage_hourly.c.user_id == user_id)
        with self._transaction(write=False) as conn:
            models = _series(conn.execute(by_model), "model", listed) if user_id is None else {}
            accounts = _series(conn.execute(by_user), "username", listed)
        return {"days": listed, "models": models, "users": accounts}
