"""The shared turn-starting machinery of the chat engine: the sockets of this process and what they show, claiming
a conversation, beginning a turn in the store and handing it to the pump. ChatService, BranchService,
ConversationService and LoginWatch all receive the one TurnStarter (none of them holds a pointer back to another)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import chatbot.protocol as protocol

from ..protocol import ChatError
from ..providers import Provider
from ..ratelimit import RateLimiter
from ..store import NotFound, Store
from ..store.conversations import ConversationQueries
from ..store.messages import MessageQueries
from ..store.settings import turn_settings
from ..store.turns import NotEditable, NothingToRegenerate, TurnQueries, TurnStart
from ..store.usage import QuotaExceeded
from .attachments import Attachments
from .context import CONTEXT_MESSAGES, build_context, stream_options, system_prompt
from .pump import StreamPump
from .registry import Replies
from .rooms import SocketState, conversation_room

# The parts of the Store (which mixes them) that starting a turn calls, named here so that a reader, or a tool that
# follows a message from the socket handler to the final write, can go to their definitions.
STORE_PARTS = (ConversationQueries, MessageQueries, TurnQueries)

WELCOME = "Hi there! I'm ChatbotWS. Ask me anything — I answer as I think, word by word."


class TurnStarter:
    """What every part of the engine shares: the store, provider, reply registry, limiter, pump, Socket.IO server,
    settings and this process's sockets; starts turns and moves sockets between conversations."""

    def __init__(self, *, store: Store, provider: Provider, replies: Replies, limiter: RateLimiter,
                 pump: StreamPump, socketio: Any, settings: dict[str, Any]):
        """Hold the engine's collaborators; the socket table starts empty."""
        self.store, self.provider, self.replies, self.limiter = store, provider, replies, limiter
        self.pump, self.socketio, self.settings = pump, socketio, settings
        self.sockets: dict[str, SocketState] = {}
        self.show_reasoning: bool = settings.get("SHOW_REASONING", True)
        self.attachments = Attachments(store, settings)

    def forget(self, sid: str) -> None:
        """Forget a socket; its replies keep streaming and are stored."""
        self.sockets.pop(sid, None)

    def state(self, sid: str) -> SocketState:
        """The socket's state (raises session_not_found for a socket that never connected properly)."""
        state = self.sockets.get(sid)
        if state is None:
            raise ChatError("session_not_found")
        return state

    def saved(self, sid: str) -> SocketState:
        """The socket's state, its owner and conversation rows written first if they wait (see `unsaved`)."""
        state = self.state(sid)
        self.save(state)
        return state

    def save(self, state: SocketState) -> None:
        """Write a new visitor's owner and conversation rows (another tab may have made the owner already)."""
        if state.unsaved:
            self.store.create_session(state.owner_id, state.conversation_id)
            self.mark_saved(state)

    def save_owner(self, owner_id: str) -> None:
        """Make sure an owner's rows exist (for an HTTP request such as an import): a new visitor with a tab on this
        process gets the conversation that tab shows; otherwise the owner is made, or kept as it is."""
        waiting = next((s for s in self.sockets.values() if s.unsaved and s.owner_id == owner_id), None)
        if waiting is not None:
            self.save(waiting)
        else:
            self.store.create_session(owner_id)

    def mark_saved(self, state: SocketState) -> None:
        """A new visitor's rows exist now: for every tab of this process showing its conversation."""
        for other in self.sockets.values():
            if other.unsaved and (other.owner_id, other.conversation_id) == (state.owner_id, state.conversation_id):
                other.unsaved = False
        state.unsaved = False

    def send_history(self, sid: str, history: dict) -> None:
        """Send a socket the conversation it shows (`history`), and the welcome when it is empty."""
        self.socketio.emit("history", history, to=sid)
        if not history["messages"]:
            self.socketio.emit("bot_message", self.welcome(history["conversation_id"]), to=sid)

    def send_view(self, sid: str) -> None:
        """Read and send the newest page of the conversation a socket shows."""
        state = self.state(sid)
        messages, more = self.store.message_page(state.owner_id, state.conversation_id, None,
                                                 self.settings["HISTORY_PAGE"])
        self.send_history(sid, protocol.history(state.conversation_id, messages, more,
                                                reasoning=self.show_reasoning))

    def take_turn(self, sid: str, state: SocketState, conversation_id: str, text: str, client_id: str | None,
                  edit_of: int | None = None) -> tuple[TurnStart | None, dict]:
        """Claim the conversation and store the turn (a new message, or a new version of `edit_of`): (the begun turn,
        its ack); the turn is None when a resend's client_id was known (its ack is the stored one's)."""
        try:
            self.reserve(state, conversation_id)
        except ChatError as exc:
            # A resend of a message whose reply is still streaming is answered, not refused.
            existing = self.store.find_client_message(state.owner_id, conversation_id, client_id) if (
                client_id and exc.code == "busy") else None
            if existing is None:
                raise
            return None, self._duplicate_ack(existing, self.store.reply_after(existing["id"]), conversation_id)
        with self.claimed(state, conversation_id) as quota:
            turn = self.begin_turn(state, conversation_id, text, client_id, edit_of, quota)
        if turn.duplicate:
            self.replies.release(conversation_id, state.owner_id)
            return None, self._duplicate_ack(turn.message, turn.reply, conversation_id)
        self.limiter.count_message(state.owner_id, state.ip)
        self.join_conversation(sid, state, conversation_id)
        return turn, {"ok": True, "message_id": turn.message["id"], "reply_id": turn.reply["id"],
                      "conversation_id": conversation_id}

    def begin_turn(self, state: SocketState, conversation_id: str, text: str, client_id: str | None,
                   edit_of: int | None, quota: int | None) -> TurnStart:
        """Begin a claimed turn in the store; a new visitor's rows are made in the same transaction (see `unsaved`)."""
        options = {"client_id": client_id, "context_limit": CONTEXT_MESSAGES, "edit_of": edit_of, "quota": quota,
                   "page_size": None if edit_of is None else self.settings["HISTORY_PAGE"]}
        if state.unsaved and conversation_id == state.conversation_id:
            try:
                turn = self.store.begin_turn(state.owner_id, conversation_id, text, create=True, **options)
            except NotFound:
                self.save(state)  # another tab of this visitor (or an upload) made the owner first
            else:
                self.mark_saved(state)
                return turn
        return self.store.begin_turn(state.owner_id, conversation_id, text, **options)

    def check_files(self, state: SocketState, conversation_id: str, file_ids: list[str] | None) -> list[dict]:
        """The files a message into `conversation_id` may carry (see Attachments.check); [] for none. Nothing is
        stored, so a refusal leaves nothing behind."""
        if not file_ids:
            return []
        stored = not (state.unsaved and conversation_id == state.conversation_id)  # a new visitor's has no model
        model = (stored and self.store.get_conversation(state.owner_id, conversation_id).get("model")
                 or self.provider.model)
        return self.attachments.check(state.owner_id, file_ids, model)

    @contextmanager
    def claimed(self, state: SocketState, conversation_id: str) -> Iterator[int | None]:
        """Check the message limits for a turn in a conversation this socket has claimed, and give the body (which
        begins the turn in the store) the account's daily token quota; when the body fails, the claim is released and
        the store's refusal told in the protocol's words."""
        try:
            # Checked once the conversation is free (a message refused as busy costs no budget), counted once stored.
            self.limiter.check_message(state.owner_id, state.ip)
            yield None if state.user_id is None else self.settings["USER_DAILY_TOKENS"]
        except BaseException as exc:
            self.replies.release(conversation_id, state.owner_id)
            if isinstance(exc, QuotaExceeded):
                raise quota_error(exc) from None
            if isinstance(exc, NotEditable):
                raise ChatError("invalid_message", "Only your own messages can be edited.") from None
            if isinstance(exc, NothingToRegenerate):
                raise ChatError("invalid_message", "There is no reply to regenerate yet.") from None
            raise

    def stop(self, sid: str, reply_id: int | None) -> dict:
        """Stop a reply in flight (the socket's conversation's, when no id is given)."""
        state = self.state(sid)
        if reply_id is None:
            reply_id = self.replies.active(state.conversation_id)
            if reply_id is None:
                return {"ok": True, "stopped": False}
        owner = self.replies.owner_of(reply_id)
        if owner is None or owner[0] != state.owner_id:
            self.store.get_message(state.owner_id, reply_id)  # NotFound for a foreign id
            return {"ok": True, "stopped": False}
        self.pump.stop(reply_id)
        return {"ok": True, "stopped": True}

    def switch(self, sid: str, state: SocketState, conversation_id: str) -> None:
        """Move a socket to another of its session's conversations (and make it the session's active one)."""
        self.store.set_active_conversation(state.owner_id, conversation_id)  # NotFound for a foreign id
        self.join_conversation(sid, state, conversation_id)

    def welcome(self, conversation_id: str) -> dict:
        """The welcome `bot_message` of an empty conversation (not stored)."""
        notice = getattr(self.provider, "notice", "")  # who answers and how to switch (demo, local model)
        return protocol.welcome(conversation_id, WELCOME + (f" ({notice})" if notice else ""))

    def reserve(self, state: SocketState, conversation_id: str) -> None:
        """Claim the conversation for one reply, or refuse with busy / rate_limited."""
        if self.pump.closing:
            raise ChatError("rate_limited", "The server is restarting. Send your message again in a moment.",
                            retry_after=2.0, kind="restarting")
        refused = self.replies.reserve(conversation_id, state.owner_id, self.settings["MAX_CONCURRENT_REPLIES"])
        if refused == "busy":
            # Only the owner may learn that a conversation is busy; anyone else gets not_found, as for any id.
            self.store.get_conversation(state.owner_id, conversation_id)
            raise ChatError("busy")
        if refused:
            raise ChatError("rate_limited", "Too many replies are being written for you at once. "
                            "Wait for one to finish.", retry_after=1.0, kind="concurrent")

    def start_reply(self, state: SocketState, turn: TurnStart) -> None:
        """Hand a begun turn to the pump with its context and the conversation's model (or the default); an
        account's usage is counted at the reply's final write."""
        conversation, settings = turn_settings(turn.conversation)  # read in the turn's one transaction
        context = build_context(system_prompt(self.settings["SYSTEM_PROMPT"], settings), turn.history,
                                self.settings["HISTORY_CHAR_BUDGET"])
        model = conversation.get("model") or self.provider.model
        # Excerpts of the documents the path and its project carry, and the question's pictures; the excerpts sent
        # are the reply's sources, kept with it for history. A path without files costs nothing here.
        context, sources = self.attachments.context(state.owner_id, turn.history, context, model,
                                                    conversation.get("project_id"))
        if sources:
            self.store.save_sources(turn.reply["id"], sources)
        self.pump.start(state.owner_id, {**turn.reply, "sources": sources}, conversation, context, model,
                        user_id=state.user_id, options=stream_options(settings))

    def join_conversation(self, sid: str, state: SocketState, conversation_id: str) -> None:
        """Make the socket show `conversation_id` (room membership follows)."""
        if conversation_id != state.conversation_id:
            self.socketio.server.leave_room(sid, conversation_room(state.conversation_id))
            state.conversation_id = conversation_id
            self.socketio.server.enter_room(sid, conversation_room(conversation_id))

    @staticmethod
    def _duplicate_ack(message: dict, reply: dict | None, conversation_id: str) -> dict:
        """The ack of an already stored user message (idempotent resend)."""
        return {"ok": True, "message_id": message["id"], "reply_id": reply["id"] if reply else None,
                "conversation_id": conversation_id, "duplicate": True}


def quota_error(exc: QuotaExceeded) -> ChatError:
    """The `rate_limited` error of a spent daily allowance, with when it comes back."""
    wait = max(1.0, (exc.resets_at - datetime.now(UTC)).total_seconds())
    hours, minutes = int(wait // 3600), int(wait % 3600 // 60)
    return ChatError("rate_limited", f"You have used today's {exc.limit:,} tokens. Your allowance resets at "
                     f"{exc.resets_at:%H:%M} UTC (in {hours} h {minutes} min).", retry_after=wait, kind="quota")
