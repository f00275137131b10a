"""Reply providers behind one contract (`base`): Groq, and the offline demo."""

from __future__ import annotations

from .base import Delta, ReplyStream, UpstreamError
from .demo import DemoProvider
from .groq import DEFAULT_MODEL, GroqProvider

__all__ = ["DEFAULT_MODEL", "Delta", "DemoProvider", "GroqProvider", "ReplyStream", "UpstreamError", "make_provider"]


def make_provider(
    *, api_key: str | None, model: str, base_url: str | None = None, **options
) -> GroqProvider | DemoProvider:
    """The Groq provider when a key is set, else the offline demo provider."""
    token_delay = options.pop("token_delay", None)
    api_key = (api_key or "").strip()
    if api_key:
        return GroqProvider(api_key, model or DEFAULT_MODEL, base_url=base_url, **options)
    return DemoProvider() if token_delay is None else DemoProvider(token_delay=token_delay)
