"""The offline demo provider: used when GROQ_API_KEY is unset, it streams a deterministic, useful reply through the
same path as Groq (so the page, tests and benchmarks exercise streaming) and says how to connect a real model."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Delta, ReplyStream, RetryCallback, StatusCallback


class _DemoReplyStream(ReplyStream):
    """The demo reply, paced like a model so the page's streaming path is exercised end to end."""

    def __init__(self, pieces: list[str], token_delay: float, prompt_tokens: int):
        """Hold the pre-split reply."""
        super().__init__()
        self._pieces = pieces
        self._token_delay = token_delay
        self._prompt_tokens = prompt_tokens

    def _deltas(self) -> Iterator[Delta]:
        """Yield one word at a time; the first at once, the rest after token_delay (cut short by close())."""
        for i, piece in enumerate(self._pieces):
            if i and self._token_delay > 0 and self._stop.wait(self._token_delay):
                return
            yield Delta(piece)
        count = len(self._pieces)
        self.usage = {
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": count,
            "total_tokens": self._prompt_tokens + count,
        }
        self._finish("stop")


class DemoProvider:
    """Offline stand-in used when GROQ_API_KEY is not set: a deterministic reply explaining how to connect."""

    name = "demo"
    demo = True
    model = "demo"

    def __init__(self, *, token_delay: float = 0.02):
        """`token_delay` paces the words like a real model would."""
        self.token_delay = token_delay

    def __repr__(self) -> str:
        """Say it is the demo."""
        return "<DemoProvider>"

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        on_retry: RetryCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> ReplyStream:
        """Prepare the demo reply to the conversation's last user message."""
        pieces = re.findall(r"\s*\S+", demo_reply(messages)) or [""]
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        return _DemoReplyStream(pieces, self.token_delay, prompt_tokens)

    def models(self) -> list[dict]:
        """The demo's one pseudo-model."""
        return [{"id": "demo", "label": "Offline demo", "reasoning": False, "context_window": None}]

    def has_model(self, model_id: str) -> bool:
        """Whether `model_id` is the demo's pseudo-model."""
        return model_id == self.model

    def close(self) -> None:
        """Nothing to release."""


def demo_reply(messages: list[dict]) -> str:
    """The demo's full Markdown reply: what it is, the user's words quoted, how to connect a real model."""
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    quoted = " ".join(str(last).split())
    if len(quoted) > 120:
        quoted = quoted[:119] + "…"
    said = f"You said:\n\n> {_escape_markdown(quoted)}\n\n" if quoted else ""
    return (
        "This is the **offline demo**: no `GROQ_API_KEY` is set, so no AI model is answering.\n\n"
        f"{said}"
        "To chat with a real model:\n\n"
        "1. Create an API key in the Groq console.\n"
        "2. Put it in `.env` next to `app.py` (or export it in the environment):\n\n"
        "```bash\nGROQ_API_KEY=gsk_your_key_here\n```\n\n"
        "3. Restart the server.\n\n"
        "Everything else (streaming, history, stop, reconnect) works the same in the demo."
    )


def _escape_markdown(text: str) -> str:
    """Backslash-escape Markdown punctuation so quoted user text stays plain text in the rendered reply."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", text)
