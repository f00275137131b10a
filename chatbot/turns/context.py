"""What a turn sends upstream: the system prompt and the newest turns that fit the history budget."""

from __future__ import annotations

# Newest messages read to build a turn's context (HISTORY_CHAR_BUDGET then decides how many are sent).
CONTEXT_MESSAGES = 200


def build_context(system_prompt: str, history: list[dict], budget: int) -> list[dict]:
    """System prompt + the newest turns whose text fits in `budget` characters (the latest is always kept)."""
    turns: list[dict] = []
    used = 0
    for message in reversed(history):
        # A message without text still counts when it carries files (attachments.py gives it words).
        if message["status"] == "streaming" or not (message["content"] or message.get("attachments")):
            continue
        size = len(message["content"])
        if turns and used + size > budget:
            break
        turns.append({"role": message["role"], "content": message["content"]})
        used += size
    turns.reverse()
    return [{"role": "system", "content": system_prompt}, *turns]
