"""A reply with tools, as a loop of model requests behind the provider contract (`ReplyStream` of `Delta`s).

The model streams; Groq's built-in steps (`executed_tools`) are followed as they arrive; when it finishes asking for
function calls, the calls run (`StepRunner`: only offered tools, approvals, limits), their results are appended as
`tool` messages and the model is asked again, up to `max_steps` calls. After the cap the last request offers no
tools, so the model answers with what it has. `close()` (stop) aborts the current request or step and the loop.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..providers.base import Delta, ReplyStream
from ..providers.errors import UpstreamError
from .registry import Offer
from .steps import CallPieces, StepRunner


def add_usage(total: dict | None, usage: dict | None) -> dict | None:
    """Token counts of several requests added up (other fields: the latest request's)."""
    if not usage:
        return total
    if not total:
        return dict(usage)
    summed = {**total, **usage}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        if isinstance(total.get(key), int) and isinstance(usage.get(key), int):
            summed[key] = total[key] + usage[key]
    return summed


class ToolTurn(ReplyStream):
    """One reply across as many model requests as its tool calls need (see the module docstring)."""

    def __init__(self, provider, messages: list[dict], *, model: str | None, offer: Offer, runner: StepRunner,
                 max_steps: int = 8, on_retry=None, on_status=None, options=None):
        """Remember what to ask (`options`: the conversation's, sent with every request); nothing is sent until
        iteration."""
        super().__init__()
        self._provider, self._messages, self._model, self._options = provider, list(messages), model, options
        self._offer, self.runner, self._max_steps = offer, runner, max_steps
        self._on_retry, self._on_status = on_retry, on_status
        self._current: ReplyStream | None = None
        self.requests = 0  # model requests made (for tests and metrics)

    def _deltas(self) -> Iterator[Delta]:
        """Stream each request's text and thinking; run the calls between requests."""
        messages, used, round_no = self._messages, 0, 0
        while not self._closed:
            tools = self._offer.request_tools() if used < self._max_steps else None
            stream = self._provider.stream(messages, model=self._model, tools=tools, on_retry=self._on_retry,
                                           on_status=self._on_status, options=self._options)
            with self._lock:
                if self._closed:
                    return
                self._current = stream
            self.requests += 1
            pieces, text = CallPieces(), []
            for delta in self._guarded(stream, tools):
                if delta.executed_tools:
                    self.runner.builtin(delta.executed_tools, round_no)
                if delta.tool_calls:
                    pieces.add(delta.tool_calls)
                if delta.text or delta.reasoning:
                    text.append(delta.text)
                    yield Delta(delta.text, delta.reasoning)
            self.usage = add_usage(self.usage, stream.usage)
            self.rate_limits = dict(stream.rate_limits)
            calls = pieces.calls()
            if self._closed:
                return
            if stream.finish_reason != "tool_calls" or not calls or tools is None:
                self._finish(stream.finish_reason or "stop")
                return
            messages = [*messages, {"role": "assistant", "content": "".join(text) or None,
                                    "tool_calls": [call.message() for call in calls]}]
            for call in calls:
                if self._closed:
                    return
                used += 1
                if used > self._max_steps:
                    content = "Error: the step limit of this reply was reached; this call did not run."
                else:
                    content = self.runner.run(call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
            round_no += 1

    def _guarded(self, stream: ReplyStream, tools: list[dict] | None) -> Iterator[Delta]:
        """The request's deltas; Groq refusing a built-in tool (not on this model, plan or region) says so."""
        try:
            yield from stream
        except UpstreamError as exc:
            builtins = [t["type"] for t in tools or () if t.get("type") != "function"]
            if exc.code == "invalid_message" and any(name in exc.detail for name in builtins):
                raise UpstreamError("tool_unavailable", detail=exc.detail) from exc
            raise

    def steps(self) -> list[dict]:
        """Every step of the reply in its last state."""
        return self.runner.final()

    def _abort(self) -> None:
        """Close the current request and cancel the current step (called with the lock held)."""
        if self._current is not None:
            self._current.close()
        self.runner.cancel()
