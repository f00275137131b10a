"""The offline demo provider: the last fallback when no model is configured or can run here, and the tests' and
benchmarks' stand-in. It streams a deterministic, useful reply through the same path as a model (so the page's
streaming path is exercised end to end) and says how to connect a real model."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Delta, ReplyStream, RetryCallback, StatusCallback, StreamOptions


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
    """Offline stand-in when no model serves: a deterministic reply explaining how to connect one."""

    name = "demo"
    demo = True
    model = "demo"

    def __init__(self, *, token_delay: float = 0.02, reason: str | None = None):
        """`token_delay` paces the words like a real model would; `reason` says why no model serves (for the log)."""
        self.token_delay = token_delay
        self.reason = reason
        self.notice = ("Demo mode: no model is connected, so replies come from the offline demo provider. "
                       "Set GROQ_API_KEY or OPENAI_BASE_URL in .env, or install the local model with `make local`, "
                       "and restart.")

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
        options: StreamOptions | None = None,
    ) -> ReplyStream:
        """Prepare the demo reply to the conversation's last user message (it has no settings to take)."""
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
        "This is the **offline demo**: no model is connected, so no AI model is answering.\n\n"
        f"{said}"
        "To chat with a real model, pick one of these, put it in `.env` next to `app.py` (or export it in the "
        "environment) and restart the server:\n\n"
        "- **Groq**: create an API key in the Groq console and set `GROQ_API_KEY=gsk_your_key_here`.\n"
        "- **Your own model server** (Ollama, vLLM, llama.cpp's `llama-server`, LM Studio):\n\n"
        "```bash\nOPENAI_BASE_URL=http://localhost:11434/v1\nOPENAI_MODEL=llama3.2\n```\n\n"
        "- **A small model inside this server**: run `make local` once (it builds llama-cpp-python, which needs "
        "a C++ compiler), then `make run`.\n\n"
        "Everything else (streaming, history, stop, reconnect) works the same in the demo."
    )


def _escape_markdown(text: str) -> str:
    """Backslash-escape Markdown punctuation so quoted user text stays plain text in the rendered reply."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", text)
