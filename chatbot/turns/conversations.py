"""Conversation management for a session's sockets: list, new, open, rename, delete, search, and idle clean-up."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ..protocol import ChatError
from ..store.rows import DEFAULT_TITLE, NEW_CONVERSATION_SETTINGS
from .rooms import owner_room
from .starter import TurnStarter

log = logging.getLogger("chatbot.conversations")


def unsaved_conversation(conversation_id: str) -> dict:
    """How a new visitor's conversation is listed before its row exists: empty, just made."""
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    return {"id": conversation_id, "title": DEFAULT_TITLE, "created_at": now, "updated_at": now, "model": None,
            **NEW_CONVERSATION_SETTINGS, "tools": None, "message_count": 0}


class ConversationService:
    """The session's conversations; shares the TurnStarter's sockets, store and views."""

    def __init__(self, turns: TurnStarter, stale_reply_seconds: float):
        """Work through the engine's shared TurnStarter: its store, limiter, sockets and views."""
        self.turns = turns
        self.store, self.limiter, self.settings = turns.store, turns.limiter, turns.settings
        self._stale_reply_seconds = stale_reply_seconds

    def list(self, sid: str) -> dict:
        """The session's conversations, newest first (with the one a new visitor sees before its rows exist)."""
        state = self.turns.state(sid)
        listed = self._conversation_list(state.owner_id)
        if state.unsaved:
            listed["conversations"].insert(0, unsaved_conversation(state.conversation_id))
            listed["active_id"] = state.conversation_id
        return {"ok": True, **listed}

    def new(self, sid: str, preset_id: str | None = None) -> dict:
        """Create a conversation (with a preset's settings, when given) and show it in this socket."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        preset = None if preset_id is None else self.store.get_preset(state.owner_id, preset_id)
        conversation = self.store.create_conversation(state.owner_id)
        if preset is not None:
            conversation = self.store.update_conversation_settings(state.owner_id, conversation["id"],
                                                                   preset["settings"])
        self.turns.switch(sid, state, conversation["id"])
        self.turns.send_view(sid)
        self.changed(state.owner_id)
        return {"ok": True, "conversation": conversation}

    def open(self, sid: str, conversation_id: str) -> dict:
        """Show another of the session's conversations in this socket."""
        state = self.turns.saved(sid)
        conversation = self.store.get_conversation(state.owner_id, conversation_id)
        self.turns.switch(sid, state, conversation_id)
        self.turns.send_view(sid)
        return {"ok": True, "conversation": conversation}

    def rename(self, sid: str, conversation_id: str, title: str) -> dict:
        """Rename one of the session's conversations; every tab gets the changed one."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        conversation = self.store.rename_conversation(state.owner_id, conversation_id, title)
        self.turns.socketio.emit("conversation_updated", {"conversation": conversation},
                                to=owner_room(state.owner_id))
        return {"ok": True, "conversation": conversation}

    def delete(self, sid: str, conversation_id: str) -> dict:
        """Delete one of the session's conversations (stopping its reply); sockets showing it move on."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        self.store.get_conversation(state.owner_id, conversation_id)
        active = self.turns.replies.active(conversation_id)
        if active is not None:
            self.turns.stop(sid, active)
        self.store.delete_conversation(state.owner_id, conversation_id)
        remaining = self.store.list_conversations(state.owner_id, limit=1)
        fallback = remaining[0]["id"] if remaining else self.store.create_conversation(state.owner_id)["id"]
        if self.store.get_active_conversation(state.owner_id) in (None, conversation_id):
            self.store.set_active_conversation(state.owner_id, fallback)
        for other_sid, other in list(self.turns.sockets.items()):
            if other.owner_id == state.owner_id and other.conversation_id == conversation_id:
                self.turns.switch(other_sid, other, fallback)
                self.turns.send_view(other_sid)
        self.changed(state.owner_id)
        return {"ok": True}

    def export(self, owner_id: str, conversation_id: str, whole_tree: bool) -> tuple[dict, list[dict]]:
        """One of the owner's conversations and its messages: every version (with `active_leaf_id`) for the whole
        tree, else the active path the page shows (NotFound for a foreign or unknown id)."""
        conversation = self.store.get_conversation(owner_id, conversation_id)
        if whole_tree:
            leaf, messages = self.store.tree(owner_id, conversation_id)
            return {**conversation, "active_leaf_id": leaf}, messages
        return conversation, self.store.active_path(owner_id, conversation_id)

    def search(self, sid: str, query: str, limit: int) -> dict:
        """The session's conversation titles and messages matching `query`, best first (an empty query finds
        nothing and costs nothing)."""
        state = self.turns.state(sid)
        if not query:
            return {"ok": True, "results": []}
        self.limiter.search(state.owner_id)
        return {"ok": True, "results": self.store.search(state.owner_id, query, limit)}

    def list_models(self, sid: str) -> dict:
        """The models users may pick (the provider's list, filtered by the operator), each saying whether it takes
        pictures (`vision`: in VISION_MODELS), and the default."""
        self.turns.state(sid)
        models = [{**model, "vision": self.turns.attachments.can_see(model["id"])}
                  for model in self.turns.provider.models()]
        return {"ok": True, "models": models, "default": self.turns.provider.model}

    def set_model(self, sid: str, conversation_id: str, model: str | None) -> dict:
        """Make one of the session's conversations use `model` (None: the default); every tab gets the change."""
        state = self.turns.saved(sid)
        self.limiter.action(state.owner_id)
        if model is not None and not self._offered(model):
            raise ChatError("model_unavailable", f"The model “{model}” is not one you can pick here. "
                            "Choose one from the list.")
        conversation = self.store.set_conversation_model(state.owner_id, conversation_id, model)
        self.turns.socketio.emit("conversation_updated", {"conversation": conversation},
                                to=owner_room(state.owner_id))
        return {"ok": True, "conversation": conversation}

    def _offered(self, model: str) -> bool:
        """Whether `model` is on the provider's list as the operator allows it."""
        provider = self.turns.provider
        if hasattr(provider, "has_model"):
            return provider.has_model(model)
        return any(entry["id"] == model for entry in provider.models())

    def cleanup(self) -> int:
        """Delete anonymous sessions idle longer than SESSION_TTL_DAYS, with all their data (returns how many), and
        usage and links past keeping."""
        deleted = self.store.delete_idle_owners(self.settings["SESSION_TTL_DAYS"] * 86400)
        if deleted:
            log.info("cleanup deleted=%d idle sessions", deleted)
        # Accounts' usage older than the admin page shows, and one-time links long expired.
        self.store.delete_old_usage()
        self.store.delete_old_links()
        self.store.expire_uploads(self.settings["UPLOAD_EXPIRY_HOURS"] * 3600)  # unfinished uploads
        return deleted

    def maintenance_loop(self) -> None:
        """Forever: delete idle sessions every CLEANUP_INTERVAL seconds (run as a background task)."""
        while True:
            try:
                self.cleanup()
                if self.settings["REDIS_URL"]:
                    # Replies of a process that died while others live on: no checkpoint for a long while.
                    self.store.interrupt_streaming(stale_after=self._stale_reply_seconds)
            except Exception:
                log.exception("cleanup failed")
            self.turns.socketio.sleep(self.settings["CLEANUP_INTERVAL"])

    def changed(self, owner_id: str) -> None:
        """Tell every socket of the session that its conversation list changed (a conversation came or went)."""
        self.turns.socketio.emit("conversations", self._conversation_list(owner_id), to=owner_room(owner_id))

    def _conversation_list(self, owner_id: str) -> dict:
        """The `conversations` payload."""
        return {"conversations": self.store.list_conversations(owner_id),
                "active_id": self.store.get_active_conversation(owner_id)}
