"""The MCP client: one session per configured server per process, on the bridge's asyncio thread.

`McpClient.list_tools()` and `McpClient.call()` are called from the turn engine (green or plain threads) and wait
cooperatively. A session is opened on first use and kept; when it drops (the server restarted, the connection
broke) the next use opens a new one. Every call is time-limited (`timeout`), a call whose server dies meanwhile
fails at once with a clear `ToolError`, and results are capped at `max_chars`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from .bridge import LoopThread, Pending

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0  # opening a session (connect + initialize + list) has its own limit, apart from a call's
# After a failed connect, uses within this many seconds fail at once instead of each waiting for the network again.
RETRY_CONNECT_SECONDS = 5.0


class ToolError(Exception):
    """A tool could not give a result: `code` is "tool_unavailable", "tool_timeout" or "tool_failed"."""

    def __init__(self, code: str, message: str):
        """Keep the code apart from the sentence."""
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server as the operator configured it (`MCP_SERVERS`)."""

    name: str
    url: str
    headers: dict = field(default_factory=dict)
    approve: tuple[str, ...] = ()  # tools the operator wants approved whatever their annotations say


@dataclass(frozen=True)
class McpTool:
    """One tool a server offers."""

    server: str
    name: str
    description: str
    input_schema: dict
    needs_approval: bool


@dataclass(frozen=True)
class McpResult:
    """What a call gave: the text for the model (capped) and whether the tool itself reported an error."""

    text: str
    is_error: bool = False
    truncated: bool = False


def needs_approval(annotations: Any, name: str, approve: tuple[str, ...]) -> bool:
    """Whether a call waits for the person: the tool says it is destructive, or the operator says so."""
    if name in approve or "*" in approve:
        return True
    if annotations is None or getattr(annotations, "read_only_hint", None):
        return False
    destructive = getattr(annotations, "destructive_hint", None)
    # The spec's default: a tool that says it is not read-only is destructive unless it says otherwise. A tool
    # with no annotations at all says nothing, and is not held up.
    return destructive is True or (destructive is None and getattr(annotations, "read_only_hint", None) is False)


