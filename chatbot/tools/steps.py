"""One reply's tool steps: running the function calls the model asks for, and following Groq's built-in steps.

A step is the wire's `{id, kind, name, status, input, output?, sources?}`; every change of a step is handed to
`emit` (the engine numbers it, logs it for resume and sends `bot_tool`). A call the turn did not offer is never
run: it gets an error result. A tool that needs approval waits for the first answer from any tab, up to
`approval_seconds` (then it is declined). Results go back to the model as text; the page gets them as data.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .mcp_client import McpClient, ToolError
from .registry import Offer, ToolSpec, builtin_kind

log = logging.getLogger(__name__)

OUTPUT_CHARS = 8000  # a step's output as shown on the page (the model gets the client's own cap)
# Pictures a code step made (Groq's code_results[].png): at most this many, each at most this many bytes.
MAX_IMAGES, MAX_IMAGE_BYTES = 3, 1_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
APPROVAL_POLL = 0.1  # how often a waiting step looks for an answer from another tab or process


@dataclass
class FunctionCall:
    """A function call the model asked for, reassembled from its streamed pieces."""

    id: str
    name: str
    arguments: str

    def message(self) -> dict:
        """The call as the assistant message's `tool_calls` entry."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


class CallPieces:
    """Reassembles streamed `tool_calls` deltas by index (id and name once, arguments in pieces)."""

    def __init__(self) -> None:
        """No calls yet."""
        self._calls: dict[int, dict] = {}

    def add(self, pieces: list[dict]) -> None:
        """Fold one delta's pieces in."""
        for piece in pieces:
            call = self._calls.setdefault(piece.get("index", 0), {"id": "", "name": "", "arguments": ""})
            call["id"] = piece.get("id") or call["id"]
            function = piece.get("function") or {}
            call["name"] = function.get("name") or call["name"]
            call["arguments"] += function.get("arguments") or ""

    def calls(self) -> list[FunctionCall]:
        """The calls in index order (ones without an id get a stable one)."""
        return [FunctionCall(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(self._calls.items())]


def _clip(text: str, limit: int = OUTPUT_CHARS) -> str:
    """Text cut to what a step shows."""
    return text if len(text) <= limit else text[:limit] + " […]"


def _pictures(code_results: list) -> list[str]:
    """The PNG charts a code step returned, as data: URLs, only when they really are PNG and not too big."""
    pictures = []
    for result in code_results:
        encoded = result.get("png") if isinstance(result, dict) else None
        if not isinstance(encoded, str) or len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            continue
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if data.startswith(PNG_MAGIC) and len(pictures) < MAX_IMAGES:
            pictures.append("data:image/png;base64," + base64.b64encode(data).decode())
    return pictures


def _arguments(raw: str) -> Any:
    """Arguments as data when they are JSON, else the raw text."""
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw


class StepRunner:
    """Runs one reply's steps (see the module docstring); `cancel()` aborts the current one (stop)."""

    def __init__(
        self,
        offer: Offer,
        *,
        reply_id: int,
        account: str,
        emit: Callable[[dict], None],
        ask: Callable[[dict], None],
        mcp: McpClient | None = None,
        approvals=None,
        limits=None,
        metrics=None,
        approval_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """Wire the runner: `emit(step)` for every change, `ask(approval)` for a `tool_approval` to the tabs."""
        self.offer, self.reply_id, self.account = offer, reply_id, account
        self.emit, self.ask = emit, ask
        self.mcp, self.approvals, self.limits, self.metrics = mcp, approvals, limits, metrics
        self.approval_seconds, self.sleep = approval_seconds, sleep
        self.steps: dict[str, dict] = {}  # by id, in the order they began
        self._builtin: dict[tuple[int, int], str] = {}
        self._pending = None
        self._cancelled = False

    def final(self) -> list[dict]:
        """Every step in its last state (for the final message and the store)."""
        return [dict(step) for step in self.steps.values()]

    def _update(self, step_id: str, **fields: Any) -> None:
        """Change a step and emit its new state."""
        step = self.steps[step_id]
        step.update({k: v for k, v in fields.items() if v is not None})
        self.emit(dict(step))

    def _begin(self, step_id: str, kind: str, name: str, tool_input: Any) -> None:
        """A new step, running."""
        self.steps[step_id] = {"id": step_id, "kind": kind, "name": name, "status": "running", "input": tool_input}
        self.emit(dict(self.steps[step_id]))

    # Groq's built-in tools: they ran at Groq; we only show them.

    def builtin(self, pieces: list[dict], round_no: int) -> None:
        """Follow `executed_tools` pieces of one request (a start piece, then one with the output)."""
        for piece in pieces:
            key = (round_no, int(piece.get("index", 0)))
            kind = builtin_kind(str(piece.get("type", "")))
            if key not in self._builtin:
                step_id = f"builtin-{round_no}-{key[1]}"
                self._builtin[key] = step_id
                spec = self.offer.builtin(str(piece.get("type", "")))
                self._begin(step_id, kind, spec.id if spec else kind, _arguments(str(piece.get("arguments") or "")))
            if piece.get("output") is not None or piece.get("search_results") or piece.get("code_results"):
                self._finish_builtin(self._builtin[key], piece)

    def _finish_builtin(self, step_id: str, piece: dict) -> None:
        """A built-in step's result: its output and, for searches, the pages it found."""
        if self.steps[step_id]["status"] != "running":
            return
        output = str(piece.get("output") or "")
        code_texts = [r.get("text") for r in piece.get("code_results") or [] if isinstance(r, dict) and r.get("text")]
        if not output and code_texts:
            output = "\n".join(code_texts)
        results = (piece.get("search_results") or {}).get("results") or []
        sources = [{"title": str(r.get("title") or r.get("url") or ""), "url": str(r.get("url") or "")}
                   for r in results if isinstance(r, dict) and r.get("url")]
        images = _pictures(piece.get("code_results") or [])
        self._update(step_id, status="done", output=_clip(output), sources=sources or None, images=images or None)
        self._count(self.steps[step_id]["name"], "done", None)

    # Function calls: we run them.

    def run(self, call: FunctionCall) -> str:
        """Run one call the model asked for (if it may run); the text result for the model's `tool` message."""
        spec = self.offer.resolve(call.name)
        arguments = _arguments(call.arguments)
        step_id = f"step-{len(self.steps) + 1}"  # ours: the model's call ids have no fixed shape
        self._begin(step_id, spec.step_kind if spec else "mcp", spec.id if spec else call.name, arguments)
        if spec is None or spec.server is None:
            return self._error(step_id, f"The tool '{call.name}' is not enabled in this conversation.", "refused")
        if not isinstance(arguments, dict):
            return self._error(step_id, "The tool's arguments were not a JSON object.", "refused")
        refusal = self.limits.refusal(self.account, spec.id) if self.limits is not None else None
        if refusal:
            return self._error(step_id, refusal, "limited")
        if spec.needs_approval and not self._approved(step_id, spec, arguments):
            self._update(step_id, status="declined", output="Declined by the person.")
            self._count(spec.id, "declined", None)
            return "The person declined this call; it did not run. Do not try it again without asking."
        return self._call(step_id, spec, arguments)

    def _approved(self, step_id: str, spec: ToolSpec, arguments: dict) -> bool:
        """Ask every tab and wait for the first answer; no answer in time (or a stop) declines."""
        if self.approvals is None:
            return False
        self.approvals.open(self.reply_id, step_id, self.approval_seconds)
        self.ask({"reply_id": self.reply_id, "step_id": step_id, "name": spec.id, "input": arguments})
        deadline = time.monotonic() + self.approval_seconds
        try:
            while True:
                answer = self.approvals.result(self.reply_id, step_id)
                if answer is not None:
                    return answer
                if self._cancelled or time.monotonic() >= deadline:
                    first = self.approvals.answer(self.reply_id, step_id, False)
                    return bool(self.approvals.result(self.reply_id, step_id)) if first is False else False
                self.sleep(APPROVAL_POLL)
        finally:
            self.approvals.close(self.reply_id, step_id)

    def _call(self, step_id: str, spec: ToolSpec, arguments: dict) -> str:
        """Run an MCP tool once, time-limited; its text for the model."""
        if self._cancelled:
            return self._error(step_id, "Stopped.", "stopped")
        if self.mcp is None:
            return self._error(step_id, "The tool is not available.", "unavailable")
        if self.limits is not None:
            self.limits.count(self.account, spec.id)
        started = time.monotonic()
        try:
            self._pending = self.mcp.start_call(spec.server, spec.tool, arguments)
            if self._cancelled:
                self._pending.cancel()
            result = self._pending.wait()
        except ToolError as exc:
            self._count(spec.id, "error", started)
            return self._error(step_id, exc.message, None)
        except BaseException as exc:  # noqa: BLE001 - a cancelled call (stop) or a bridge failure
            self._count(spec.id, "stopped" if self._cancelled else "error", started)
            if not self._cancelled:
                log.exception("reply=%s step=%s failed", self.reply_id, step_id)
            message = "Stopped." if self._cancelled else f"The tool failed ({type(exc).__name__})."
            return self._error(step_id, message, None)
        finally:
            self._pending = None
        self._count(spec.id, "error" if result.is_error else "done", started)
        self._update(step_id, status="error" if result.is_error else "done", output=_clip(result.text))
        return result.text

    def _error(self, step_id: str, message: str, outcome: str | None) -> str:
        """End a step with an error; the model is told the same."""
        self._update(step_id, status="error", output=message)
        if outcome is not None:
            self._count(self.steps[step_id]["name"], outcome, None)
        return f"Error: {message}"

    def _count(self, tool_id: str, outcome: str, started: float | None) -> None:
        """Metrics for one finished call."""
        if self.metrics is not None:
            self.metrics.tool_call(tool_id, outcome, None if started is None else time.monotonic() - started)

    def cancel(self) -> None:
        """Abort the current step and any later one (stop); safe from another greenlet or thread."""
        self._cancelled = True
        pending = self._pending
        if pending is not None:
            pending.cancel()
