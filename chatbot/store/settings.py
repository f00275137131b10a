"""Conversation settings (instructions, temperature, reply length cap, reasoning effort, project), what a turn reads
of them, and named presets of settings: every query scoped to its owner."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .rows import NotFound, _check_text, _iso, _now, _valid_id, owned_row
from .schema import PRESET_NAME_MAX, conversations, presets, projects

# The settings a conversation (and a preset) keeps; None is the operator's default.
SETTING_NAMES = ("instructions", "temperature", "max_tokens", "reasoning_effort")
INSTRUCTIONS_MAX = 20_000
PRESETS_MAX = 100  # per owner


@dataclass(frozen=True)
class TurnSettings:
    """What a turn needs of its conversation's settings: the instructions in order, and the request options."""

    project_instructions: str | None
    instructions: str | None
    temperature: float | None
    max_tokens: int | None
    reasoning_effort: str | None


class PresetNameTaken(Exception):
    """The owner already has a preset of that name (and did not ask to replace it)."""


# What a turn reads of its conversation's settings, in its one transaction: the settings and project, and the
# project's instructions (a conversation's project is only ever its owner's).
TURN_SETTING_COLUMNS = (conversations.c.instructions, conversations.c.temperature, conversations.c.max_tokens,
                        conversations.c.reasoning_effort, conversations.c.project_id,
                        projects.c.instructions.label("project_instructions"))
WITH_PROJECT = conversations.outerjoin(projects, projects.c.id == conversations.c.project_id)


def setting_fields(row: sa.Row) -> dict:
    """A turn's conversation row's settings fields (TURN_SETTING_COLUMNS), for the conversation dict."""
    return {column.name: row._mapping[column.name] for column in TURN_SETTING_COLUMNS}


def turn_settings(conversation: dict) -> tuple[dict, TurnSettings]:
    """Split a turn's conversation dict into the conversation as clients see it and the settings its request uses."""
    conversation = dict(conversation)
    project_instructions = conversation.pop("project_instructions", None)
    return conversation, TurnSettings(project_instructions or None, conversation.get("instructions"),
                                      conversation.get("temperature"), conversation.get("max_tokens"),
                                      conversation.get("reasoning_effort"))


def check_settings(changes: dict) -> dict:
    """Return `changes` (a subset of SETTING_NAMES) if every value is storable, else ValueError; blank
    instructions become None. Which values make sense (ranges, efforts) is the engine's to judge."""
    clean = {}
    for name, value in changes.items():
        if name not in SETTING_NAMES:
            raise ValueError(f"unknown setting {name!r}")
        if value is None:
            clean[name] = None
        elif name == "instructions":
            value = _check_text(value, "instructions").strip()
            if len(value) > INSTRUCTIONS_MAX:
                raise ValueError(f"instructions must be at most {INSTRUCTIONS_MAX} characters")
            clean[name] = value or None
        elif name == "temperature":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError("temperature must be a number")
            clean[name] = float(value)
        elif name == "max_tokens":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
                raise ValueError("max_tokens must be a positive integer")
            clean[name] = value
        else:
            if not isinstance(value, str) or not 0 < len(value) <= 16:
                raise ValueError("reasoning_effort must be a short string")
            clean[name] = value
    return clean


def _preset(row: sa.Row) -> dict:
    """Turn a presets row into the preset dict."""
    return {"id": row.id, "name": row.name, "settings": {name: row.settings.get(name) for name in SETTING_NAMES},
            "created_at": _iso(row.created_at)}


class SettingsQueries:
    """Settings and preset queries (mixed into Store, which provides `_transaction`, `_owned_conversation` and
    `get_conversation`)."""

    def update_conversation_settings(self, owner_id: str, conversation_id: str, changes: dict) -> dict:
        """Set any of a conversation's settings and its project (`project_id`: one of the owner's projects, or None
        for none) and return the conversation; NotFound if the conversation or project is not the owner's."""
        changes = dict(changes)
        project_id = changes.pop("project_id", ...)
        values = check_settings(changes)
        with self._transaction() as conn:
            self._owned_conversation(conn, owner_id, conversation_id, lock=True)
            if project_id is not ...:
                if project_id is not None:
                    owned_row(conn, projects, owner_id, project_id)
                values["project_id"] = project_id
            if values:
                conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id).values(**values))
        return self.get_conversation(owner_id, conversation_id)

    # presets

    def save_preset(self, owner_id: str, name: str, settings: dict, *, replace: bool = False) -> dict:
        """Keep `settings` under `name` for the owner (replacing a preset of that name when `replace`, else
        PresetNameTaken) and return the preset; ValueError for a bad name or value."""
        name = " ".join(_check_text(name, "name").split())[:PRESET_NAME_MAX]
        if not name:
            raise ValueError("name must not be empty")
        values = check_settings({key: settings.get(key) for key in SETTING_NAMES})
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        now = _now()
        with self._transaction() as conn:
            existing = conn.execute(sa.select(presets.c.id).where(presets.c.owner_id == owner_id,
                                                                  presets.c.name == name)).first()
            if existing is not None:
                if not replace:
                    raise PresetNameTaken(name)
                conn.execute(sa.update(presets).where(presets.c.id == existing.id).values(settings=values))
                preset_id = existing.id
            else:
                count = conn.scalar(sa.select(sa.func.count()).where(presets.c.owner_id == owner_id))
                if count >= PRESETS_MAX:
                    raise ValueError(f"at most {PRESETS_MAX} presets can be kept")
                preset_id = uuid.uuid4().hex
                try:
                    conn.execute(sa.insert(presets).values(id=preset_id, owner_id=owner_id, name=name,
                                                           settings=values, created_at=now))
                except IntegrityError as err:
                    raise NotFound(owner_id) from err
            row = conn.execute(sa.select(presets).where(presets.c.id == preset_id)).first()
        return _preset(row)

    def list_presets(self, owner_id: str) -> list[dict]:
        """The owner's presets by name."""
        if not _valid_id(owner_id):
            return []
        with self._transaction(write=False) as conn:
            rows = conn.execute(sa.select(presets).where(presets.c.owner_id == owner_id).order_by(presets.c.name))
            return [_preset(row) for row in rows]

    def get_preset(self, owner_id: str, preset_id: str) -> dict:
        """One of the owner's presets; NotFound if it is not the owner's."""
        with self._transaction(write=False) as conn:
            return _preset(owned_row(conn, presets, owner_id, preset_id))

    def delete_preset(self, owner_id: str, preset_id: str) -> None:
        """Delete one of the owner's presets; NotFound if it is not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(preset_id)):
            raise NotFound(preset_id)
        with self._transaction() as conn:
            deleted = conn.execute(sa.delete(presets).where(presets.c.id == preset_id,
                                                            presets.c.owner_id == owner_id)).rowcount
        if not deleted:
            raise NotFound(preset_id)
