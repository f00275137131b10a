"""Socket.IO handlers of the team layer — conversation settings, projects, share links, presets — as methods the
chat namespace takes in (`ChatNamespace(TeamEvents, Namespace)`), so its one `trigger_event` wraps them too."""

from __future__ import annotations

from typing import Any

from flask import request

import chatbot.protocol as protocol

from ..protocol import ChatError
from ..turns.settings import settings_changes
from ..turns.team import expiry
from .services import chat


def text(data: dict, field: str, *, required: bool = False, default: str = "") -> str | None:
    """An optional text field (None when absent and not required); anything but text is invalid."""
    value = data.get(field)
    if value is None:
        if required:
            raise ChatError("invalid_message", f"{field} is required.")
        return default
    if not isinstance(value, str):
        raise ChatError("invalid_message", f"{field} must be text.")
    return value


def share_id(data: dict) -> str:
    """The `share_id` field: a link's token (any other shape cannot be anyone's: not_found)."""
    value = data.get("share_id")
    if not isinstance(value, str):
        raise ChatError("invalid_message", "share_id must be a string.")
    return value


def flag(data: dict, field: str) -> bool | None:
    """An optional true/false field."""
    value = data.get(field)
    if value is not None and not isinstance(value, bool):
        raise ChatError("invalid_message", f"{field} must be true or false.")
    return value


def with_url(share: dict) -> dict:
    """A share as the client gets it: its page's full URL beside the path (the socket's own host)."""
    return {**share, "url": request.host_url.rstrip("/") + share["path"]}


class TeamEvents:
    """The team layer's events (mixed into the chat namespace)."""

    def on_update_conversation(self, payload: Any = None):
        """Sent by the settings panel and the sidebar (drag into or out of a project): any subset of a
        conversation's instructions, temperature, max_tokens, reasoning_effort and project_id."""
        data = protocol.payload_dict(payload)
        return chat().team.update_conversation(request.sid, protocol.required_id(data, "conversation_id"),
                                               settings_changes(data))

    def on_create_project(self, payload: Any = None):
        """Sent by the sidebar's New project: a project with a name and, optionally, instructions."""
        data = protocol.payload_dict(payload)
        return chat().team.create_project(request.sid, text(data, "name", required=True),
                                          text(data, "instructions"))

    def on_update_project(self, payload: Any = None):
        """Sent when a project is renamed, re-instructed or (un)pinned."""
        data = protocol.payload_dict(payload)
        files = data.get("files")
        if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
            raise ChatError("invalid_message", "files must be a list of file ids.")
        changes = {"name": text(data, "name", default=None), "instructions": text(data, "instructions", default=None),
                   "pinned": flag(data, "pinned"), "files": files}
        return chat().team.update_project(request.sid, protocol.required_id(data, "project_id"), changes)

    def on_delete_project(self, payload: Any = None):
        """Sent when a project is deleted (its conversations stay, in no project)."""
        data = protocol.payload_dict(payload)
        return chat().team.delete_project(request.sid, protocol.required_id(data, "project_id"))

    def on_list_projects(self, payload: Any = None):
        """Sent by the sidebar: the session's projects."""
        protocol.payload_dict(payload)
        return chat().team.list_projects(request.sid)

    def on_share_conversation(self, payload: Any = None):
        """Sent by the share dialog: a link to a snapshot of the conversation as it is now (again: refreshed)."""
        data = protocol.payload_dict(payload)
        ack = chat().team.share_conversation(request.sid, protocol.required_id(data, "conversation_id"),
                                             expiry(data.get("expires_in_days")))
        return with_url(ack)

    def on_list_shares(self, payload: Any = None):
        """Sent by the share dialog: the session's live links."""
        protocol.payload_dict(payload)
        ack = chat().team.list_shares(request.sid)
        return {**ack, "shares": [with_url(share) for share in ack["shares"]]}

    def on_unshare(self, payload: Any = None):
        """Sent when the owner revokes a link: its page answers 404 from now on."""
        return chat().team.unshare(request.sid, share_id(protocol.payload_dict(payload)))

    def on_list_presets(self, payload: Any = None):
        """Sent by the settings panel: the session's named presets."""
        protocol.payload_dict(payload)
        return chat().team.list_presets(request.sid)

    def on_save_preset(self, payload: Any = None):
        """Sent by the settings panel's Save as preset: settings kept under a name."""
        data = protocol.payload_dict(payload)
        settings = data.get("settings")
        if not isinstance(settings, dict):
            raise ChatError("invalid_message", "settings must be an object.")
        return chat().team.save_preset(request.sid, text(data, "name", required=True), settings_changes(
            {key: value for key, value in settings.items() if key != "project_id"}), bool(flag(data, "replace")))

    def on_delete_preset(self, payload: Any = None):
        """Sent when a preset is deleted."""
        data = protocol.payload_dict(payload)
        return chat().team.delete_preset(request.sid, protocol.required_id(data, "preset_id"))
