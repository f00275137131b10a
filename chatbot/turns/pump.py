"""The stream pump: one background task per reply relays the provider's stream to the conversation's room as
coalesced, gap-free `bot_delta`s, leaves checkpoints to the batched checkpointer, and writes the final state once.

Stop has two routes: a stream running in this process is closed at once; one running elsewhere is flagged in the
registry and closed by that process's pacer.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from .. import protocol
from ..protocol import ChatError
from ..providers import UpstreamError
from ..store.usage import reply_tokens
from .checkpoints import Checkpointer, LiveReply
from .outbox import Pacer, ReplyOutbox
from .rooms import conversation_room, owner_room

log = logging.getLogger("chatbot.pump")

# A read of the upstream that took this long waited for the network, rather than finding data already buffered.
CAUGHT_UP_SECONDS = 0.001


class StreamPump:
    """Streams every reply of this process; `start` returns at once, the reply runs in a background task."""

    def __init__(self, *, store, provider, replies, socketio, settings: dict[str, Any]):
        """Wire the pump to the store, provider, reply registry and Socket.IO server."""
        self.store, self.provider, self.replies, self.socketio = store, provider, replies, socketio
        self.settings = settings
        self._streams: dict[int, Any] = {}
        self.pacer = Pacer(socketio.start_background_task, socketio.sleep, replies.stop_requested)
        self.checkpoints = Checkpointer(store, replies, socketio.start_background_task, socketio.sleep,
                                        settings["CHECKPOINT_SECONDS"])
        self.counters = {"replies_started": 0, "replies_finished": 0, "replies_failed": 0, "deltas_sent": 0}

    def in_flight(self) -> int:
        """How many replies this process is streaming now."""
        return len(self._streams)

    def start(self, owner_id: str, reply: dict, conversation: dict, context: list[dict], *,
              user_id: str | None = None) -> None:
        """Announce the reply (`bot_start`) and stream it in a background task (an account's usage is counted)."""
        self.replies.begin(reply["id"], reply["conversation_id"], owner_id)
        self.socketio.emit("bot_start", {"reply_id": reply["id"], "conversation_id": reply["conversation_id"]},
                           to=conversation_room(reply["conversation_id"]))
        self.counters["replies_started"] += 1
        live = LiveReply(reply["id"], reply["conversation_id"], owner_id, user_id=user_id)
        self.socketio.start_background_task(self._run, live, reply, conversation, context)

    def stop(self, reply_id: int) -> None:
        """Stop a reply wherever it streams: the flag for other processes, and at once if it streams here."""
        self.replies.request_stop(reply_id)
        stream = self._streams.get(reply_id)
        if stream is not None:
            stream.close()

    def _run(self, live: LiveReply, reply: dict, conversation: dict, context: list[dict]) -> None:
        """Relay one reply: coalesced deltas to the room, then its final state."""
        reply_id, room = live.reply_id, conversation_room(live.conversation_id)
        status, finish, error, stream = "complete", None, None, None

        def send(seq: int, text: str) -> None:
            self.replies.append(reply_id, seq, text)
            self.socketio.emit("bot_delta", {"reply_id": reply_id, "seq": seq, "text": text}, to=room)
            self.counters["deltas_sent"] += 1

        def on_status(fields: dict) -> None:
            self.socketio.emit("bot_status", {"reply_id": reply_id, **fields}, to=room)

        def on_retry(wait: float, reason: str) -> None:
            on_status({"status": "retrying", "retry_in": round(wait, 1)})

        box = ReplyOutbox(reply_id, send, self.settings["STREAM_WINDOW_MS"] / 1000)
        gather = box.window > 0 and not self.provider.demo
        try:
            stream = self.provider.stream(context, on_retry=on_retry, on_status=on_status)
            self._streams[reply_id] = stream
            self.pacer.watch(box, stream)
            self.checkpoints.track(live)
            deltas = iter(stream)
            while True:
                started = time.monotonic()
                delta = next(deltas, None)
                if delta is None:
                    break
                if delta.reasoning:
                    live.reasoning.append(delta.reasoning)
                # A read that had to wait means we are caught up with the upstream: send what we have, then let the
                # next window's chunks gather in the socket buffer so one wake-up reads them all.
                if delta.text:
                    live.parts.append(delta.text)
                    caught_up = time.monotonic() - started >= CAUGHT_UP_SECONDS
                    if box.add(delta.text, caught_up=caught_up) and gather:
                        self.socketio.sleep(box.window)
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
            self.checkpoints.forget(reply_id)
        box.flush()  # what arrived before a stop or failure still reaches the clients, in order
        self._finish(live, reply, conversation, status, finish, error, getattr(stream, "usage", None))

    def _finish(self, live: LiveReply, reply: dict, conversation: dict, status: str, finish: str | None,
                error: ChatError | None, usage: dict | None) -> None:
        """Store the reply's final state, publish it for resume, send the final `bot_message` and the changed
        conversation (`conversation_updated`) to the session's tabs."""
        reply_id, room, text = live.reply_id, conversation_room(live.conversation_id), live.text()
        try:
            self.store.finish_reply(reply_id, user_id=live.user_id, tokens=reply_tokens(usage, text), content=text,
                                    reasoning=live.thinking(), status=status, usage=usage, finish_reason=finish,
                                    error_code=error.code if error else None)
        except Exception:
            log.exception("reply=%s could not store its final state", reply_id)
        final = protocol.final_message({**reply, "content": text}, finish, usage)
        if error is not None:
            final["error"] = error.payload()
            self.socketio.emit("error", error.payload(reply_id=reply_id), to=room)
            self.counters["replies_failed"] += 1
        self.replies.finish(reply_id, final)
        content = f" content={text!r}" if self.settings["LOG_CONTENT"] else ""
        log.info("reply=%s conversation=%s finished status=%s finish=%s code=%s chars=%d%s", reply_id,
                 live.conversation_id, status, finish, error.code if error else "-", len(text), content)
        self.socketio.emit("bot_message", final, to=room)
        self.socketio.emit("conversation_updated", {"conversation": conversation}, to=owner_room(live.owner_id))
        self.counters["replies_finished"] += 1
