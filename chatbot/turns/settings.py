"""The rules of a conversation's settings as people set them (over the socket, in a preset, in an imported
export): what each accepts, and the one sentence that says so when something else comes."""

from __future__ import annotations

import math
from typing import Any

from ..model_families import ALL_EFFORTS
from ..protocol import ChatError
from ..store.settings import INSTRUCTIONS_MAX, SETTING_NAMES

TEMPERATURE_RANGE = (0.0, 2.0)
MAX_TOKENS_RANGE = (1, 131072)


def invalid(sentence: str) -> ChatError:
    """The `invalid_message` refusal of a setting, with the one sentence that says what is accepted."""
    return ChatError("invalid_message", sentence)


def setting_value(name: str, value: Any) -> Any:
    """One conversation setting checked against what the server accepts (None: back to the default)."""
    if value is None:
        return None
    if name == "instructions":
        if not isinstance(value, str) or "\x00" in value:
            raise invalid("Instructions must be text.")
        if len(value) > INSTRUCTIONS_MAX:
            raise invalid(f"Instructions can be at most {INSTRUCTIONS_MAX:,} characters long.")
        return value
    if name == "temperature":
        low, high = TEMPERATURE_RANGE
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            raise invalid(f"Temperature must be a number from {low:g} to {high:g}.")
        return float(value)
    if name == "max_tokens":
        low, high = MAX_TOKENS_RANGE
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise invalid(f"The reply length cap must be a whole number of tokens from {low} to {high:,}.")
        return value
    if value not in ALL_EFFORTS:
        raise invalid(f"Reasoning effort must be one of {', '.join(ALL_EFFORTS)}.")
    return value


def settings_changes(data: dict) -> dict:
    """The settings (and `project_id`) an `update_conversation` payload sets: only the keys it names."""
    changes = {name: setting_value(name, data[name]) for name in SETTING_NAMES if name in data}
    if "project_id" in data:
        project_id = data["project_id"]
        if project_id is not None and not isinstance(project_id, str):
            raise ChatError("not_found")
        changes["project_id"] = project_id
    return changes
