"""A reply's tool steps as people read them (the Markdown export): one line per step, what it did and how it ended."""

from __future__ import annotations

import json


def step_title(step: dict) -> str:
    """What a step did, in words: "Searched the web for …", "Ran code", "Called orders › lookup_order"."""
    tool_input = step.get("input")
    if step.get("kind") == "search":
        query = tool_input.get("query") if isinstance(tool_input, dict) else None
        return f"Searched the web for “{query}”" if query else "Searched the web"
    if step.get("kind") == "code":
        return "Ran code"
    name = str(step.get("name", ""))
    if name.startswith("mcp:") and "/" in name:
        server, tool = name[4:].split("/", 1)
        return f"Called {server} › {tool}"
    return f"Called {name}"


def markdown_steps(steps: list[dict] | None) -> list[str]:
    """Markdown lines summing up a reply's steps (a quoted list; nothing for a reply without steps)."""
    if not steps:
        return []
    lines = ["> **Tools**", ">"]
    for step in steps:
        line = f"> - {step_title(step)} — {step.get('status', '')}"
        if step.get("kind") == "mcp" and step.get("input"):
            line += f"; input `{json.dumps(step['input'], ensure_ascii=False)[:200]}`"
        lines.append(line)
        for source in step.get("sources") or []:
            lines.append(f">   - {source.get('title') or source.get('url')} <{source.get('url')}>")
    return [*lines, ""]
