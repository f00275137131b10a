"""The chat service: connections (one read for a returning session), turns (one transaction before the first
upstream byte), stop, resume and paged history. The stream itself runs in the pump; edits, regenerations and
switching versions are in branches.py, conversation management and search in conversations.py.

Emits through a Socket.IO server object (`emit`, `start_background_task`, `enter_room`/`leave_room` by sid), so it
works the same under eventlet, gevent and threads, and across processes with a message queue.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import chatbot.protocol as protocol

from ..protocol import ChatError
from ..store.turns import LAST_SEEN_EVERY, NotEditable, NothingToRegenerate, TurnStart
from ..store.usage import QuotaExceeded
from .branches import BranchService
from .context import CONTEXT_MESSAGES, build_context
from .conversations import ConversationService
from .logins import LoginWatch
from .pump import StreamPump
from .rooms import SocketState, conversation_room, owner_room
from .tooling import ToolActions

log = logging.getLogger("chatbot.chat")

# A reply with no checkpoint for this long belongs to a dead process (checkpoints come every CHECKPOINT_SECONDS).
STALE_REPLY_SECONDS = 120.0

WELCOME = "Hi there! I'm ChatbotWS. Ask me anything — I answer as I think, word by word."


class ChatService:
    """Runs connections and turns for every socket of this process."""

    def __init__(self, *, store, provider, replies, limiter, socketio, settings: dict[str, Any], metrics=None,
                 tools=None):
        """Wire the service to its store, LLM provider, reply registry, rate limiter, Socket.IO server, metrics
        and tool service."""
        self.store, self.provider, self.replies, self.limiter = store, provider, replies, limiter
        self.socketio = socketio
        self.settings = settings
        self.sockets: dict[str, SocketState] = {}
        self.pump = StreamPump(store=store, provider=provider, replies=replies, socketio=socketio, settings=settings,
                               metrics=metrics, tools=tools)
        self.tools = ToolActions(tools, store=store, provider=provider, replies=replies, socketio=socketio,
                                 state=self.state) if tools is not None else None
        self.show_reasoning = settings.get("SHOW_REASONING", True)
        self.conversations = ConversationService(self, STALE_REPLY_SECONDS)
        self.branches = BranchService(self)
        self.logins = LoginWatch(self)
        # A returning session's last-seen time is written at most this often (the idle clean-up needs no more).
        self._seen_every = min(LAST_SEEN_EVERY, timedelta(days=settings["SESSION_TTL_DAYS"]) / 4)

    @property
    def counters(self) -> dict[str, int]:
        """Reply counters of this process (started, finished, failed, deltas sent)."""
        return self.pump.counters

    def replies_in_flight(self) -> int:
        """How many replies this process is streaming now."""
        return self.pump.in_flight()

    # ---- connections -------------------------------------------------------------------------------------

    def admit(self, ip: str) -> None:
        """Refuse a new connection when the server is full or the address connects too often."""
        if len(self.sockets) >= self.settings["MAX_CONNECTIONS"]:
            raise ChatError("rate_limited", "The server is full right now. Please try again in a minute.",
                            retry_after=60.0, kind="server_full")
        self.limiter.connection(ip)

    def connect(self, sid: str, owner_id: str | None, ip: str, *, user_id: str | None = None,
                version: int | None = None) -> tuple[str, dict]:
        """Attach a socket to its session (a new one when `owner_id` is None or unknown).

        Returns (owner id, the `history` payload of its active conversation). A returning session with an active
        conversation costs one read; its last-seen time is written only when it is older than the throttle.
        With `user_id`, the owner must be that account's space and the account active at `version`, checked in
        the same read (auth_required otherwise; no session is made for it).
        """
        page = self.settings["HISTORY_PAGE"]
        session = self.store.open_session(owner_id, page, user_id=user_id) if owner_id else None
        if user_id is not None and (session is None or session.user != ("active", version)):
            raise ChatError("auth_required")
        if session is None:
            owner_id, conversation = self.store.create_session(owner_id)
            conversation_id, messages, more = conversation["id"], [], False
        else:
            conversation_id, messages, more = session.conversation_id, session.messages, session.more
            if conversation_id is None:  # its active conversation was deleted: start a fresh one
                conversation_id = self.store.create_conversation(owner_id)["id"]
                self.store.set_active_conversation(owner_id, conversation_id)
            elif session.last_seen_at < datetime.now(UTC) - self._seen_every:
                self.store.touch_owner_if_before(owner_id, datetime.now(UTC) - self._seen_every)
        self.sockets[sid] = SocketState(owner_id, conversation_id, ip, user_id, version)
        self.socketio.server.enter_room(sid, owner_room(owner_id))
        self.socketio.server.enter_room(sid, conversation_room(conversation_id))
        return owner_id, protocol.history(conversation_id, messages, more, reasoning=self.show_reasoning)

    def disconnect(self, sid: str) -> None:
        """Forget a socket; its replies keep streaming and are stored."""
        self.sockets.pop(sid, None)

    def state(self, sid: str) -> SocketState:
        """The socket's state (raises session_not_found for a socket that never connected properly)."""
        state = self.sockets.get(sid)
        if state is None:
            raise ChatError("session_not_found")
        return state

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

    def load_more(self, sid: str, conversation_id: str, before_id: int | None) -> dict:
        """Older messages of one of the session's conversations (history is paged); returns the ack."""
        state = self.state(sid)
        messages, more = self.store.message_page(state.owner_id, conversation_id, before_id,
                                                 self.settings["HISTORY_PAGE"])
        return {"ok": True, "conversation_id": conversation_id,
                "messages": [protocol.wire_message(m, reasoning=self.show_reasoning) for m in messages], "more": more}

    # ---- turns -------------------------------------------------------------------------------------------

    def user_message(self, sid: str, text: str, conversation_id: str | None, client_id: str | None) -> dict:
        """Store a user message and start its reply in one transaction; returns the ack."""
        state = self.state(sid)
        conversation_id = conversation_id or state.conversation_id
        turn, ack = self.take_turn(sid, state, conversation_id, text, client_id)
        if turn is not None:
            self.socketio.emit("user_message_echo", {"conversation_id": conversation_id,
                                                     "message": protocol.wire_message(turn.message)},
                               to=conversation_room(conversation_id), skip_sid=sid)
            self.start_reply(state, turn)
        return ack

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
        turn = self.begin_claimed(state, conversation_id, lambda quota: self.store.begin_turn(
            state.owner_id, conversation_id, text, client_id=client_id, context_limit=CONTEXT_MESSAGES,
            edit_of=edit_of, page_size=None if edit_of is None else self.settings["HISTORY_PAGE"], quota=quota))
        if turn.duplicate:
            self.replies.release(conversation_id, state.owner_id)
            return None, self._duplicate_ack(turn.message, turn.reply, conversation_id)
        self.limiter.count_message(state.owner_id, state.ip)
        self.join_conversation(sid, state, conversation_id)
        return turn, {"ok": True, "message_id": turn.message["id"], "reply_id": turn.reply["id"],
                      "conversation_id": conversation_id}

    def begin_claimed(self, state: SocketState, conversation_id: str, begin) -> TurnStart:
        """Check the message limits and begin a turn in a conversation this socket has claimed (`begin(quota)`
        calls the store); the claim is released, and the store's refusal told in the protocol's words, on failure."""
        try:
            # Checked once the conversation is free (a message refused as busy costs no budget), counted once stored.
            self.limiter.check_message(state.owner_id, state.ip)
            return begin(None if state.user_id is None else self.settings["USER_DAILY_TOKENS"])
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

    def resume(self, sid: str, reply_id: int, after_seq: int, after_reasoning_seq: int = -1,
               after_tool_seq: int = -1) -> dict:
        """Re-send a reply's thinking after `after_reasoning_seq`, tool steps after `after_tool_seq` and deltas after
        `after_seq` (and its final message when done) to one socket."""
        state = self.state(sid)
        owner = self.replies.owner_of(reply_id)
        # Join the room before reading the log: a delta sent meanwhile then arrives live (the client drops repeats).
        if owner is not None and owner[0] == state.owner_id:
            self.join_conversation(sid, state, owner[1])
        known = self.replies.since(reply_id, after_seq) if owner and owner[0] == state.owner_id else None
        if known is not None:
            deltas, final = known
            thinking = self.replies.since(reply_id, after_reasoning_seq, "reasoning") if self.show_reasoning else None
            for offset, text in enumerate(thinking[0] if thinking else []):
                self.socketio.emit("bot_reasoning", {"reply_id": reply_id, "seq": after_reasoning_seq + 1 + offset,
                                                     "text": text}, to=sid)
            if self.tools is not None:
                self.tools.resume(sid, reply_id, after_tool_seq)
            for offset, text in enumerate(deltas):
                self.socketio.emit("bot_delta", {"reply_id": reply_id, "seq": after_seq + 1 + offset,
                                                 "text": text}, to=sid)
            if final is not None:
                self.socketio.emit("bot_message", final, to=sid)
            return {"ok": True, "done": final is not None}
        message = self.store.get_message(state.owner_id, reply_id)  # NotFound for foreign or unknown ids
        if message["role"] != "assistant":
            raise ChatError("not_found")
        finish = message["finish_reason"] or ("interrupted" if message["status"] != "complete" else "stop")
        self.socketio.emit("bot_message", protocol.final_message(message, finish, reasoning=self.show_reasoning),
                           to=sid)
        return {"ok": True, "done": True}

    # ---- shared with conversation management -------------------------------------------------------------

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
        context = build_context(self.settings["SYSTEM_PROMPT"], turn.history, self.settings["HISTORY_CHAR_BUDGET"])
        self.pump.start(state.owner_id, turn.reply, turn.conversation, context,
                        turn.conversation.get("model") or self.provider.model, user_id=state.user_id)

    def join_conversation(self, sid: str, state: SocketState, conversation_id: str) -> None:
        """Make the socket show `conversation_id` (room membership follows)."""
        if conversation_id != state.conversation_id:
            self.socketio.server.leave_room(sid, conversation_room(state.conversation_id))
            state.conversation_id = conversation_id
            self.socketio.server.enter_room(sid, conversation_room(conversation_id))

    # ---- internals ---------------------------------------------------------------------------------------

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
