"""What a turn sends upstream: the system prompt (the operator's, the project's and the conversation's
instructions) and the newest turns that fit the history budget."""

from __future__ import annotations

from ..providers import StreamOptions
from ..store import TurnSettings

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


def system_prompt(operator: str, settings: TurnSettings) -> str:
    """The operator's SYSTEM_PROMPT, then the project's instructions, then the conversation's (each when set)."""
    extra = [part.strip() for part in (settings.project_instructions, settings.instructions) if part and part.strip()]
    return "\n\n".join([operator, *extra] if operator else extra)


def stream_options(settings: TurnSettings) -> StreamOptions:
    """The conversation's request options (None where the operator's default applies)."""
    return StreamOptions(settings.temperature, settings.max_tokens, settings.reasoning_effort)
