"""The scenarios of `make bench`, each run against one target (the real server or a baseline relay).

Every scenario is an async function `(ctx, target) -> list[row]`; a row is a flat dict of figures for one table line.
They talk to the target only through the wire protocol (SioClient), read CPU and RSS from /proc, and count every
reply that did not arrive whole as lost, duplicated or corrupted.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from common import cpu_pressure_seconds, cpu_seconds, own_cpu_seconds, percentile, rss_kb
from sio_client import Reply, SioClient, SioError, backoff, check_reply

CONNECT_CONCURRENCY = 32  # sockets opened at once while setting a scenario up (not measured)
STREAMS_WARMUP = 10  # clients taking the unmeasured first round of the streams scenario
IDLE_WARMUP = 20  # sockets opened before the idle scenario's first RSS reading


def reply_text(tokens: int) -> str:
    """The text the fake Groq streams for a reply of `tokens` tokens."""
    return "".join(f"tok{i} " for i in range(tokens))


@dataclass
class Problems:
    """What went wrong in one measured phase: replies lost / duplicated / corrupted, connections failed."""

    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    failures: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, note: str) -> None:
        """Count one problem and keep the first few descriptions."""
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.notes) < 5:
            self.notes.append(f"{kind}: {note}")

    def fields(self) -> dict:
        """The counts and notes, for a row."""
        return {"lost": self.lost, "duplicated": self.duplicated, "corrupted": self.corrupted,
                "failures": self.failures, "notes": list(self.notes)}


@dataclass
class Phase:
    """CPU seconds of the target, the fake Groq and the load generator over `wall` seconds, and CPU pressure."""

    wall: float
    server: float
    fake: float
    loadgen: float
    pressure: float | None

    def fields(self) -> dict:
        """The CPU shares (% of one core) for a row."""
        share = 100 / self.wall if self.wall > 0 else math.nan
        return {"wall_s": self.wall, "server_cpu_s": self.server, "server_pct": self.server * share,
                "fake_pct": self.fake * share, "loadgen_pct": self.loadgen * share,
                "pressure_pct": None if self.pressure is None else self.pressure * share}


class Meter:
    """Readings of the target's, the fake's and our own CPU at the start of a phase; stop() gives the Phase."""

    def __init__(self, server_pid: int, fake_pid: int):
        """Take the first readings now."""
        self.server_pid, self.fake_pid = server_pid, fake_pid
        self.start = self._read()

    def _read(self) -> tuple:
        """Wall clock, the three CPU counters and machine-wide CPU pressure."""
        return (time.perf_counter(), cpu_seconds(self.server_pid), cpu_seconds(self.fake_pid), own_cpu_seconds(),
                cpu_pressure_seconds())

    def stop(self) -> Phase:
        """The phase from the first readings to now."""
        end = self._read()
        pressure = None if end[4] is None or self.start[4] is None else end[4] - self.start[4]
        return Phase(end[0] - self.start[0], end[1] - self.start[1], end[2] - self.start[2],
                     end[3] - self.start[3], pressure)


def latency_fields(prefix: str, values_ms: list[float]) -> dict:
    """p50 and p99 of a list of milliseconds."""
    return {f"{prefix}_p50": percentile(values_ms, 50), f"{prefix}_p99": percentile(values_ms, 99)}


async def connect_all(ctx, url: str, count: int, problems: Problems) -> list[SioClient]:
    """Open `count` sessions, at most CONNECT_CONCURRENCY at a time; failures are counted, not raised."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> SioClient | None:
        client = SioClient(url, deflate=ctx.args.deflate)
        async with gate:
            try:
                await client.connect(ctx.args.connect_timeout)
            except SioError as exc:
                problems.add("failures", str(exc))
                return None
        return client

    return [c for c in await asyncio.gather(*(one() for _ in range(count))) if c is not None]


async def close_all(clients: list[SioClient]) -> None:
    """Close every client (bounded per client)."""
    await asyncio.gather(*(c.close() for c in clients))


async def checked_turn(client: SioClient, text: str, expected: str, timeout: float,
                       problems: Problems) -> Reply | None:
    """One turn; the reply if it arrived whole, else None with the problem counted."""
    try:
        reply = await client.turn(text, timeout)
    except SioError as exc:
        problems.add("lost", str(exc))
        return None
    problem = check_reply(reply, expected)
    if problem is not None:
        problems.add(*problem)
        return None
    return reply


def reply_fields(replies: list[Reply]) -> dict:
    """Latency and size figures over whole replies."""
    return {
        "replies": len(replies),
        **latency_fields("first_ms", [(r.first_delta - r.sent) * 1000 for r in replies]),
        **latency_fields("full_ms", [(r.final_at - r.sent) * 1000 for r in replies]),
        "events": sum(r.frames for r in replies) / len(replies) if replies else math.nan,
        "bytes": sum(r.nbytes for r in replies) / len(replies) if replies else math.nan,
    }


