"""The tool service: what the engine asks of tools, built once per app from the settings.

It owns the process's MCP client (its asyncio thread), the registry, the approvals (memory or Redis) and the
limits, and turns a reply with enabled tools into a `ToolTurn` (a reply without tools stays the provider's own
stream). Framework-free: the engine hands it the callbacks that reach the sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..protocol import ChatError
from .approvals import make_approvals
from .limits import ToolLimits
from .loop import ToolTurn
from .mcp_client import McpClient, ServerConfig
from .registry import ToolRegistry
from .steps import StepRunner


def server_configs(servers) -> list[ServerConfig]:
    """MCP_SERVERS as client configurations."""
    return [ServerConfig(s["name"], s["url"], dict(s.get("headers") or {}), tuple(s.get("approve") or ()))
            for s in servers or ()]


class ToolService:
    """Tools for the engine: `list_tools`, the choice a conversation stores, a reply's turn, approvals."""

    def __init__(self, settings: Mapping[str, Any], *, metrics=None):
        """Build the parts the settings ask for (no MCP client without MCP_SERVERS); nothing connects yet."""
        servers = server_configs(settings.get("MCP_SERVERS"))
        self.mcp = McpClient(servers, timeout=settings.get("TOOL_TIMEOUT", 30.0),
                             max_chars=settings.get("TOOL_RESULT_CHARS", 16000)) if servers else None
        self.registry = ToolRegistry(self.mcp)
        redis_url, prefix = settings.get("REDIS_URL"), settings.get("REDIS_PREFIX", "chatbotws")
        self.approvals = make_approvals(redis_url, prefix)
        daily = settings.get("TOOL_DAILY_CALLS", 500)
        self.limits = ToolLimits(redis_url, per_tool=settings.get("RATE_LIMIT_TOOLS", "30/minute"),
                                 daily=f"{daily}/day" if daily else "1000000000/day", prefix=prefix)
        self.max_steps = settings.get("TOOLS_MAX_STEPS", 8)
        self.approval_seconds = settings.get("TOOL_APPROVAL_SECONDS", 120.0)
        self.metrics = metrics

    def list_tools(self, provider, model: str) -> dict:
        """The `list_tools` acknowledgement for a conversation on this provider and model."""
        return self.registry.list_payload(provider, model)

    def choice(self, tool_ids: list[str]) -> list[str]:
        """The tools a conversation asks to enable, if every one is this deployment's; else `tool_unavailable`."""
        known = self.registry.known(tool_ids)
        if len(known) != len(tool_ids):
            unknown = next(t for t in tool_ids if t not in known)
            raise ChatError("tool_unavailable", f"There is no tool '{unknown}' here: pick tools from list_tools.")
        return known

    def stream(self, provider, context: list[dict], *, model: str, enabled: list[str] | None, reply_id: int,
               account: str, emit: Callable[[dict], None], ask: Callable[[dict], None],
               sleep: Callable[[float], None], on_retry=None, on_status=None, options=None):
        """A reply's stream: the provider's own without enabled tools the model can use, else a ToolTurn (the
        conversation's `options` go with every request)."""
        offer = self.registry.offer(list(enabled or ()), provider, model)
        if not offer:
            return provider.stream(context, model=model, on_retry=on_retry, on_status=on_status, options=options)
        runner = StepRunner(offer, reply_id=reply_id, account=account, emit=emit, ask=ask, mcp=self.mcp,
                            approvals=self.approvals, limits=self.limits, metrics=self.metrics,
                            approval_seconds=self.approval_seconds, sleep=sleep)
        return ToolTurn(provider, context, model=model, offer=offer, runner=runner, max_steps=self.max_steps,
                        on_retry=on_retry, on_status=on_status, options=options)

    def answer(self, reply_id: int, step_id: str, approve: bool) -> bool:
        """A tab's answer to a waiting step: True if it was the first; `not_found` if nothing waits there."""
        first = self.approvals.answer(reply_id, step_id, approve)
        if first is None:
            raise ChatError("not_found", "No step of that reply is waiting for approval.")
        return first

    def waiting(self, reply_id: int, step_id: str) -> bool:
        """Whether a step of a reply waits for approval now (a resumed tab is asked again)."""
        return self.approvals.waiting(reply_id, step_id)

    def close(self) -> None:
        """Stop the MCP client's thread."""
        if self.mcp is not None:
            self.mcp.close()
