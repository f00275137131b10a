"""What is known about model families, shared by the settings (to validate them) and the providers (to use them):
the default Groq model, and which reasoning efforts each reasoning family takes. No imports from the app."""

from __future__ import annotations

DEFAULT_GROQ_MODEL = "openai/gpt-oss-120b"  # llama-3.3-70b-versatile was decommissioned 2026-08-16

# The values each reasoning family takes as `reasoning_effort` (Groq's, and vLLM's for gpt-oss).
REASONING_EFFORTS: dict[str, tuple[str, ...]] = {"gpt-oss": ("low", "medium", "high"), "qwen": ("none", "default")}
ALL_EFFORTS = tuple(dict.fromkeys(e for efforts in REASONING_EFFORTS.values() for e in efforts))


def model_family(model_id: str) -> str | None:
    """The reasoning family of a model id ("gpt-oss", "qwen"), or None for models that take no reasoning effort."""
    name = model_id.rsplit("/", 1)[-1].lower()
    if name.startswith("gpt-oss"):
        return "gpt-oss"
    if name.startswith("qwen3"):
        return "qwen"
    return None
