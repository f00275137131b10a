"""The stream pump: one background task per reply relays the provider's stream to the conversation's room as
coalesced, gap-free `bot_delta`s, leaves checkpoints to the batched checkpointer, and writes the final state once.

Stop has two routes: a stream running in this process is closed at once; one running elsewhere is flagged in the
registry and closed by that process's pacer. At shutdown (`drain`) the replies still streaming after a grace period
end as `interrupted`, with their text so far stored and sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import chatbot.protocol as protocol

from ..protocol import ChatError
from ..providers import StreamOptions, UpstreamError
from ..providers.base import output_tokens_per_second
from ..store.usage import reply_tokens
from .checkpoints import Checkpointer, LiveReply
from .outbox import Pacer, ReplyOutbox
from .rooms import conversation_room, owner_room
from .tooling import ReplySteps

log = logging.getLogger("chatbot.pump")

# A read of the upstream that took this long waited for the network, rather than finding data already buffered.
CAUGHT_UP_SECONDS = 0.001


class StreamPump:
    """Streams every reply of this process; `start` returns at once, the reply runs in a background task."""

    def __init__(self, *, store, provider, replies, socketio, settings: dict[str, Any], metrics=None, tools=None):
        """Wire the pump to the store, provider, reply registry, Socket.IO server, (optional) metrics and tool
        service."""
        self.store, self.provider, self.replies, self.socketio = store, provider, replies, socketio
        self.settings, self.metrics, self.tools = settings, metrics, tools
        self.show_reasoning = settings.get("SHOW_REASONING", True)
        self._streams: dict[int, Any] = {}
        self.pacer = Pacer(socketio.start_background_task, socketio.sleep, replies.stop_requested)
        self.checkpoints = Checkpointer(store, replies, socketio.start_background_task, socketio.sleep,
                                        settings["CHECKPOINT_SECONDS"])
        self.counters = {"replies_started": 0, "replies_finished": 0, "replies_failed": 0, "deltas_sent": 0}
        self.closing = False  # shutting down: no new replies
        self._interrupting = False  # the grace period is over: every stream here ends as interrupted

    def in_flight(self) -> int:
        """How many replies this process is streaming now."""
        return len(self._streams)

    def start(self, owner_id: str, reply: dict, conversation: dict, context: list[dict], model: str, *,
              user_id: str | None = None, options: StreamOptions | None = None) -> None:
        """Announce the reply (`bot_start`) and stream it with `model` in a background task (an account's usage
        is counted at its final write)."""
        self.replies.begin(reply["id"], reply["conversation_id"], owner_id)
        self.socketio.emit("bot_start", {"reply_id": reply["id"], "conversation_id": reply["conversation_id"],
                                         "model": model}, to=conversation_room(reply["conversation_id"]))
        self.counters["replies_started"] += 1
        live = LiveReply(reply["id"], reply["conversation_id"], owner_id, user_id=user_id)
        self.socketio.start_background_task(self._run, live, {**reply, "model": model}, conversation, context,
                                            time.monotonic(), options)

    def stop(self, reply_id: int) -> None:
        """Stop a reply wherever it streams: the flag for other processes, and at once if it streams here."""
        self.replies.request_stop(reply_id)
        stream = self._streams.get(reply_id)
        if stream is not None:
            stream.close()

    def unfinished(self) -> int:
        """How many replies this process has started and not yet finished (stored and sent)."""
        return self.counters["replies_started"] - self.counters["replies_finished"]

    def drain(self, seconds: float, interrupt_wait: float = 5.0) -> int:
        """Shutting down: let the replies streaming here finish for up to `seconds`, then close the rest, which end
        as `interrupted` with their text so far (`interrupt_wait` bounds their final writes); return how many."""
        self.closing = True
        deadline = time.monotonic() + seconds
        while self.unfinished() > 0 and time.monotonic() < deadline:
            self.socketio.sleep(0.05)
        left = self.unfinished()
        self._interrupting = True
        for stream in list(self._streams.values()):
            stream.close()
        deadline = time.monotonic() + interrupt_wait
        while self.unfinished() > 0 and time.monotonic() < deadline:
            self.socketio.sleep(0.02)
        return left

    def _outbox(self, reply_id: int, room: str, event: str, kind: str) -> ReplyOutbox:
        """A coalescing outbox whose deltas are logged for resume and emitted to the room as `event`."""

        def send(seq: int, text: str) -> None:
            self.replies.append(reply_id, seq, text, kind)
            self.socketio.emit(event, {"reply_id": reply_id, "seq": seq, "text": text}, to=room)
            self.counters["deltas_sent"] += 1

        return ReplyOutbox(reply_id, send, self.settings["STREAM_WINDOW_MS"] / 1000)

    def _run(self, live: LiveReply, reply: dict, conversation: dict, context: list[dict], started: float,
             options: StreamOptions | None = None) -> None:
        """Relay one reply: coalesced reasoning and answer deltas to the room, then its final state."""
        reply_id, room = live.reply_id, conversation_room(live.conversation_id)
        status, finish, error, stream, first = "complete", None, None, None, None

        def on_status(fields: dict) -> None:
            self.socketio.emit("bot_status", {"reply_id": reply_id, **fields}, to=room)

        def on_retry(wait: float, reason: str) -> None:
            on_status({"status": "retrying", "retry_in": round(wait, 1)})

        box = self._outbox(reply_id, room, "bot_delta", "text")
        reasoning = self._outbox(reply_id, room, "bot_reasoning", "reasoning")
        gather = box.window > 0 and not self.provider.demo
        steps = ReplySteps(reply_id, live.conversation_id, replies=self.replies, socketio=self.socketio,
                           store=self.store)
        try:
            if self.tools is not None and conversation.get("tools"):
                # A reply that may use tools is a loop of requests behind the same stream contract.
                stream = self.tools.stream(self.provider, context, model=reply["model"], enabled=conversation["tools"],
                                           reply_id=reply_id, account=live.user_id or live.owner_id,
                                           emit=steps.emit, ask=steps.ask, sleep=self.socketio.sleep,
                                           on_retry=on_retry, on_status=on_status, options=options)
            else:
                stream = self.provider.stream(context, model=reply["model"], on_retry=on_retry, on_status=on_status,
                                              options=options)
            self._streams[reply_id] = stream
            if self._interrupting:
                stream.close()  # started as the shutdown's grace period ended
            self.pacer.watch(box, stream, reasoning)
            self.checkpoints.track(live)
            deltas = iter(stream)
            while True:
                waited = time.monotonic()
                delta = next(deltas, None)
                if delta is None:
                    break
                # A read that had to wait means we are caught up with the upstream: send what we have, then let the
                # next window's chunks gather in the socket buffer so one wake-up reads them all.
                caught_up = time.monotonic() - waited >= CAUGHT_UP_SECONDS
                first = first or time.monotonic()
                sent = False
                if delta.reasoning:
                    live.reasoning_parts.append(delta.reasoning)
                    sent = self.show_reasoning and reasoning.add(delta.reasoning, caught_up=caught_up)
                if delta.text:
                    if not live.parts:
                        reasoning.flush()  # all the reasoning so far reaches the page before the answer starts
                    live.parts.append(delta.text)
                    sent = box.add(delta.text, caught_up=caught_up) or sent
                if sent and gather:
                    self.socketio.sleep(box.window)
            if self.replies.stop_requested(reply_id):
                status, finish = "stopped", "stopped"
            elif self._interrupting and stream.closed:
                status, finish = "interrupted", "interrupted"
            else:
                finish = stream.finish_reason or "stop"
        except UpstreamError as exc:
            status, finish = "error", "error"
            error = ChatError(exc.code, self._sentence(exc, reply["model"]), retry_after=exc.retry_after)
            log.warning("reply=%s upstream code=%s detail=%s", reply_id, exc.code, exc.detail)
            if self.metrics is not None:
                self.metrics.upstream_error(exc.code)
        except Exception:
            ref = uuid.uuid4().hex[:12]
            status, finish = "error", "error"
            error = ChatError("internal", f"Something went wrong on our side (reference {ref}).")
            log.exception("reply=%s ref=%s failed", reply_id, ref)
        finally:
            self._streams.pop(reply_id, None)
            self.pacer.forget(reply_id)
            self.checkpoints.forget(reply_id)
        reasoning.flush()  # what arrived before a stop or failure still reaches the clients, in order
        box.flush()
        usage = getattr(stream, "usage", None)
        speed = reply_speed(usage, started, first)
        self._finish(live, {**reply, "usage": usage, "speed": speed, "tools": steps.final()}, conversation, status,
                     finish, error)
        if self.metrics is not None:
            self.metrics.reply_finished(reply["model"], status if status != "error" else "error",
                                        speed and speed.get("ttft"), time.monotonic() - started,
                                        speed and speed.get("tokens_per_second"))
            limits = getattr(stream, "rate_limits", None) or {}
            self.metrics.upstream_ratelimit(limits.get("requests"), limits.get("tokens"))

    def _sentence(self, error: UpstreamError, model: str) -> str:
        """The user's sentence for an upstream failure; a model that went away says so and points at the picker."""
        if error.code == "model_unavailable" and model != self.provider.model:
            return (f"The model “{model}” is not available any more (the provider may have retired it). "
                    "Pick another model at the top of the chat.")
        return protocol.upstream_sentence(error.code)

    def _finish(self, live: LiveReply, reply: dict, conversation: dict, status: str, finish: str | None,
                error: ChatError | None) -> None:
        """Store the reply's final state, publish it for resume, send the final `bot_message` and the changed
        conversation (`conversation_updated`) to the session's tabs."""
        reply_id, room, text = live.reply_id, conversation_room(live.conversation_id), live.text()
        try:
            self.store.finish_reply(reply_id, user_id=live.user_id, tokens=reply_tokens(reply["usage"], text),
                                    content=text, reasoning=live.reasoning(), status=status, usage=reply["usage"],
                                    finish_reason=finish, error_code=error.code if error else None,
                                    model=reply["model"], speed=reply["speed"], tools=reply["tools"])
        except Exception:
            log.exception("reply=%s could not store its final state", reply_id)
        final = protocol.final_message({**reply, "content": text, "reasoning": live.reasoning()}, finish,
                                       reasoning=self.show_reasoning)
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


def reply_speed(usage: dict | None, started: float, first: float | None) -> dict | None:
    """{ttft, tokens_per_second} of a reply: the time to its first token as the server saw it, and the output speed
    by the upstream's own clock (Groq's completion_time), else by ours from the first token to now."""
    if first is None:
        return None
    speed = output_tokens_per_second(usage)
    if speed is None and usage and usage.get("completion_tokens") and time.monotonic() > first:
        speed = usage["completion_tokens"] / (time.monotonic() - first)
    return {"ttft": round(first - started, 3), "tokens_per_second": None if speed is None else round(speed, 1)}
