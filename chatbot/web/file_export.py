"""Files in the Markdown export: a message's attachments and a reply's sources, listed (the JSON export's `files`
come from the engine: Attachments.export_files)."""

from __future__ import annotations


def markdown_lines(message: dict) -> list[str]:
    """The Markdown lines that list a message's attachments or a reply's sources (none when it has neither)."""
    lines = []
    if message.get("attachments"):
        lines.append("**Attachments:**")
        for entry in message["attachments"]:
            pages = f", {entry['pages']} pages" if entry.get("pages") else ""
            lines.append(f"- {entry['name']} ({entry.get('mime') or entry.get('kind')}{pages}, "
                         f"{_size(entry.get('size') or 0)})")
        lines.append("")
    if message.get("sources"):
        lines.append("**Sources:**")
        for source in message["sources"]:
            page = f", page {source['page']}" if source.get("page") else ""
            lines.append(f"- [{source['n']}] {source['name']}{page}")
        lines.append("")
    return lines


def _size(size: int) -> str:
    """A byte count for people."""
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.1f} KB" if size < 1024**2 else f"{size / 1024**2:.1f} MB"
