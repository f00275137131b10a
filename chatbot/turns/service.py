"""The chat service: connections (one read for a returning session), turns (one transaction before the first
upstream byte), stop, resume and paged history. The stream itself runs in the pump; edits, regenerations and
switching versions are in branches.py, conversation management and search in conversations.py.

Emits through a Socket.IO server object (`emit`, `start_background_task`, `enter_room`/`leave_room` by sid), so it
works the same under eventlet, gevent and threads, and across processes with a message queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import chatbot.protocol as protocol

from ..metrics import Metrics
from ..protocol import ChatError
from ..providers import Provider
from ..ratelimit import RateLimiter
from ..store import Store
from ..store.turns import LAST_SEEN_EVERY, first_conversation_id
from ..tools.service import ToolService
from .branches import BranchService
from .conversations import ConversationService
from .logins import LoginWatch
from .pump import StreamPump
from .registry import Replies
from .rooms import SocketState, conversation_room, owner_room
from .starter import WELCOME, TurnStarter, quota_error
from .team import TeamService
from .tooling import ToolActions

__all__ = ["STALE_REPLY_SECONDS", "WELCOME", "ChatService", "quota_error"]

log = logging.getLogger("chatbot.chat")

# A reply with no checkpoint for this long belongs to a dead process (checkpoints come every CHECKPOINT_SECONDS).
STALE_REPLY_SECONDS = 120.0




class ChatService:
    """Runs connections and turns for every socket of this process."""

    def __init__(self, *, store: Store, provider: Provider, replies: Replies, limiter: RateLimiter, socketio: Any,
                 settings: dict[str, Any], metrics: Metrics | None = None, tools: ToolService | None = None):
        """Wire the service to its store, LLM provider, reply registry, rate limiter, Socket.IO server, metrics
        and tool service; the branch, conversation and login services share its one TurnStarter."""
        self.store, self.provider, self.replies, self.limiter = store, provider, replies, limiter
        self.socketio = socketio
        self.settings = settings
        self.pump = StreamPump(store=store, provider=provider, replies=replies, socketio=socketio, settings=settings,
                               metrics=metrics, tools=tools)
        self.turns = TurnStarter(store=store, provider=provider, replies=replies, limiter=limiter, pump=self.pump,
                                 socketio=socketio, settings=settings)
        self.sockets: dict[str, SocketState] = self.turns.sockets
        self.show_reasoning = self.turns.show_reasoning
        self.conversations = ConversationService(self.turns, STALE_REPLY_SECONDS)
        self.branches = BranchService(self.turns)
        self.team = TeamService(self.turns, self.conversations)
        self.logins = LoginWatch(self.turns)
        self.attachments = self.turns.attachments
        # The tool events read and write a conversation's row: a new visitor's rows are made first.
        self.tools = ToolActions(tools, store=store, provider=provider, replies=replies, socketio=socketio,
                                 state=self.turns.saved) if tools is not None else None
        # A returning session's last-seen time is written at most this often (the idle clean-up needs no more).
        self._seen_every = min(LAST_SEEN_EVERY, timedelta(days=settings["SESSION_TTL_DAYS"]) / 4)

    @property
    def counters(self) -> dict[str, int]:
        """Reply counters of this process (started, finished, failed, deltas sent)."""
        return self.pump.counters

    def replies_in_flight(self) -> int:
        """How many replies this process is streaming now."""
        return self.pump.in_flight()

    def drain(self, seconds: float) -> int:
        """Shutting down: refuse new turns, give the replies streaming here up to `seconds` to finish, then end the
        rest as interrupted (their text so far stored and sent); return how many were interrupted."""
        return self.pump.drain(seconds)

    def probes(self) -> dict[str, Callable[[], object]]:
        """What readiness checks: the database, and Redis when the reply registry lives there."""
        probes: dict[str, Callable[[], object]] = {"database": self.store.ping}
        if hasattr(self.replies, "ping"):
            probes["redis"] = self.replies.ping
        return probes

    # ---- connections -------------------------------------------------------------------------------------

    def admit(self, ip: str) -> None:
        """Refuse a new connection when the server is full or the address connects too often."""
        if len(self.sockets) >= self.settings["MAX_CONNECTIONS"]:
            raise ChatError("rate_limited", "The server is full right now. Please try again in a minute.",
                            retry_after=60.0, kind="server_full")
        self.limiter.connection(ip)

    def connect(self, sid: str, owner_id: str | None, ip: str, *, user_id: str | None = None,
                generation: int | None = None) -> tuple[str, dict]:
        """Attach a socket to its session (a new one when `owner_id` is None or unknown).

        Returns (owner id, the `history` payload of its active conversation). A returning session with an active
        conversation costs one read; its last-seen time is written only when it is older than the throttle. A new
        one costs nothing: its rows are written when it first needs them.
        With `user_id`, the owner must be that account's space and the account active at login `generation`, checked in
        the same read (auth_required otherwise; no session is made for it).
        """
        page = self.settings["HISTORY_PAGE"]
        session = self.store.open_session(owner_id, page, user_id=user_id) if owner_id else None
        if user_id is not None and (session is None or session.user != ("active", generation)):
            raise ChatError("auth_required")
        unsaved = session is None
        if unsaved:
            # A new visitor: its rows are written at its first message or change (TurnStarter.saved), so a
            # connect costs the store nothing and never waits behind the turns writing to it.
            owner_id, messages, more = owner_id or uuid.uuid4().hex, [], False
            conversation_id = first_conversation_id(owner_id)
        else:
            conversation_id, messages, more = session.conversation_id, session.messages, session.more
            if conversation_id is None:  # its active conversation was deleted: start a fresh one
                conversation_id = self.store.create_conversation(owner_id)["id"]
                self.store.set_active_conversation(owner_id, conversation_id)
            elif session.last_seen_at < datetime.now(UTC) - self._seen_every:
                self.store.touch_owner_if_before(owner_id, datetime.now(UTC) - self._seen_every)
        self.sockets[sid] = SocketState(owner_id, conversation_id, ip, user_id, generation, unsaved)
        self.socketio.server.enter_room(sid, owner_room(owner_id))
        self.socketio.server.enter_room(sid, conversation_room(conversation_id))
        return owner_id, protocol.history(conversation_id, messages, more, reasoning=self.show_reasoning)

    def disconnect(self, sid: str) -> None:
        """Forget a socket; its replies keep streaming and are stored."""
        self.turns.forget(sid)

    def state(self, sid: str) -> SocketState:
        """The socket's state (raises session_not_found for a socket that never connected properly)."""
        return self.turns.state(sid)

    def send_history(self, sid: str, history: dict) -> None:
        """Send a socket the conversation it shows (`history`), and the welcome when it is empty."""
        self.turns.send_history(sid, history)

    def load_more(self, sid: str, conversation_id: str, before_id: int | None) -> dict:
        """Older messages of one of the session's conversations (history is paged); returns the ack."""
        state = self.state(sid)
        messages, more = self.store.message_page(state.owner_id, conversation_id, before_id,
                                                 self.settings["HISTORY_PAGE"])
        return {"ok": True, "conversation_id": conversation_id,
                "messages": [protocol.wire_message(m, reasoning=self.show_reasoning) for m in messages], "more": more}

    # ---- turns -------------------------------------------------------------------------------------------

    def user_message(self, sid: str, text: str, conversation_id: str | None, client_id: str | None,
                     attachments: list[str] | None = None) -> dict:
        """Store a user message (with the files it carries) and start its reply in one transaction (a new visitor's
        rows too); returns the ack. Files are checked before anything is stored (a refusal leaves nothing behind)."""
        state = self.state(sid)
        conversation_id = conversation_id or state.conversation_id
        files = self.turns.check_files(state, conversation_id, attachments)
        turn, ack = self.turns.take_turn(sid, state, conversation_id, text, client_id)
        if turn is not None:
            self.attachments.attach(state.owner_id, turn, files)
            self.socketio.emit("user_message_echo", {"conversation_id": conversation_id,
                                                     "message": protocol.wire_message(turn.message)},
                               to=conversation_room(conversation_id), skip_sid=sid)
            self.turns.start_reply(state, turn)
        return ack

    def stop(self, sid: str, reply_id: int | None) -> dict:
        """Stop a reply in flight (the socket's conversation's, when no id is given)."""
        return self.turns.stop(sid, reply_id)

    def resume(self, sid: str, reply_id: int, after_seq: int, after_reasoning_seq: int = -1,
               after_tool_seq: int = -1) -> dict:
        """Re-send a reply's reasoning after `after_reasoning_seq`, tool steps after `after_tool_seq` and deltas after
        `after_seq` (and its final message when done) to one socket."""
        state = self.state(sid)
        owner = self.replies.owner_of(reply_id)
        # Join the room before reading the log: a delta sent meanwhile then arrives live (the client drops repeats).
        if owner is not None and owner[0] == state.owner_id:
            self.turns.join_conversation(sid, state, owner[1])
        known = self.replies.since(reply_id, after_seq) if owner and owner[0] == state.owner_id else None
        if known is not None:
            deltas, final = known
            reasoning = self.replies.since(reply_id, after_reasoning_seq, "reasoning") if self.show_reasoning else None
            for offset, text in enumerate(reasoning[0] if reasoning else []):
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
