"""Rate limits on messages and connections (the `limits` library; memory, or Redis shared by all processes)."""

from __future__ import annotations

import time

from limits import parse_many, storage, strategies

from .protocol import ChatError

# What each limit's key prefix counts, as the metrics name it.
_KINDS = {"owner": "message", "ip": "ip", "action": "action", "connect": "connection"}


class RateLimiter:
    """Counts messages per session and per client IP, conversation changes, searches and uploads per session,
    connections per IP, and sign-in attempts per account and per IP."""

    def __init__(self, redis_url: str | None, *, messages: str, messages_per_ip: str, connections: str,
                 actions: str = "60/minute", searches: str = "180/minute", signin: str = "5/minute",
                 signin_per_ip: str = "20/minute", uploads: str = "30/minute", prefix: str = "chatbotws"):
        """Use Redis storage when `redis_url` is set, else process memory."""
        backend = (storage.storage_from_string(redis_url, key_prefix=f"{prefix}-limits") if redis_url
                   else storage.MemoryStorage())
        self._limiter = strategies.FixedWindowRateLimiter(backend)
        self._messages = parse_many(messages)
        self._messages_per_ip = parse_many(messages_per_ip)
        self._connections = parse_many(connections)
        self._actions = parse_many(actions)
        self._searches = parse_many(searches)
        self._signin = parse_many(signin)
        self._signin_per_ip = parse_many(signin_per_ip)
        self._uploads = parse_many(uploads)

    def message(self, owner_id: str, ip: str) -> None:
        """Count one user message; raise `rate_limited` (with a retry time) when a limit is reached."""
        self._hit(self._message_checks(owner_id, ip), "You are sending messages too quickly.")

    def check_message(self, owner_id: str, ip: str) -> None:
        """Raise `rate_limited` if one more user message would pass a limit (counts nothing: see count_message)."""
        self._test(self._message_checks(owner_id, ip), "You are sending messages too quickly.")

    def count_message(self, owner_id: str, ip: str) -> None:
        """Count one user message that was stored (checked first with check_message)."""
        for limit, key in self._message_checks(owner_id, ip):
            self._limiter.hit(limit, *key)

    def _message_checks(self, owner_id: str, ip: str) -> list:
        """The (limit, key) pairs a user message counts against: per session and per address."""
        return ([(limit, ("owner", owner_id)) for limit in self._messages]
                + [(limit, ("ip", ip)) for limit in self._messages_per_ip])

    def action(self, owner_id: str) -> None:
        """Count one conversation change (new, rename, delete); raise `rate_limited` when a limit is reached."""
        self._hit([(limit, ("action", owner_id)) for limit in self._actions],
                  "You are changing conversations too quickly.")

    def search(self, owner_id: str) -> None:
        """Count one search; raise `rate_limited` when a limit is reached."""
        self._hit([(limit, ("search", owner_id)) for limit in self._searches], "You are searching too quickly.")

    def upload(self, owner_id: str) -> None:
        """Count one upload started (a tus POST); raise `rate_limited` when a limit is reached."""
        self._hit([(limit, ("upload", owner_id)) for limit in self._uploads], "You are uploading files too quickly.")

    def connection(self, ip: str) -> None:
        """Count one connection from `ip`; raise `rate_limited` when too many arrive."""
        self._hit([(limit, ("connect", ip)) for limit in self._connections], "Too many connections from your network.")

    def signin(self, account: str, ip: str) -> None:
        """Count one sign-in attempt for `account` (any name: known or not, it counts the same) and from `ip`;
        raise `rate_limited` when either has had too many."""
        self._hit([(limit, ("signin", account.strip().lower())) for limit in self._signin]
                  + [(limit, ("signin-ip", ip)) for limit in self._signin_per_ip],
                  "Too many sign-in attempts.")

    def signup(self, ip: str) -> None:
        """Count one sign-up or password-reset attempt from `ip` (against the per-address sign-in limit)."""
        self._hit([(limit, ("signin-ip", ip)) for limit in self._signin_per_ip], "Too many attempts.")

    def _hit(self, checks, sentence: str) -> None:
        """Test every limit first, so a refused attempt does not count against the others."""
        self._test(checks, sentence)
        for limit, key in checks:
            self._limiter.hit(limit, *key)

    def _test(self, checks, sentence: str) -> None:
        """Raise `rate_limited`, with the time until the window resets, if any limit is used up."""
        for limit, key in checks:
            if not self._limiter.test(limit, *key):
                reset = self._limiter.get_window_stats(limit, *key).reset_time
                wait = max(1.0, reset - time.time())
                raise ChatError("rate_limited", f"{sentence} Try again in {int(wait + 0.999)} s.", retry_after=wait,
                                kind=_KINDS.get(key[0], key[0]))