async def streams(ctx, target) -> list[dict]:
    """1, 50, 100 … clients each stream one long reply at the same moment, for a few rounds per level."""
    args, expected = ctx.args, reply_text(ctx.args.tokens)
    setup = Problems()
    clients = await connect_all(ctx, target.url, max(args.streams), setup)
    rows = []
    try:
        if len(clients) < max(args.streams):
            raise RuntimeError(f"only {len(clients)} of {max(args.streams)} clients connected: {setup.notes}")
        # One unmeasured round with a few clients (a round with all of them would cost a saturated relay ~15 s):
        # the later clients take their conversation's first turn in a measured level, as new visitors do.
        warmup = Problems()
        await asyncio.gather(*(checked_turn(c, "warm-up", expected, args.timeout, warmup)
                               for c in clients[:STREAMS_WARMUP]))
        for level in args.streams:
            problems = Problems()
            rounds = args.stream_rounds.get(level, args.stream_rounds.get(0, 2))
            meter, replies = Meter(target.pid, ctx.fake_pid("streams")), []
            for number in range(rounds):
                replies += await asyncio.gather(*(
                    checked_turn(c, f"stream {number} from client {i}", expected, args.timeout, problems)
                    for i, c in enumerate(clients[:level])))
            phase = meter.stop()
            whole = [r for r in replies if r is not None]
            tokens = args.tokens * len(whole)
            rows.append({"streams": level, "rounds": rounds, **reply_fields(whole),
                         "cpu_us_token": phase.server / tokens * 1e6 if tokens else math.nan,
                         "rss_mb": rss_kb(target.pid) / 1024, **phase.fields(), **problems.fields()})
        for kind in ("lost", "duplicated", "corrupted"):
            rows[0][kind] += getattr(warmup, kind)
        rows[0]["notes"] += warmup.notes
    finally:
        await close_all(clients)
    return rows


async def turns(ctx, target) -> list[dict]:
    """N clients each take M tiny turns one after the other, all clients at once (after one unmeasured turn)."""
    args, expected = ctx.args, reply_text(ctx.args.tiny_tokens)
    setup, problems = Problems(), Problems()
    clients = await connect_all(ctx, target.url, args.turn_clients, setup)
    try:
        await asyncio.gather(*(checked_turn(c, "warm-up", expected, args.timeout, setup) for c in clients))

        async def take_turns(index: int, client: SioClient) -> list[Reply | None]:
            return [await checked_turn(client, f"turn {n} from client {index}", expected, args.timeout, problems)
                    for n in range(args.turns)]

        meter = Meter(target.pid, ctx.fake_pid("turns"))
        results = await asyncio.gather(*(take_turns(i, c) for i, c in enumerate(clients)))
        phase = meter.stop()
    finally:
        await close_all(clients)
    whole = [r for per_client in results for r in per_client if r is not None]
    for kind in ("lost", "duplicated", "corrupted", "failures"):
        setattr(problems, kind, getattr(problems, kind) + getattr(setup, kind))
    problems.notes += setup.notes
    count = len(clients) * args.turns
    return [{"clients": len(clients), "turns": args.turns, **reply_fields(whole),
             "cpu_ms_turn": phase.server / count * 1000 if count else math.nan, **phase.fields(),
             **problems.fields()}]


async def burst(ctx, target) -> list[dict]:
    """N new sessions connect, evenly spread over W seconds; time from opening the socket to `session_id`."""
    args, problems = ctx.args, Problems()
    clients = [SioClient(target.url, deflate=args.deflate) for _ in range(args.burst)]
    meter = Meter(target.pid, ctx.fake_pid("burst"))
    start = time.perf_counter()

    async def one(index: int, client: SioClient) -> float | None:
        await asyncio.sleep(max(0.0, start + index * args.burst_window / args.burst - time.perf_counter()))
        try:
            return await client.connect(args.connect_timeout)
        except SioError as exc:
            problems.add("failures", str(exc))
            return None

    try:
        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
        phase = meter.stop()
        dropped = sum(1 for c, t in zip(clients, results, strict=True) if t is not None and not c.connected)
    finally:
        await close_all(clients)
    times = [t * 1000 for t in results if t is not None]
    return [{"connections": args.burst, "window_s": args.burst_window, "connected": len(times), "dropped": dropped,
             **latency_fields("connect_ms", times), "connect_ms_max": max(times, default=math.nan),
             "cpu_ms_conn": phase.server / args.burst * 1000, **phase.fields(), **problems.fields()}]


