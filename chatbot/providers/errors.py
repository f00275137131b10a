"""How a provider fails: an `UpstreamError` carrying one of the chat's error codes (and a log detail). The
providers never choose the sentence people see; the engine does, from the code."""

from __future__ import annotations


class UpstreamError(Exception):
    """An upstream failure mapped to one of the chat's error codes (`upstream_auth`, `model_unavailable`, ...).

    str(error) is the code; `detail` is for the log and never holds the API key.
    """

    def __init__(self, code: str, *, detail: str = "", retry_after: float | None = None, retryable: bool = False):
        """Keep only the code in args, so str() and repr() never carry the log detail."""
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.retryable = retryable  # only ever acted on before the first delta


def upstream_error(
    code: str, detail: str, *, retry_after: float | None = None, retryable: bool = False
) -> UpstreamError:
    """Build an UpstreamError for `code`, with its log detail."""
    return UpstreamError(code, detail=detail, retry_after=retry_after, retryable=retryable)
