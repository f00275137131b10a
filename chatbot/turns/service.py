"""The chat service: one turn = store the user message -> build context -> stream the reply -> store the reply.

Also the per-socket view (which conversation a tab shows), stop, regenerate, resume and conversation management.
Emits through a Socket.IO server object (`emit`, `start_background_task`, `enter_room`/`leave_room` by sid), so it
works the same under eventlet, gevent and threads, and across processes with a message queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..protocol import ChatError
from ..providers import UpstreamError
from .outbox import Pacer, ReplyOutbox

log = logging.getLogger("chatbot.chat")

# A reply with no checkpoint for this long belongs to a dead process (checkpoints come every CHECKPOINT_SECONDS).
STALE_REPLY_SECONDS = 120.0
# Newest messages read to build a turn's context (HISTORY_CHAR_BUDGET then decides how many are sent).
CONTEXT_MESSAGES = 200
# A read of the upstream that took this long waited for the network, rather than finding data already buffered.
CAUGHT_UP_SECONDS = 0.001

WELCOME = "Hi there! I'm ChatbotWS. Ask me anything — I answer as I think, word by word."


@dataclass
class SocketState:
    """What the server knows about one connected socket."""

    owner_id: str
    conversation_id: str
    ip: str


def conversation_room(conversation_id: str) -> str:
    """The room of every socket showing a conversation."""
    return f"c:{conversation_id}"


def owner_room(owner_id: str) -> str:
    """The room of every socket of a session."""
    return f"o:{owner_id}"


def build_context(system_prompt: str, history: list[dict], budget: int) -> list[dict]:
    """System prompt + the newest turns whose text fits in `budget` characters (the latest is always kept)."""
    turns: list[dict] = []
    used = 0
    for message in reversed(history):
        if message["status"] == "streaming" or not message["content"]:
            continue
        size = len(message["content"])
        if turns and used + size > budget:
            break
        turns.append({"role": message["role"], "content": message["content"]})
        used += size
    turns.reverse()
    return [{"role": "system", "content": system_prompt}, *turns]


def _now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


class ChatService:
    """Runs turns and conversations for every socket of this process."""

    def __init__(self, *, store, provider, replies, limiter, socketio, settings: dict[str, Any]):
        """Wire the service to its store, LLM provider, reply registry, rate limiter and Socket.IO server."""
        self.store, self.provider, self.replies, self.limiter = store, provider, replies, limiter
        self.socketio = socketio
        self.settings = settings
        self.sockets: dict[str, SocketState] = {}
        self._streams: dict[int, Any] = {}
        self.pacer = Pacer(socketio.start_background_task, socketio.sleep, replies.stop_requested)
        self.counters = {"replies_started": 0, "replies_finished": 0, "replies_failed": 0, "deltas_sent": 0}

    def replies_in_flight(self) -> int:
        """How many replies this process is streaming now."""
        return len(self._streams)

    # ---- connections -------------------------------------------------------------------------------------

    def admit(self, ip: str) -> None:
        """Refuse a new connection when the server is full or the address connects too often."""
        if len(self.sockets) >= self.settings["MAX_CONNECTIONS"]:
            raise ChatError("rate_limited", "The server is full right now. Please try again in a minute.",
                            retry_after=60.0)
        self.limiter.connection(ip)

    def connect(self, sid: str, owner_id: str | None, ip: str) -> str:
        """Attach a socket to its session (a new one when `owner_id` is None or unknown); returns the owner id."""
        if owner_id is None or not self.store.owner_exists(owner_id):
            owner_id = self.store.create_owner(owner_id)
        else:
            self.store.touch_owner(owner_id)
        conversation_id = self.store.get_active_conversation(owner_id)
        if conversation_id is None:
            conversation_id = self.store.create_conversation(owner_id)["id"]
            self.store.set_active_conversation(owner_id, conversation_id)
        self.sockets[sid] = SocketState(owner_id, conversation_id, ip)
        self.socketio.server.enter_room(sid, owner_room(owner_id))
        self.socketio.server.enter_room(sid, conversation_room(conversation_id))
        return owner_id

    def disconnect(self, sid: str) -> None:
        """Forget a socket; its replies keep streaming and are stored."""
        self.sockets.pop(sid, None)

    def state(self, sid: str) -> SocketState:
        """The socket's state (raises session_not_found for a socket that never connected properly)."""
        state = self.sockets.get(sid)
        if state is None:
            raise ChatError("session_not_found")
        return state

    def send_view(self, sid: str) -> None:
        """Send a socket the conversation it shows (`history`, welcome if empty) and the conversation list."""
        state = self.state(sid)
        messages = self.store.list_messages(state.owner_id, state.conversation_id)
        self.socketio.emit("history", {"conversation_id": state.conversation_id,
                                       "messages": [self._wire_message(m) for m in messages]}, to=sid)
        if not messages:
            self.socketio.emit("bot_message", self._welcome(state.conversation_id), to=sid)
        self.socketio.emit("conversations", self._conversation_list(state.owner_id), to=sid)

    # ---- turns -------------------------------------------------------------------------------------------

    def user_message(self, sid: str, text: str, conversation_id: str | None, client_id: str | None) -> dict:
        """Store a user message and start its reply; returns the ack."""
        state = self.state(sid)
        if conversation_id and conversation_id != state.conversation_id:
            self._switch(sid, state, conversation_id)
        conversation_id = state.conversation_id
        if client_id:
            existing = self.store.find_client_message(state.owner_id, conversation_id, client_id)
            if existing is not None:
                return self._ack(existing, conversation_id)
        self._reserve(state, conversation_id)
        try:
            # Counted only once the conversation is free: a message refused as busy costs no budget.
            self.limiter.message(state.owner_id, state.ip)
            message, created = self.store.add_message(state.owner_id, conversation_id, "user", text,
                                                      client_id=client_id)
            if not created:
                self.replies.release(conversation_id, state.owner_id)
                return self._ack(message, conversation_id)
            reply = self._begin_reply(state.owner_id, conversation_id)
        except Exception:
            self.replies.release(conversation_id, state.owner_id)
            raise
        self.socketio.emit("user_message_echo", {"conversation_id": conversation_id,
                                                 "message": self._wire_message(message)},
                           to=conversation_room(conversation_id), skip_sid=sid)
        return {"ok": True, "message_id": message["id"], "reply_id": reply["id"], "conversation_id": conversation_id}

    def regenerate(self, sid: str, conversation_id: str | None) -> dict:
        """Replace the last reply of a conversation with a new one; returns the ack."""
        state = self.state(sid)
        conversation_id = conversation_id or state.conversation_id
        last = self.store.list_messages(state.owner_id, conversation_id, limit=1)
        if not last or last[0]["role"] != "assistant":
            raise ChatError("invalid_message", "There is no reply to regenerate yet.")
        self._reserve(state, conversation_id)
        try:
            self.limiter.message(state.owner_id, state.ip)  # each regeneration is one more upstream request
            self.store.delete_message(state.owner_id, last[0]["id"])
            reply = self._begin_reply(state.owner_id, conversation_id, announce_history=True)
        except Exception:
            self.replies.release(conversation_id, state.owner_id)
            raise
        return {"ok": True, "reply_id": reply["id"], "conversation_id": conversation_id}

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
        self.replies.request_stop(reply_id)
        stream = self._streams.get(reply_id)
        if stream is not None:
            stream.close()
        return {"ok": True, "stopped": True}

    def resume(self, sid: str, reply_id: int, after_seq: int) -> dict:
        """Re-send a reply's deltas after `after_seq` (and its final message when done) to one socket."""
        state = self.state(sid)
        owner = self.replies.owner_of(reply_id)
        # Join the room before reading the log: a delta sent meanwhile then arrives live (the client drops repeats).
        if owner is not None and owner[0] == state.owner_id:
            self._join_conversation(sid, state, owner[1])
        known = self.replies.since(reply_id, after_seq) if owner and owner[0] == state.owner_id else None
        if known is not None:
            deltas, final = known
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
        self.socketio.emit("bot_message", self._final(message, finish), to=sid)
        return {"ok": True, "done": True}

    # ---- conversations -----------------------------------------------------------------------------------

    def list_conversations(self, sid: str) -> dict:
        """The session's conversations, newest first."""
        return {"ok": True, **self._conversation_list(self.state(sid).owner_id)}

    def new_conversation(self, sid: str) -> dict:
        """Create a conversation and show it in this socket."""
        state = self.state(sid)
        self.limiter.action(state.owner_id)
        conversation = self.store.create_conversation(state.owner_id)
        self._switch(sid, state, conversation["id"])
        self.send_view(sid)
        self._conversations_changed(state.owner_id)
        return {"ok": True, "conversation": conversation}

    def open_conversation(self, sid: str, conversation_id: str) -> dict:
        """Show another of the session's conversations in this socket."""
        state = self.state(sid)
        conversation = self.store.get_conversation(state.owner_id, conversation_id)
        self._switch(sid, state, conversation_id)
        self.send_view(sid)
        return {"ok": True, "conversation": conversation}

    def rename_conversation(self, sid: str, conversation_id: str, title: str) -> dict:
        """Rename one of the session's conversations."""
        state = self.state(sid)
        self.limiter.action(state.owner_id)
        conversation = self.store.rename_conversation(state.owner_id, conversation_id, title)
        self._conversations_changed(state.owner_id)
        return {"ok": True, "conversation": conversation}

    def delete_conversation(self, sid: str, conversation_id: str) -> dict:
        """Delete one of the session's conversations (stopping its reply); sockets showing it move on."""
        state = self.state(sid)
        self.limiter.action(state.owner_id)
        self.store.get_conversation(state.owner_id, conversation_id)
        active = self.replies.active(conversation_id)
        if active is not None:
            self.stop(sid, active)
        self.store.delete_conversation(state.owner_id, conversation_id)
        remaining = self.store.list_conversations(state.owner_id, limit=1)
        fallback = remaining[0]["id"] if remaining else self.store.create_conversation(state.owner_id)["id"]
        if self.store.get_active_conversation(state.owner_id) in (None, conversation_id):
            self.store.set_active_conversation(state.owner_id, fallback)
        for other_sid, other in list(self.sockets.items()):
            if other.owner_id == state.owner_id and other.conversation_id == conversation_id:
                self._switch(other_sid, other, fallback)
                self.send_view(other_sid)
        self._conversations_changed(state.owner_id)
        return {"ok": True}

    def cleanup(self) -> int:
        """Delete sessions idle longer than SESSION_TTL_DAYS, with all their data; returns how many."""
        deleted = self.store.delete_idle_owners(self.settings["SESSION_TTL_DAYS"] * 86400)
        if deleted:
            log.info("cleanup deleted=%d idle sessions", deleted)
        return deleted

    def maintenance_loop(self) -> None:
        """Forever: delete idle sessions every CLEANUP_INTERVAL seconds (run as a background task)."""
        while True:
            try:
                self.cleanup()
                if self.settings["REDIS_URL"]:
                    # Replies of a process that died while others live on: no checkpoint for a long while.
                    self.store.interrupt_streaming(stale_after=STALE_REPLY_SECONDS)
            except Exception:
                log.exception("cleanup failed")
            self.socketio.sleep(self.settings["CLEANUP_INTERVAL"])

    # ---- internals ---------------------------------------------------------------------------------------

    def _reserve(self, state: SocketState, conversation_id: str) -> None:
        """Claim the conversation for one reply, or refuse with busy / rate_limited."""
        refused = self.replies.reserve(conversation_id, state.owner_id, self.settings["MAX_CONCURRENT_REPLIES"])
        if refused == "busy":
            raise ChatError("busy")
        if refused:
            raise ChatError("rate_limited", "Too many replies are being written for you at once. "
                            "Wait for one to finish.", retry_after=1.0)

    def _begin_reply(self, owner_id: str, conversation_id: str, *, announce_history: bool = False) -> dict:
        """Create the streaming reply row, announce it and start streaming it in a background task."""
        # The context needs only the newest turns; a regenerate re-sends the whole history to the tabs.
        history = self.store.list_messages(owner_id, conversation_id,
                                           limit=None if announce_history else CONTEXT_MESSAGES)
        context = build_context(self.settings["SYSTEM_PROMPT"], history, self.settings["HISTORY_CHAR_BUDGET"])
        reply, _ = self.store.add_message(owner_id, conversation_id, "assistant", "", status="streaming")
        reply["owner_id"] = owner_id
        self.replies.begin(reply["id"], conversation_id, owner_id)
        room = conversation_room(conversation_id)
        if announce_history:
            self.socketio.emit("history", {"conversation_id": conversation_id,
                                           "messages": [self._wire_message(m) for m in [*history, reply]]}, to=room)
        self.socketio.emit("bot_start", {"reply_id": reply["id"], "conversation_id": conversation_id}, to=room)
        self.counters["replies_started"] += 1
        self.socketio.start_background_task(self._stream_reply, reply, context)
        return reply

    def _stream_reply(self, reply: dict, context: list[dict]) -> None:
        """Stream one reply: coalesced deltas to the conversation's room, checkpoints to the store, final message."""
        reply_id, room = reply["id"], conversation_room(reply["conversation_id"])
        checkpoint_every = self.settings["CHECKPOINT_SECONDS"]
        parts: list[str] = []
        reasoning: list[str] = []
        status, finish, error, stream = "complete", None, None, None

        def send(seq: int, text: str) -> None:
            self.replies.append(reply_id, seq, text)
            self.socketio.emit("bot_delta", {"reply_id": reply_id, "seq": seq, "text": text}, to=room)
            self.counters["deltas_sent"] += 1

        def on_retry(wait: float, reason: str) -> None:
            self.socketio.emit("bot_status", {"reply_id": reply_id, "status": "retrying",
                                              "retry_in": round(wait, 1)}, to=room)

        def on_status(fields: dict) -> None:
            self.socketio.emit("bot_status", {"reply_id": reply_id, **fields}, to=room)

        box = ReplyOutbox(reply_id, send, self.settings["STREAM_WINDOW_MS"] / 1000)
        gather = box.window > 0 and not self.provider.demo
        try:
            stream = self.provider.stream(context, on_retry=on_retry, on_status=on_status)
            self._streams[reply_id] = stream
            self.pacer.watch(box, stream)
            last_checkpoint = time.monotonic()
            deltas = iter(stream)
            while True:
                started = time.monotonic()
                delta = next(deltas, None)
                if delta is None:
                    break
                if delta.reasoning:
                    reasoning.append(delta.reasoning)
                # A read that had to wait means we are caught up with the upstream: send what we have, then let the
                # next window's chunks gather in the socket buffer so one wake-up reads them all.
                if delta.text:
                    parts.append(delta.text)
                    caught_up = time.monotonic() - started >= CAUGHT_UP_SECONDS
                    if box.add(delta.text, caught_up=caught_up) and gather:
                        self.socketio.sleep(box.window)
                if time.monotonic() - last_checkpoint >= checkpoint_every:
                    last_checkpoint = time.monotonic()
                    self.store.update_message(reply_id, content="".join(parts))
                    self.replies.heartbeat(reply_id, reply["conversation_id"])
            if self.replies.stop_requested(reply_id):
                status, finish = "stopped", "stopped"
            else:
                finish = stream.finish_reason or "stop"
        except UpstreamError as exc:
            status, finish = "error", "error"
            error = ChatError(exc.code, exc.user_message, retry_after=exc.retry_after)
            log.warning("reply=%s upstream code=%s detail=%s", reply_id, exc.code, exc.detail)
        except Exception:
            ref = uuid.uuid4().hex[:12]
            status, finish = "error", "error"
            error = ChatError("internal", f"Something went wrong on our side (reference {ref}).")
            log.exception("reply=%s ref=%s failed", reply_id, ref)
        finally:
            self._streams.pop(reply_id, None)
            self.pacer.forget(reply_id)
        box.flush()  # what arrived before a stop or failure still reaches the clients, in order
        self._finish_reply(reply, room, "".join(parts), "".join(reasoning) or None, status, finish, error,
                           getattr(stream, "usage", None))

    def _finish_reply(self, reply, room, text, reasoning, status, finish, error, usage) -> None:
        """Store the reply's final state, publish it for resume, and send the final `bot_message`."""
        reply_id = reply["id"]
        try:
            self.store.update_message(reply_id, content=text, reasoning=reasoning, status=status, usage=usage,
                                      finish_reason=finish, error_code=error.code if error else None)
        except Exception:
            log.exception("reply=%s could not store its final state", reply_id)
        final = self._final({**reply, "content": text}, finish, usage)
        if error is not None:
            final["error"] = error.payload()
            self.socketio.emit("error", error.payload(reply_id=reply_id), to=room)
            self.counters["replies_failed"] += 1
        self.replies.finish(reply_id, final)
        content = f" content={text!r}" if self.settings["LOG_CONTENT"] else ""
        log.info("reply=%s conversation=%s finished status=%s finish=%s code=%s chars=%d%s", reply_id,
                 reply["conversation_id"], status, finish, error.code if error else "-", len(text), content)
        self.socketio.emit("bot_message", final, to=room)
        try:
            # Off the turn's critical path: titles, message counts and order in every tab's sidebar.
            self._conversations_changed(reply["owner_id"])
        except Exception:
            log.exception("reply=%s could not refresh the conversation list", reply_id)
        self.counters["replies_finished"] += 1

    def _switch(self, sid: str, state: SocketState, conversation_id: str) -> None:
        """Move a socket to another of its session's conversations (and make it the session's active one)."""
        self.store.set_active_conversation(state.owner_id, conversation_id)  # NotFound for a foreign id
        self._join_conversation(sid, state, conversation_id)

    def _join_conversation(self, sid: str, state: SocketState, conversation_id: str) -> None:
        """Make the socket show `conversation_id` (room membership follows)."""
        if conversation_id != state.conversation_id:
            self.socketio.server.leave_room(sid, conversation_room(state.conversation_id))
            state.conversation_id = conversation_id
            self.socketio.server.enter_room(sid, conversation_room(conversation_id))

    def _conversations_changed(self, owner_id: str) -> None:
        """Tell every socket of the session that its conversation list changed."""
        self.socketio.emit("conversations", self._conversation_list(owner_id), to=owner_room(owner_id))

    def _conversation_list(self, owner_id: str) -> dict:
        """The `conversations` payload."""
        return {"conversations": self.store.list_conversations(owner_id),
                "active_id": self.store.get_active_conversation(owner_id)}

    def _ack(self, message: dict, conversation_id: str) -> dict:
        """The ack of an already stored user message (idempotent resend)."""
        reply = self.store.reply_after(message["id"])
        return {"ok": True, "message_id": message["id"], "reply_id": reply["id"] if reply else None,
                "conversation_id": conversation_id, "duplicate": True}

    def _welcome(self, conversation_id: str) -> dict:
        """The welcome `bot_message` of an empty conversation (not stored)."""
        now = _now()
        text = WELCOME + (f" ({self.provider.notice})" if self.provider.notice else "")
        return {"message": text, "timestamp": now.strftime("%H:%M"), "created_at": now.isoformat(),
                "conversation_id": conversation_id, "welcome": True}

    @staticmethod
    def _final(message: dict, finish_reason: str | None, usage: dict | None = None) -> dict:
        """The final `bot_message` of a reply."""
        created = datetime.fromisoformat(message["created_at"])
        return {"message": message["content"], "timestamp": created.strftime("%H:%M"),
                "created_at": message["created_at"], "conversation_id": message["conversation_id"],
                "reply_id": message["id"], "message_id": message["id"], "finish_reason": finish_reason,
                "usage": usage if usage is not None else message.get("usage")}

    @staticmethod
    def _wire_message(message: dict) -> dict:
        """A stored message as the `history` event shows it (a streaming reply is resumed, not shown)."""
        data = {key: message[key] for key in ("id", "role", "content", "created_at", "status")}
        if message["role"] == "assistant":
            data["reply_id"] = message["id"]
            if message["status"] == "streaming":
                data["content"] = ""
        if message.get("client_id"):
            data["client_id"] = message["client_id"]
        return data
