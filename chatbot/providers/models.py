"""The models users may pick: a provider's list, read through a callable, cached briefly, filtered for chat and by the
operator's allow-list, with the default model first (model families themselves are in chatbot.model_families).

Provider-agnostic and framework-free: the provider hands in `fetch` (for Groq, the SDK's `client.models.list()`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from ..model_families import ALL_EFFORTS, REASONING_EFFORTS, model_family

__all__ = ["ALL_EFFORTS", "REASONING_EFFORTS", "ModelRegistry", "chat_entry", "effort_for", "model_entry",
           "model_family", "model_label"]

log = logging.getLogger(__name__)

# Listed by Groq but not chat models: speech-to-text, text-to-speech, safety classifiers, embeddings.
_NON_CHAT = re.compile(r"whisper|tts|orpheus|guard|embed|rerank", re.IGNORECASE)
_SIZE = re.compile(r"\d+(\.\d+)?[bmke]", re.IGNORECASE)  # 120b, 86m, 16e: sizes and expert counts read upper-case

FetchModels = Callable[[], Iterable[dict]]


def effort_for(model_id: str, effort: str | None) -> str | None:
    """`effort` when the model's family takes it, else None (the request then carries no reasoning_effort)."""
    if effort is None:
        return None
    return effort if effort in REASONING_EFFORTS.get(model_family(model_id) or "", ()) else None


def model_label(model_id: str) -> str:
    """A readable name: 'openai/gpt-oss-120b' → 'GPT-OSS 120B', 'groq/compound-mini' → 'Compound Mini'."""
    name = model_id.rsplit("/", 1)[-1]
    prefix = ""
    if name.lower().startswith("gpt-oss"):
        prefix, name = "GPT-OSS", name[len("gpt-oss") :]
    words = [w for w in name.replace("_", "-").split("-") if w]
    shown = [w.upper() if _SIZE.fullmatch(w) else w[:1].upper() + w[1:] for w in words]
    return " ".join([prefix, *shown]).strip() or model_id


def model_entry(model_id: str, context_window: int | None = None) -> dict:
    """The entry offered to users: {id, label, reasoning, context_window}."""
    return {
        "id": model_id,
        "label": model_label(model_id),
        "reasoning": model_family(model_id) is not None,
        "context_window": context_window,
    }


def chat_entry(raw: object) -> dict | None:
    """The user-facing entry for one listed model, or None when it is not an active chat model."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return None
    if raw.get("active") is False or _NON_CHAT.search(raw["id"]):
        return None
    context = raw.get("context_window")
    return model_entry(raw["id"], context if isinstance(context, int) and context > 0 else None)


class ModelRegistry:
    """The provider's chat models the operator allows, cached for `ttl` seconds, with `default` always first.

    A failed read is retried at most every `retry_interval` seconds; meanwhile the last good list is kept, or, when
    none was ever read, only the default model is offered. One warning is logged per failure period.
    """

    def __init__(
        self,
        fetch: FetchModels,
        default: str,
        *,
        allowed: Sequence[str] = (),
        ttl: float = 300.0,
        retry_interval: float = 30.0,
        name: str = "provider",
        clock: Callable[[], float] = time.monotonic,
    ):
        """Remember how to read the list; nothing is read until the first models() call."""
        self.default = default
        self.allowed = tuple(dict.fromkeys(allowed))
        self._fetch = fetch
        self._ttl = ttl
        self._retry_interval = retry_interval
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()  # one reader at a time; green under eventlet/gevent monkey-patching
        self._listed: dict[str, dict] | None = None  # the last good read: id → entry, in the provider's order
        self._next_read = 0.0
        self._failing = False
        self._warned: set[str] = set()

    def models(self) -> list[dict]:
        """The models users may pick: [{id, label, reasoning, context_window}], the default first."""
        if self._clock() >= self._next_read:
            self._refresh()
        listed = self._listed
        if listed is None:
            return [model_entry(self.default)]
        default = listed.get(self.default)
        if default is None:
            self._warn_once(f"default:{self.default}", "%s does not list the default model %r; offering it anyway",
                            self._name, self.default)
            default = model_entry(self.default)
        ids = self.allowed or sorted(listed)
        missing = [model_id for model_id in self.allowed if model_id not in listed and model_id != self.default]
        if missing:
            self._warn_once(f"allowed:{missing}", "%s does not list allowed model(s) %s; they are not offered",
                            self._name, ", ".join(missing))
        chosen = [listed[model_id] for model_id in ids if model_id in listed and model_id != self.default]
        return [dict(entry) for entry in [default, *chosen]]

    def get(self, model_id: str) -> dict | None:
        """The entry of an offered model, or None when users may not pick it."""
        return next((entry for entry in self.models() if entry["id"] == model_id), None)

    def has(self, model_id: str) -> bool:
        """Whether users may pick `model_id` (what set_model checks)."""
        return self.get(model_id) is not None

    def _refresh(self) -> None:
        """Read the list once, unless another caller is reading it and there is something to serve meanwhile."""
        must_wait = self._listed is None and not self._failing  # nothing to serve yet: wait for the first read
        if not self._lock.acquire(blocking=must_wait):
            return
        try:
            if self._clock() < self._next_read:
                return  # another caller read it while this one waited
            try:
                raw = list(self._fetch())
            except Exception as exc:
                self._next_read = self._clock() + self._retry_interval
                detail = getattr(exc, "detail", "") or f"{type(exc).__name__}: {exc}"
                if not self._failing:
                    kept = "keeping the last list" if self._listed is not None else f"offering only {self.default!r}"
                    log.warning("could not read the %s model list (%s); %s, retrying every %.0fs",
                                self._name, detail, kept, self._retry_interval)
                self._failing = True
                return
            entries = (chat_entry(item) for item in raw)
            self._listed = {entry["id"]: entry for entry in entries if entry is not None}
            self._next_read = self._clock() + self._ttl
            if self._failing:
                log.info("the %s model list can be read again (%d chat models)", self._name, len(self._listed))
            self._failing = False
        finally:
            self._lock.release()

    def _warn_once(self, key: str, message: str, *args) -> None:
        """Log a configuration warning the first time it applies."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
