"""A small asyncio Socket.IO v5 (Engine.IO v4) client over raw websockets, cheap enough for thousands of sockets.

Only what the benchmarks need: the websocket transport (no polling), the default namespace, text packets, the
server's events, acks of our own emits, and the server's pings answered. One reader task per socket parses every
frame and timestamps it on arrival; `turn()` sends a `user_message` and waits for its reply's final `bot_message`;
`check_reply()` says whether a reply arrived whole.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, WebSocketException

PATH = "/socket.io/?EIO=4&transport=websocket"
_background: set[asyncio.Task] = set()  # tasks must be referenced until done, or the loop may drop them


class SioError(Exception):
    """A connect or a turn failed; the message says how."""


@dataclass(eq=False)
class Reply:
    """What one client received for one reply; times are time.perf_counter() at arrival."""

    reply_id: object
    sent: float = math.nan
    started: float = math.nan
    first_delta: float = math.nan
    final_at: float = math.nan
    final: dict | None = None
    finals: int = 0
    deltas: list[tuple[object, object]] = field(default_factory=list)  # (seq, text) in arrival order
    errors: list[dict] = field(default_factory=list)
    frames: int = 0  # the ack, bot_start, every bot_delta, bot_message
    nbytes: int = 0  # their websocket payloads (the text is ASCII here, so characters == bytes)
    waiter: asyncio.Future | None = None


def check_reply(reply: Reply, expected: str) -> tuple[str, str] | None:
    """None if the reply arrived whole, else (lost | duplicated | corrupted, what was wrong)."""
    if reply.errors:
        return "lost", f"error event {reply.errors[0]!r}"[:200]
    if reply.final is None:
        return "lost", "no final bot_message"
    if reply.finals > 1:
        return "duplicated", f"{reply.finals} final bot_message events"
    seqs = [seq for seq, _ in reply.deltas]
    if len(set(seqs)) != len(seqs):
        return "duplicated", f"a seq arrived twice: {seqs[:20]}"
    if sorted(seqs) != list(range(len(seqs))):
        return "lost", f"seqs not 0..n-1 without gaps: {sorted(seqs)[:20]}"
    streamed = "".join(text for _, text in sorted(reply.deltas))
    text = reply.final.get("message")
    if streamed != text:
        return "corrupted", f"deltas ({len(streamed)} chars) != final text ({len(text or '')} chars)"
    if text != expected or reply.final.get("finish_reason") != "stop":
        return "corrupted", (f"final text of {len(text or '')} chars (expected {len(expected)}), "
                             f"finish_reason={reply.final.get('finish_reason')!r}")
    return None


def backoff(attempt: int) -> float:
    """Seconds before reconnect attempt `attempt` (0, 1, ...), as socket.io-client's defaults: 1 s doubling to
    at most 5 s, each randomised by up to ±50 %."""
    delay = min(1.0 * 2**attempt, 5.0)
    rand = random.random()
    deviation = rand * 0.5 * delay
    return min(delay - deviation if int(rand * 10) % 2 == 0 else delay + deviation, 5.0)


class SioClient:
    """One Socket.IO connection to `base_url` (http://host:port); keeps the session token across reconnects."""

    def __init__(self, base_url: str, *, token: str | None = None, deflate: bool = False):
        """Prepare; nothing is opened until connect()."""
        self.url = "ws" + base_url.removeprefix("http") + PATH
        self.token = token
        self.deflate = deflate
        self.session_id: str | None = None
        self.sessions: list[str] = []  # every session_id the server gave us, in order
        self.replies: dict[object, Reply] = {}
        self.ws = None
        self.lost = asyncio.Event()
        self._acks: dict[int, asyncio.Future] = {}
        self._ack_ids = itertools.count()
        self._session: asyncio.Future | None = None
        self._reader: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        """Whether the socket is open and the server has attached it to a session."""
        return self.ws is not None and not self.lost.is_set() and self._session is not None and self._session.done()

    async def connect(self, timeout: float) -> float:
        """Open the websocket, join the default namespace with our token, wait for `session_id`; returns seconds."""
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        self._session = loop.create_future()
        self.lost = asyncio.Event()
        # Reply ids are the server's: a restarted relay counts from 1 again, so records belong to one connection.
        self.replies = {}
        try:
            async with asyncio.timeout(timeout):
                self.ws = await ws_connect(self.url, ping_interval=None, close_timeout=2, open_timeout=None,
                                           compression="deflate" if self.deflate else None, max_size=None)
                self._reader = asyncio.create_task(self._read(self.ws))
                await self._session
        except TimeoutError:
            self.abort()
            raise SioError(f"no session_id within {timeout:g} s") from None
        except (OSError, WebSocketException) as exc:
            self.abort()
            raise SioError(f"connect failed: {type(exc).__name__}: {exc}"[:200]) from None
        except SioError:
            self.abort()
            raise
        return time.perf_counter() - start

    async def turn(self, text: str, timeout: float) -> Reply:
        """Send a `user_message`, wait for its ack and its reply's final `bot_message` (or an error event)."""
        if not self.connected:
            raise SioError("not connected")
        loop = asyncio.get_running_loop()
        ack_id = next(self._ack_ids)
        ack_future = self._acks[ack_id] = loop.create_future()
        reply = None
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await self.ws.send(f"42{ack_id}" + json.dumps(["user_message", {"message": text}]))
                ack, size = await ack_future
                if not ack or not isinstance(ack[0], dict) or not ack[0].get("ok"):
                    raise SioError(f"refused: {ack!r}"[:200])
                reply = self._reply(ack[0].get("reply_id"))
                reply.sent, reply.frames, reply.nbytes = sent, reply.frames + 1, reply.nbytes + size
                if reply.final is None and not reply.errors:
                    reply.waiter = loop.create_future()
                    await reply.waiter
        except TimeoutError:
            what = "no ack" if reply is None else f"reply {reply.reply_id}: no final bot_message"
            raise SioError(f"{what} within {timeout:g} s") from None
        except ConnectionClosed:
            raise SioError("connection lost") from None
        finally:
            self._acks.pop(ack_id, None)
        return reply

    async def close(self) -> None:
        """Close the websocket politely (bounded), abort it otherwise."""
        ws, self.ws = self.ws, None
        if ws is None:
            return
        try:
            async with asyncio.timeout(3):
                await ws.close()
        except Exception:
            ws.transport.abort()
        if self._reader is not None:
            self._reader.cancel()

    def abort(self) -> None:
        """Drop the connection at once (no closing handshake)."""
        if self.ws is not None:
            self.ws.transport.abort()

    async def _read(self, ws) -> None:
        """Parse frames until the connection ends, then fail whatever still waits."""
        try:
            async for message in ws:
                self._on_frame(message)
        except ConnectionClosed:
            pass
        finally:
            self.lost.set()
            self._fail_waiters(SioError("connection lost"))

    def _fail_waiters(self, error: SioError) -> None:
        """Wake every future waiting on this connection with `error`."""
        futures = [*self._acks.values(), self._session, *(r.waiter for r in self.replies.values())]
        for future in futures:
            if future is not None and not future.done():
                future.set_exception(error)

    def _send_soon(self, text: str) -> None:
        """Send a control packet (pong, namespace connect) without blocking the reader."""
        if self.ws is None:
            return  # closing
        task = asyncio.create_task(self._send_quietly(self.ws, text))
        _background.add(task)
        task.add_done_callback(_background.discard)

    @staticmethod
    async def _send_quietly(ws, text: str) -> None:
        """Send, ignoring a connection that has just gone (the reader notices that)."""
        try:
            await ws.send(text)
        except (ConnectionClosed, OSError):
            pass

    def _on_frame(self, message: str) -> None:
        """One Engine.IO packet (the websocket transport carries one per frame)."""
        kind = message[:1]
        if kind == "4":  # a Socket.IO packet
            packet = message[1:2]
            if packet == "2":
                self._on_event(message, time.perf_counter())
            elif packet == "3":
                start = message.index("[", 2)
                future = self._acks.pop(int(message[2:start]), None)
                if future is not None and not future.done():
                    future.set_result((json.loads(message[start:]), len(message)))
            elif packet == "4":
                data = json.loads(message[2:] or "{}")
                if self._session is not None and not self._session.done():
                    self._session.set_exception(SioError(f"refused: {data.get('message', data)!r}"[:200]))
            elif packet == "1":  # the server left the namespace
                self.abort()
        elif kind == "2":  # ping → pong
            self._send_soon("3")
        elif kind == "0":  # open → join the default namespace
            self._send_soon("40" + json.dumps({"token": self.token} if self.token else {}))
        elif kind == "1":
            self.abort()

    def _on_event(self, message: str, now: float) -> None:
        """A server event `42[name, data]`: record it against its reply."""
        start = 2 if message[2:3] == "[" else message.index("[", 2)
        name, *rest = json.loads(message[start:])
        data = rest[0] if rest else None
        if name == "session_id":
            self.session_id, self.token = data.get("session_id"), data.get("token") or self.token
            self.sessions.append(self.session_id)
            if self._session is not None and not self._session.done():
                self._session.set_result(None)
            return
        reply_id = data.get("reply_id") if isinstance(data, dict) else None
        if reply_id is None:
            return  # history, conversations, the welcome bot_message
        reply = self._reply(reply_id)
        reply.frames += 1
        reply.nbytes += len(message)
        if name == "bot_delta":
            if not reply.deltas:
                reply.first_delta = now
            reply.deltas.append((data.get("seq"), data.get("text")))
        elif name == "bot_start":
            reply.started = now
        elif name == "bot_message":
            reply.finals += 1
            if reply.final is None:
                reply.final, reply.final_at = data, now
            if reply.waiter is not None and not reply.waiter.done():
                reply.waiter.set_result(None)
        elif name == "error":
            reply.errors.append(data)
            if reply.waiter is not None and not reply.waiter.done():
                reply.waiter.set_result(None)

    def _reply(self, reply_id: object) -> Reply:
        """The record of a reply (frames may arrive before the ack that names it)."""
        reply = self.replies.get(reply_id)
        if reply is None:
            reply = self.replies[reply_id] = Reply(reply_id)
        return reply
