"""Limits on tool calls: per tool per account (a rate) and per account per day (a cap), in memory or Redis."""

from __future__ import annotations

from limits import parse_many, storage, strategies


class ToolLimits:
    """Counts tool calls; `refusal()` says why one more call may not run (None: it may), `count()` counts it."""

    def __init__(self, redis_url: str | None, *, per_tool: str = "30/minute", daily: str = "200/day",
                 prefix: str = "chatbotws"):
        """Use Redis storage when `redis_url` is set, else process memory."""
        backend = (storage.storage_from_string(redis_url, key_prefix=f"{prefix}-tool-limits") if redis_url
                   else storage.MemoryStorage())
        self._limiter = strategies.FixedWindowRateLimiter(backend)
        self._per_tool = parse_many(per_tool)
        self._daily = parse_many(daily)

    def _checks(self, account: str, tool_id: str) -> list:
        """The (limit, keys, sentence) a call counts against."""
        return ([(limit, ("tool", account, tool_id), "This tool has been used too often; try again later.")
                 for limit in self._per_tool]
                + [(limit, ("tools-day", account), "The daily limit on tool calls has been reached.")
                   for limit in self._daily])

    def refusal(self, account: str, tool_id: str) -> str | None:
        """Why one more call of `tool_id` by `account` may not run, or None."""
        for limit, key, sentence in self._checks(account, tool_id):
            if not self._limiter.test(limit, *key):
                return sentence
        return None

    def count(self, account: str, tool_id: str) -> None:
        """Count one call."""
        for limit, key, _ in self._checks(account, tool_id):
            self._limiter.hit(limit, *key)
