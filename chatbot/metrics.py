"""Prometheus metrics for one app: reply latency and speed by model, outcomes, upstream errors, refusals, sockets.

One `Metrics` per app, each with its own `CollectorRegistry` (tests build many apps; the global registry would
refuse the second). With several processes, each exposes its own numbers and Prometheus sums them. Framework-free.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

OUTCOMES = ("complete", "stopped", "error", "interrupted")
# Buckets sized for chat: first tokens in tens of ms to seconds, replies up to minutes, Groq's 50–2,000 tok/s.
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TOOL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SPEED_BUCKETS = (10.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0)


class Metrics:
    """The app's metrics, recorded through small intention-revealing methods and rendered for a scrape."""

    def __init__(self) -> None:
        """Create every metric in a registry of this app's own."""
        self.registry = CollectorRegistry()
        registry = self.registry
        self._ttft = Histogram("chatbot_time_to_first_token_seconds", "Seconds from a user message to its reply's "
                               "first token.", ["model"], registry=registry, buckets=TTFT_BUCKETS)
        self._duration = Histogram("chatbot_reply_duration_seconds", "Seconds from a user message to the end of its "
                                   "reply.", ["model"], registry=registry, buckets=DURATION_BUCKETS)
        self._speed = Histogram("chatbot_output_tokens_per_second", "Output tokens per second of a reply, as the "
                                "upstream timed it.", ["model"], registry=registry, buckets=SPEED_BUCKETS)
        self._replies = Counter("chatbot_replies_total", "Replies finished, by outcome.", ["outcome"],
                                registry=registry)
        self._upstream_errors = Counter("chatbot_upstream_errors_total", "Upstream failures, by protocol error code.",
                                        ["code"], registry=registry)
        self._rate_limited = Counter("chatbot_rate_limited_total", "Requests refused by our own limits, by kind.",
                                     ["kind"], registry=registry)
        self._connections = Counter("chatbot_connections_total", "Socket.IO connections accepted.", registry=registry)
        self._sockets = Gauge("chatbot_connected_sockets", "Socket.IO clients connected to this process.",
                              registry=registry)
        self._in_flight = Gauge("chatbot_replies_in_flight", "Replies streaming in this process.", registry=registry)
        self._ratelimit = Gauge("chatbot_upstream_ratelimit_remaining", "The upstream's remaining rate limit, from "
                                "its last x-ratelimit-remaining-* headers.", ["kind"], registry=registry)
        self._tool_calls = Counter("chatbot_tool_calls_total", "Tool steps ended, by tool id and outcome (done, "
                                   "error, declined, refused, limited, stopped).", ["tool", "outcome"],
                                   registry=registry)
        self._tool_seconds = Histogram("chatbot_tool_call_seconds", "Seconds a tool call ran (the ones we run).",
                                       ["tool"], registry=registry, buckets=TOOL_BUCKETS)
        for outcome in OUTCOMES:
            self._replies.labels(outcome)  # every outcome shows from the start, at 0, so rates work at once

    def track(
        self,
        *,
        connected_sockets: Callable[[], float] | None = None,
        replies_in_flight: Callable[[], float] | None = None,
    ) -> None:
        """Read the two gauges from the app's own counts at each scrape (callbacks must be cheap and thread-safe)."""
        if connected_sockets is not None:
            self._sockets.set_function(connected_sockets)
        if replies_in_flight is not None:
            self._in_flight.set_function(replies_in_flight)

    def reply_finished(
        self,
        model: str,
        outcome: str,
        ttft: float | None = None,
        duration: float | None = None,
        tokens_per_second: float | None = None,
    ) -> None:
        """Count a finished reply; record the timings it has (None: not measured, e.g. no token ever came)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        self._replies.labels(outcome).inc()
        for histogram, value in ((self._ttft, ttft), (self._duration, duration), (self._speed, tokens_per_second)):
            if value is not None and value >= 0:
                histogram.labels(model).observe(value)

    def upstream_error(self, code: str) -> None:
        """Count an upstream failure by its protocol error code (e.g. upstream_rate_limited)."""
        self._upstream_errors.labels(code).inc()

    def rate_limited(self, kind: str) -> None:
        """Count a refusal by our own limits: message, ip, connection, action, busy, concurrent, ..."""
        self._rate_limited.labels(kind).inc()

    def connection_opened(self) -> None:
        """Count an accepted Socket.IO connection."""
        self._connections.inc()

    def upstream_ratelimit(self, requests: int | None = None, tokens: int | None = None) -> None:
        """Keep the upstream's remaining requests/tokens (None: the response did not say; the last value stays)."""
        for kind, value in (("requests", requests), ("tokens", tokens)):
            if value is not None:
                self._ratelimit.labels(kind).set(value)

    def tool_call(self, tool: str, outcome: str, seconds: float | None = None) -> None:
        """Count one ended tool step by tool id and outcome; record how long it ran when we ran it."""
        self._tool_calls.labels(tool, outcome).inc()
        if seconds is not None and seconds >= 0:
            self._tool_seconds.labels(tool).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The scrape body in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
