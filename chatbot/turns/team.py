"""The team layer for a session's sockets: conversation settings, projects, share links, presets, imports and the
usage figures. Every change is told to every tab of the session; every id is the session's own or `not_found`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..offload import run_native
from ..store import PresetNameTaken
from .attachments import project_documents
from .conversations import ConversationService
from .imports import parse_import
from .rooms import owner_room
from .settings import invalid
from .starter import TurnStarter

SHARE_DAYS_MAX = 365


def expiry(days: Any) -> datetime | None:
    """When a link given `expires_in_days` expires (None/absent: never)."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= SHARE_DAYS_MAX:
        raise invalid(f"A link's expiry must be from 1 to {SHARE_DAYS_MAX} days.")
    return datetime.now(UTC) + timedelta(days=days)


def share_path(share_id: str) -> str:
    """The path of a share link's page (the edge makes it a full URL)."""
    return f"/share/{share_id}"


class TeamService:
    """Settings, projects, share links, presets and imports of a session's sockets."""

    def __init__(self, turns: TurnStarter, conversations: ConversationService):
        """Work through `turns` (the store, limiter, sockets and Socket.IO server) and tell conversation list
        changes through `conversations`."""
        self.turns, self.conversations = turns, conversations
        self.store, self.limiter, self.settings = turns.store, turns.limiter, turns.settings

    # conversation settings

    def update_conversation(self, sid: str, conversation_id: str, changes: dict) -> dict:
        """Set any of a conversation's settings and its project; every tab gets `conversation_updated`."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        conversation = self.store.update_conversation_settings(state.owner_id, conversation_id, changes)
        self._tell(state.owner_id, "conversation_updated", {"conversation": conversation})
        return {"ok": True, "conversation": conversation}

    # projects

    def list_projects(self, sid: str) -> dict:
        """The session's projects, pinned first."""
        return {"ok": True, "projects": self.store.list_projects(self.turns.state(sid).owner_id)}

    def create_project(self, sid: str, name: str, instructions: str) -> dict:
        """Create a project; every tab gets the new `projects` list."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        project = self._checked(lambda: self.store.create_project(state.owner_id, name, instructions))
        self._projects_changed(state.owner_id)
        return {"ok": True, "project": project}

    def update_project(self, sid: str, project_id: str, changes: dict) -> dict:
        """Rename, re-instruct, (un)pin a project or replace its files (the session's ready documents); every tab
        gets the new `projects` list."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        if changes.get("files"):
            self.store.get_project(state.owner_id, project_id)  # an unknown project is told before its files
            project_documents(self.store, state.owner_id, changes["files"])
        project = self._checked(lambda: self.store.update_project(state.owner_id, project_id, **changes))
        self._projects_changed(state.owner_id)
        return {"ok": True, "project": project}

    def delete_project(self, sid: str, project_id: str) -> dict:
        """Delete a project (its conversations stay, in no project); every tab gets both lists."""
        state = self.turns.state(sid)
        self.limiter.action(state.owner_id)
        self.store.delete_project(state.owner_id, project_id)
        self._projects_changed(state.owner_id)
        self.conversations.changed(state.owner_id)
        return {"ok": True}

    # share links

    def share_conversation(self, sid: str, conversation_id: str, expires_at: datetime | None) -> dict:
        """Make (or refresh) the read-only link to a snapshot of a conversation's active path."""
        state = self.turns.saved(sid)
        if self.settings["SHARE_LINKS"] == "off":
            raise invalid("Share links are turned off on this server.")
        self.limiter.action(state.owner_id)
        share = self.store.share_conversation(state.owner_id, conversation_id, expires_at)
        return {"ok": True, **share, "path": share_path(share["share_id"])}

    def list_shares(self, sid: str) -> dict:
        """The session's live share links, newest first."""
        shares = self.store.list_shares(self.turns.state(sid).owner_id)
        return {"ok": True, "shares": [{**share, "path": share_path(share["share_id"])} for share in shares]}

    def unshare(self, sid: str, share_id: str) -> dict:
        """Revoke a share link: its page answers 404 from now on."""
        state = self.turns.state(sid)
        self.limiter.action(state.owner_id)
        self.store.revoke_share(state.owner_id, share_id)
        return {"ok": True}

    def shared(self, share_id: str) -> dict | None:
        """A live share link's snapshot as anyone with the link sees it (None: unknown, revoked or expired)."""
        return self.store.shared(share_id)

    def continue_share(self, owner_id: str, share_id: str) -> dict:
        """Copy a live link's snapshot into a reader's own conversations (their active one from now); a session
        whose page was loaded but whose socket never connected is made first. NotFound when the link is not live."""
        self.turns.save_owner(owner_id)
        return self.store.copy_share(owner_id, share_id)

    def import_file(self, owner_id: str, raw: bytes) -> dict:
        """Import every conversation of a ChatGPT or ChatbotWS export for the owner (all or nothing); every tab
        gets the new conversation list."""
        self.limiter.action(owner_id)
        imported = run_native(parse_import, raw)  # a big file's parsing must not hold the event loop
        self.turns.save_owner(owner_id)  # a session whose page was loaded but whose tabs never wrote
        try:
            made = self.store.import_conversations(owner_id, imported)
        except ValueError as exc:
            raise invalid(f"Nothing was imported: {exc}.") from None
        self.conversations.changed(owner_id)
        return {"ok": True, "imported": len(made), "conversation_ids": made}

    def usage(self) -> dict:
        """Replies, tokens and tool calls per UTC day over the last 30 days, per model and per account (for admins)."""
        return self.store.usage_by_day()

    def own_usage(self, user_id: str) -> dict:
        """An account's own replies, tokens and tool calls per UTC day over the last 30 days, and its daily quota
        (`daily_tokens`: None for no limit)."""
        limit = self.store.get_user(user_id)["daily_token_limit"]
        limit = self.settings["USER_DAILY_TOKENS"] if limit is None else limit
        return {**self.store.usage_by_day(user_id=user_id), "daily_tokens": limit or None}

    # presets

    def list_presets(self, sid: str) -> dict:
        """The session's presets by name."""
        return {"ok": True, "presets": self.store.list_presets(self.turns.state(sid).owner_id)}

    def save_preset(self, sid: str, name: str, settings: dict, replace: bool) -> dict:
        """Keep settings under a name (replacing one of that name only when asked)."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        try:
            preset = self._checked(lambda: self.store.save_preset(state.owner_id, name, settings, replace=replace))
        except PresetNameTaken:
            raise invalid("You already have a preset of that name. Pick another or replace it.") from None
        return {"ok": True, "preset": preset}

    def delete_preset(self, sid: str, preset_id: str) -> dict:
        """Delete a preset."""
        state = self.turns.state(sid)
        self.limiter.action(state.owner_id)
        self.store.delete_preset(state.owner_id, preset_id)
        return {"ok": True}

    # internals

    @staticmethod
    def _checked(call):
        """Run a store call whose ValueError is the person's input: told as `invalid_message`."""
        try:
            return call()
        except ValueError as exc:
            raise invalid(f"That was refused: {exc}.") from None

    def _projects_changed(self, owner_id: str) -> None:
        """Tell every socket of the session its project list."""
        self._tell(owner_id, "projects", {"projects": self.store.list_projects(owner_id)})

    def _tell(self, owner_id: str, event: str, payload: dict) -> None:
        """Emit to every socket of the session."""
        self.turns.socketio.emit(event, payload, to=owner_room(owner_id))
