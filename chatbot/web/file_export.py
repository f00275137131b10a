"""Files in conversation exports: the JSON export's `files` (metadata and extracted text) and the Markdown
export's lists of attachments and sources."""

from __future__ import annotations


def export_files(store, owner_id: str, messages: list[dict]) -> list[dict]:
    """Every file the messages carry, once, with its extracted text (documents): [{id, name, kind, mime, size,
    pages?, text?}]."""
    described = {}
    for message in messages:
        for entry in message.get("attachments") or []:
            described.setdefault(entry["id"], dict(entry))
    texts = store.file_texts(owner_id, list(described))
    for file_id, entry in described.items():
        if file_id in texts:
            entry["text"] = texts[file_id]
    return list(described.values())


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
