"""The HTTP transport under the SDK clients: several small connection pools instead of one large one.

httpcore's pool walks all its connections, and every queued request against all of them, each time a request starts
or ends; the SDKs' default pool (Groq: 100 connections, 20 kept alive) also queues every stream beyond its 100th. At
500 replies starting at once (every client back after a restart) that walk took half the server's CPU. Requests go
round the pools in turn, so each pool holds a few dozen streams and its walk stays short.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import httpx

POOLS = 16
# Per pool; across the pools: up to 1,024 streams at once, 256 idle connections kept for reuse.
POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=5.0)


class PooledTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to the next of `pools` transports (made on first use)."""

    def __init__(self, pools: int = POOLS, factory: Callable[[], httpx.BaseTransport] | None = None):
        """`factory` makes one pool (default: an HTTPTransport with POOL_LIMITS; all share one TLS context, whose
        certificate loading is the slow part of making one)."""
        if pools < 1:
            raise ValueError("pools must be >= 1")
        self._factory = factory or self._http_transport
        self._pools: list[httpx.BaseTransport | None] = [None] * pools
        self._turn = itertools.cycle(range(pools))
        self._lock = threading.Lock()
        self._tls = None

    def _http_transport(self) -> httpx.BaseTransport:
        """One connection pool with POOL_LIMITS and the shared TLS context."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return httpx.HTTPTransport(verify=self._tls, limits=POOL_LIMITS)

    def _next(self) -> httpx.BaseTransport:
        """The pool whose turn it is."""
        with self._lock:
            index = next(self._turn)
            pool = self._pools[index]
            if pool is None:
                pool = self._pools[index] = self._factory()
            return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the next pool."""
        return self._next().handle_request(request)

    def close(self) -> None:
        """Close every pool made so far."""
        with self._lock:
            pools, self._pools = self._pools, [None] * len(self._pools)
        for pool in pools:
            if pool is not None:
                pool.close()


def sdk_client(sdk_class: type, http_client_class: type, **options):
    """An SDK client (`groq.Groq`, `openai.OpenAI`) sending through a PooledTransport, ready for many requests at once.

    The SDK's first request works out its platform headers, which runs `uname -p` in a subprocess, and every request
    started before that first one finishes runs it too (500 at once after a restart): done once, here, instead.
    """
    client = sdk_class(**options, http_client=http_client_class(transport=PooledTransport()))
    client.platform_headers()
    return client
