"""The tool registry: which tools exist (Groq's built-ins, the MCP servers' tools), which a conversation's provider
and model can use, the `list_tools` payload, and the `tools` a request offers the model.

Tool ids are the wire's: `web_search` and `code` for the built-ins, `mcp:<server>/<tool>` for MCP tools. The model
sees MCP tools as function tools named `<server>__<tool>` (function names allow only letters, digits, `_` and `-`),
and the registry maps a name the model sends back to the tool it was offered as, and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .mcp_client import McpClient, McpTool

_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ToolSpec:
    """One tool as offered: its wire id and label, and how it runs."""

    id: str
    label: str
    description: str
    kind: str  # "builtin" | "mcp"
    step_kind: str  # what its steps are on the wire: "search" | "code" | "mcp"
    needs_approval: bool = False
    server: str | None = None
    tool: str | None = None  # the MCP tool's own name
    function: str | None = None  # the function name the model calls it by (MCP tools)
    builtin_type: str | None = None  # Groq's tool type (built-ins)
    input_schema: dict = field(default_factory=dict)

    def payload(self) -> dict:
        """This tool in `list_tools`."""
        data = {"id": self.id, "label": self.label, "description": self.description, "kind": self.kind,
                "needs_approval": self.needs_approval}
        if self.server is not None:
            data["server"] = self.server
        return data

    def request_entry(self) -> dict:
        """This tool in a chat request's `tools`."""
        if self.builtin_type is not None:
            return {"type": self.builtin_type}
        return {"type": "function", "function": {"name": self.function, "description": self.description,
                                                 "parameters": self.input_schema or {"type": "object"}}}


BUILTINS = (
    ToolSpec("web_search", "Web search", "Search the web and read pages (runs at the AI service).", "builtin",
             "search", builtin_type="browser_search"),
    ToolSpec("code", "Run code", "Run Python code in a sandbox at the AI service.", "builtin", "code",
             builtin_type="code_interpreter"),
)
BUILTIN_IDS = frozenset(spec.id for spec in BUILTINS)
# Groq's built-in tools run only with these model families (the gpt-oss models); other models refuse them.
BUILTIN_FAMILIES = ("gpt-oss",)


def mcp_id(server: str, tool: str) -> str:
    """The wire id of an MCP tool."""
    return f"mcp:{server}/{tool}"


def function_name(server: str, tool: str) -> str:
    """The function name the model calls an MCP tool by (the API allows [A-Za-z0-9_-]{1,64})."""
    return _FUNCTION_NAME.sub("_", f"{server}__{tool}")[:64]


def capabilities(provider, model: str) -> tuple[bool, bool]:
    """(takes function tools, has Groq's built-ins) for a provider and model: the local model and the demo take
    none; an OpenAI-compatible server takes function tools; Groq takes both with the gpt-oss models."""
    name = getattr(provider, "dialect", None) or getattr(provider, "name", "")
    if name not in ("groq", "openai"):
        return False, False
    family = model.rsplit("/", 1)[-1].lower()
    return True, name == "groq" and family.startswith(BUILTIN_FAMILIES)


def mcp_spec(tool: McpTool) -> ToolSpec:
    """Our view of an MCP server's tool."""
    return ToolSpec(mcp_id(tool.server, tool.name), tool.name, tool.description, "mcp", "mcp",
                    needs_approval=tool.needs_approval, server=tool.server, tool=tool.name,
                    function=function_name(tool.server, tool.name), input_schema=tool.input_schema)


class ToolRegistry:
    """Every tool of this deployment; `available()` narrows it to what a provider and model can use."""

    def __init__(self, mcp: McpClient | None = None):
        """Use the process's MCP client (None: no MCP servers configured)."""
        self.mcp = mcp

    def mcp_tools(self) -> tuple[list[ToolSpec], list[str]]:
        """The MCP servers' tools now, and the servers that could not be reached."""
        if self.mcp is None:
            return [], []
        tools, down = self.mcp.list_tools(None)
        return [mcp_spec(tool) for tool in tools], down

    def available(self, provider, model: str) -> tuple[list[ToolSpec], list[str]]:
        """The tools a conversation with this provider and model may enable, and the unreachable MCP servers."""
        functions, builtins = capabilities(provider, model)
        if not functions:
            return [], []
        tools, down = self.mcp_tools()
        return (list(BUILTINS) if builtins else []) + tools, down

    def list_payload(self, provider, model: str) -> dict:
        """The `list_tools` acknowledgement: {tools, unavailable: [server]}."""
        tools, down = self.available(provider, model)
        return {"tools": [tool.payload() for tool in tools], "unavailable": down}

    def offer(self, enabled: list[str], provider, model: str) -> Offer:
        """What a turn offers the model: the enabled tools that this provider and model can use now (only the servers
        of enabled MCP tools are asked; one that is down simply offers nothing this turn)."""
        functions, builtins = capabilities(provider, model)
        if not enabled or not functions:
            return Offer([])
        wanted = set(enabled)
        tools = [tool for tool in BUILTINS if builtins and tool.id in wanted]
        servers = {tool_id[4:].split("/", 1)[0] for tool_id in wanted if tool_id.startswith("mcp:")}
        if servers and self.mcp is not None:
            listed, _ = self.mcp.list_tools(servers)
            tools += [spec for spec in map(mcp_spec, listed) if spec.id in wanted]
        return Offer(tools)

    def known(self, tool_ids: list[str]) -> list[str]:
        """The ids among `tool_ids` that name a tool of this deployment (a built-in or a configured server's)."""
        servers = set(self.mcp.servers) if self.mcp is not None else set()
        kept = []
        for tool_id in tool_ids:
            if tool_id in BUILTIN_IDS:
                kept.append(tool_id)
            elif tool_id.startswith("mcp:") and tool_id[4:].split("/", 1)[0] in servers and "/" in tool_id:
                kept.append(tool_id)
        return kept


class Offer:
    """The tools one turn offers the model, and the way back from a name the model calls to the tool."""

    def __init__(self, tools: list[ToolSpec]):
        """Index the offered tools by the function name the model uses."""
        self.tools = tools
        self._by_function = {tool.function: tool for tool in tools if tool.function}

    def __bool__(self) -> bool:
        """Whether anything is offered."""
        return bool(self.tools)

    def request_tools(self) -> list[dict]:
        """The request's `tools`."""
        return [tool.request_entry() for tool in self.tools]

    def resolve(self, name: str) -> ToolSpec | None:
        """The offered function tool the model called by `name`, or None (never offered: it must not run)."""
        return self._by_function.get(name)

    def builtin(self, groq_type: str) -> ToolSpec | None:
        """The offered built-in whose steps Groq reports with this type (browser.search, python, …), if any."""
        kind = builtin_kind(groq_type)
        return next((tool for tool in self.tools if tool.builtin_type and tool.step_kind == kind), None)


def builtin_kind(groq_type: str) -> str:
    """The wire's step kind of a Groq executed tool: "search" for browsing and searching, else "code"."""
    text = (groq_type or "").lower()
    return "search" if "search" in text or "browser" in text or "visit" in text else "code"
