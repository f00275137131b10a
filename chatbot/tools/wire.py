"""The tool events' payload fields (`update_conversation.tools`, `approve_tool`), validated like `protocol`'s."""

from __future__ import annotations

import re
from typing import Any

from ..protocol import ChatError

_TOOL_ID = re.compile(r"^(web_search|code|mcp:[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_.:/-]{1,128})$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
TOOLS_MAX = 64


def tool_ids(payload: dict[str, Any]) -> list[str]:
    """The `tools` field: a list of tool ids from list_tools (at most 64), duplicates dropped."""
    value = payload.get("tools")
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > TOOLS_MAX:
        raise ChatError("invalid_message", f"tools must be a list of at most {TOOLS_MAX} tool ids.")
    for item in value:
        if not isinstance(item, str) or not _TOOL_ID.match(item):
            raise ChatError("invalid_message", "tools must hold tool ids from list_tools.")
    return list(dict.fromkeys(value))


def step_id(payload: dict[str, Any]) -> str:
    """The `step_id` field of approve_tool."""
    value = payload.get("step_id")
    if not isinstance(value, str) or not _STEP_ID.match(value):
        raise ChatError("invalid_message", "step_id must be the id of a step waiting for approval.")
    return value


def approve(payload: dict[str, Any]) -> bool:
    """The `approve` field of approve_tool: true or false."""
    value = payload.get("approve")
    if not isinstance(value, bool):
        raise ChatError("invalid_message", "approve must be true or false.")
    return value