def result_text(result: Any, max_chars: int) -> McpResult:
    """Flatten a CallToolResult's content parts into capped text (pictures and blobs are named, not inlined)."""
    parts = []
    for part in result.content or []:
        kind = getattr(part, "type", "")
        if kind == "text":
            parts.append(part.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {getattr(part, 'mime_type', '')}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {getattr(part, 'uri', '')}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(parts)
    truncated = len(text) > max_chars
    if truncated:
        text = text[:max_chars] + f"\n[… cut at {max_chars} characters]"
    return McpResult(text, bool(result.is_error), truncated)


def _forgotten(message: str) -> bool:
    """Whether an error says the server does not know our session (HTTP 404 on a session id, per the spec)."""
    text = message.lower()
    return "session" in text and any(word in text for word in ("not found", "terminated", "expired", "unknown"))


class _SessionForgotten(Exception):
    """The server answered that it does not know our session (it restarted): the call did not run."""


class _Session:
    """One server's session, held open by a task on the loop; lives in the loop thread only."""

    def __init__(self, config: ServerConfig):
        """Not connected yet."""
        self.config = config
        self.session = None
        self.tools: list[McpTool] = []
        self.gone: asyncio.Future | None = None  # resolved when the held session ends
        self._opening: asyncio.Future | None = None
        self._holder: asyncio.Task | None = None
        self._failed_at = float("-inf")

    async def ready(self):
        """The open session, opening one if there is none (one opening at a time)."""
        if self.session is not None:
            return self.session
        loop = asyncio.get_running_loop()
        if loop.time() - self._failed_at < RETRY_CONNECT_SECONDS and (self._opening is None or self._opening.done()):
            raise ToolError("tool_unavailable", f"The tool server '{self.config.name}' is not reachable.")
        if self._opening is None or self._opening.done():
            self._opening = loop.create_future()
            self.gone = loop.create_future()
            self._holder = loop.create_task(self._hold(self._opening, self.gone))
        try:
            return await asyncio.wait_for(asyncio.shield(self._opening), CONNECT_SECONDS)
        except TimeoutError:
            self._failed_at = loop.time()
            raise ToolError("tool_unavailable", f"The tool server '{self.config.name}' did not answer.") from None
        except ToolError:
            self._failed_at = loop.time()
            raise

    async def _hold(self, opening: asyncio.Future, gone: asyncio.Future) -> None:
        """Open the session, publish it, and keep it until the transport fails or the loop stops."""
        import httpx2
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        try:
            async with (
                httpx2.AsyncClient(headers=dict(self.config.headers), timeout=httpx2.Timeout(30.0, read=300.0)) as http,
                streamable_http_client(self.config.url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                listed = await session.list_tools()
                self.tools = [self._tool(tool) for tool in listed.tools]
                self.session = session
                opening.set_result(session)
                await asyncio.Event().wait()  # held until cancelled or the transport's task group fails
        except BaseException as exc:  # noqa: BLE001 - every ending means the same: the session is gone
            log.warning("mcp server %s: session ended: %r", self.config.name, exc)
            if not opening.done():
                opening.set_exception(
                    ToolError("tool_unavailable", f"The tool server '{self.config.name}' is not reachable.")
                )
        finally:
            self.session = None
            if not gone.done():
                gone.set_result(None)

    def drop(self) -> None:
        """End the held session (it answered that it is gone); the next use opens a new one."""
        self.session = None
        if self._holder is not None and not self._holder.done():
            self._holder.cancel()

    def _tool(self, tool: Any) -> McpTool:
        """Our view of one listed tool."""
        return McpTool(
            server=self.config.name,
            name=tool.name,
            description=tool.description or tool.title or "",
            input_schema=dict(tool.input_schema or {"type": "object"}),
            needs_approval=needs_approval(tool.annotations, tool.name, self.config.approve),
        )


class McpClient:
    """The process's MCP client over the configured servers (see the module docstring)."""

    def __init__(self, servers: list[ServerConfig], *, timeout: float = 30.0, max_chars: int = 16000):
        """Remember the servers; nothing connects until first use."""
        self.servers = {server.name: server for server in servers}
        self.timeout = timeout
        self.max_chars = max_chars
        self._thread = LoopThread()
        self._pid = os.getpid()
        self._fresh_sessions()

    def _fresh_sessions(self) -> None:
        """One unopened session per server (again in a forked child: the parent's belong to its loop)."""
        self._sessions = {name: _Session(config) for name, config in self.servers.items()}

    def _forked(self) -> None:
        """In a process forked after first use, start over with sessions of its own."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._fresh_sessions()

    def list_tools(self, servers: set[str] | None = None) -> tuple[list[McpTool], list[str]]:
        """The tools of every reachable server (or of `servers` only), and the names of those that could not be
        reached."""
        self._forked()
        sessions = [s for name, s in self._sessions.items() if servers is None or name in servers]
        if not sessions:
            return [], []
        return self._thread.run(lambda: self._list(sessions))

    async def _list(self, sessions: list[_Session]) -> tuple[list[McpTool], list[str]]:
        """In the loop: open (or reuse) the sessions at once and gather their tools."""
        outcomes = await asyncio.gather(*(s.ready() for s in sessions), return_exceptions=True)
        tools, down = [], []
        for session, outcome in zip(sessions, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                down.append(session.config.name)
            else:
                tools += session.tools
        return tools, down

    def start_call(self, server: str, tool: str, arguments: dict) -> Pending:
        """Start a call; `.wait()` gives an McpResult or raises ToolError, `.cancel()` aborts it (stop)."""
        self._forked()
        if server not in self._sessions:
            raise ToolError("tool_unavailable", f"There is no tool server '{server}'.")
        return self._thread.submit(lambda: self._call(self._sessions[server], tool, arguments))

    def call(self, server: str, tool: str, arguments: dict) -> McpResult:
        """Call a tool and wait for its result (see start_call)."""
        return self.start_call(server, tool, arguments).wait()

    async def _call(self, held: _Session, tool: str, arguments: dict) -> McpResult:
        """In the loop: the call on the held session; once more on a new session if the server forgot the old one."""
        try:
            return await self._call_once(held, tool, arguments)
        except _SessionForgotten:
            held.drop()  # the server restarted and never saw the call, so sending it again is safe
            return await self._call_once(held, tool, arguments)

    async def _call_once(self, held: _Session, tool: str, arguments: dict) -> McpResult:
        """The call, limited in time and raced against the session's end."""
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        name = held.config.name
        session = await held.ready()
        gone = held.gone
        call = asyncio.ensure_future(session.call_tool(tool, arguments))
        done, _ = await asyncio.wait({call, gone}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        if call not in done:
            call.cancel()
            if gone in done:
                raise ToolError("tool_unavailable", f"The tool server '{name}' went away during the call.")
            raise ToolError("tool_timeout", f"'{tool}' on '{name}' gave no result within {self.timeout:g} s.")
        try:
            return result_text(call.result(), self.max_chars)
        except MCPError as exc:
            if _forgotten(exc.error.message):
                raise _SessionForgotten from None
            if exc.code == CONNECTION_CLOSED:
                held.drop()
                raise ToolError("tool_unavailable", f"The tool server '{name}' went away during the call.") from None
            raise ToolError("tool_failed", f"'{tool}' on '{name}' failed: {exc.error.message}") from None
        except Exception as exc:  # noqa: BLE001 - transport failures of every kind mean the same to the model
            log.warning("mcp server %s: call to %s failed: %r", name, tool, exc)
            held.drop()
            raise ToolError("tool_unavailable", f"The tool server '{name}' went away during the call.") from None

    def close(self) -> None:
        """Stop the loop thread (its sessions end with it)."""
        self._thread.stop()