async def idle(ctx, target) -> list[dict]:
    """Open N sessions and hold them idle: RSS and CPU per socket while connecting, then CPU while idle."""
    args, problems = ctx.args, Problems()
    count = args.idle if target.impl == "server" else args.idle_baseline
    steps = sorted({min(1000, count), count})  # RSS is read at 1,000 sockets too, for a like-for-like figure
    rss_at: dict[int, int] = {}
    # A few sockets first, held but not counted: the first connections pay for lazy imports and caches.
    warm = await connect_all(ctx, target.url, IDLE_WARMUP, Problems())
    clients: list[SioClient] = []
    base_rss = rss_kb(target.pid)
    meter = Meter(target.pid, ctx.fake_pid("idle"))
    try:
        for step in steps:
            clients += await connect_all(ctx, target.url, step - len(clients) - problems.failures, problems)
            rss_at[step] = rss_kb(target.pid)
        connecting = meter.stop()
        meter = Meter(target.pid, ctx.fake_pid("idle"))
        await asyncio.sleep(args.idle_hold)  # idle on purpose: this is the phase being measured
        holding = meter.stop()
        dropped = sum(1 for c in clients if not c.connected)
    finally:
        await close_all(clients + warm)
    problems.failures += dropped
    per_socket = {step: (rss - base_rss) / step for step, rss in rss_at.items()}
    return [{"sockets": count, "connected": len(clients) - dropped, "dropped": dropped,
             "kb_socket": per_socket[count], "kb_socket_1000": per_socket.get(1000, math.nan),
             "rss_mb": rss_at[count] / 1024, "connect_ms_socket": connecting.server / count * 1000,
             "idle_us_socket_s": holding.server / count / holding.wall * 1e6 if holding.wall else math.nan,
             "hold_s": holding.wall, **connecting.fields(), "idle_server_pct": holding.server / holding.wall * 100,
             **problems.fields()}]


async def storm(ctx, target) -> list[dict]:
    """N chatting clients; the target is killed with -9 and restarted: time until all are back and chatting."""
    args, expected, problems, before = ctx.args, reply_text(ctx.args.tiny_tokens), Problems(), Problems()
    clients = await connect_all(ctx, target.url, args.storm, before)
    try:
        await asyncio.gather(*(checked_turn(c, "before", expected, args.timeout, before) for c in clients))
        sessions = [c.session_id for c in clients]
        target.kill()
        restarted, own = time.perf_counter(), own_cpu_seconds()
        target.respawn()  # not waited for: the clients find out when it is up, as browsers do
        results = await asyncio.gather(*(come_back(c, restarted, expected, args, problems) for c in clients))
        cpu = cpu_seconds(target.pid)  # the new process, start-up included
        loadgen_pct = (own_cpu_seconds() - own) / (time.perf_counter() - restarted) * 100
    finally:
        await close_all(clients)
    back = [r[0] for r in results if r is not None]
    problems.failures += len(clients) - len(back)
    for kind in ("lost", "duplicated", "corrupted", "failures"):
        setattr(problems, kind, getattr(problems, kind) + getattr(before, kind))
    problems.notes += [f"before the kill, {note}" for note in before.notes]
    returned = [c for c, r in zip(clients, results, strict=True) if r is not None]
    return [{"clients": args.storm, "back": len(back), "first_back_s": min(back, default=math.nan),
             "back_p50_s": percentile(back, 50), "back_p99_s": percentile(back, 99),
             "all_back_s": max(back) if len(back) == args.storm else math.nan,
             "connected_p50_s": percentile([r[2] for r in results if r is not None], 50),
             "connected_max_s": max((r[2] for r in results if r is not None), default=math.nan),
             "same_session": sum(c.session_id == s for c, s in zip(clients, sessions, strict=True) if c in returned),
             "attempts": sum(r[1] for r in results if r is not None) / len(back) if back else math.nan,
             "server_cpu_s": cpu, "loadgen_pct": loadgen_pct, **problems.fields()}]


async def come_back(client: SioClient, restarted: float, expected: str, args,
                    problems: Problems) -> tuple[float, int, float] | None:
    """Reconnect like socket.io-client (backoff from the moment the loss is noticed) and take one tiny turn;
    (seconds after the restart until back and chatting, attempts, seconds until reconnected), or None if it could
    not reconnect within --storm-timeout.

    A turn started in time may take --timeout to finish: a slow reply counts as late, not as lost."""
    deadline = restarted + args.storm_timeout
    try:
        async with asyncio.timeout(args.storm_timeout):
            await client.lost.wait()
    except TimeoutError:
        problems.notes.append("failures: a connection outlived the kill")
        return None
    attempt = 0
    while time.perf_counter() < deadline:
        await asyncio.sleep(backoff(attempt))
        attempt += 1
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        try:
            await client.connect(min(20.0, left))  # socket.io-client's connect timeout is 20 s
        except SioError:
            continue
        connected = time.perf_counter() - restarted
        try:
            reply = await client.turn("after the restart", args.timeout)
        except SioError as exc:
            if client.connected:
                problems.add("lost", str(exc))
                return None
            continue  # lost again before the reply: keep reconnecting
        problem = check_reply(reply, expected)
        if problem is not None:
            problems.add(*problem)
            return None
        return time.perf_counter() - restarted, attempt, connected
    if len(problems.notes) < 5:
        problems.notes.append(f"failures: not reconnected within {args.storm_timeout:g} s")
    return None


SCENARIOS = {"streams": streams, "turns": turns, "burst": burst, "idle": idle, "storm": storm}
