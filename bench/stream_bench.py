"""Streaming benchmark: the real server process against the fake Groq, 1 and N concurrent Socket.IO clients.

    .venv/bin/python bench/stream_bench.py                       # eventlet; 1 client x 10 rounds, 50 x 3
    .venv/bin/python bench/stream_bench.py --async-mode eventlet gevent --clients 1 50

Three processes on loopback: `python app.py` (the server), `python -m fakes.groq` (streams --tokens tokens
at --delay seconds apart) and this one (the python-socketio clients, one thread each). Server and fake CPU come
from /proc; the latency figures include the clients' own overhead. Prints markdown; exits 1 if a reply failed.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import socketio
from common import (
    ROOT,
    Child,
    code_version,
    cpu_pressure_seconds,
    cpu_seconds,
    fmt,
    free_port,
    markdown_table,
    median,
    own_cpu_seconds,
    percentile,
    start_watchdog,
    wait_until_quiet,
)

DEFAULT_ROUNDS = {1: 10}  # other client counts: 3 rounds
HIGH_LIMIT = "100000/minute"


class ReplyFailed(Exception):
    """A reply did not arrive whole: the reason is the message."""


@dataclass
class Reply:
    """What one client measured for one reply (seconds from its `user_message` emit)."""

    started: float
    first_delta: float
    total: float
    deltas: int
    tokens: int


@dataclass
class Scenario:
    """The figures of one (async mode, client count) run."""

    mode: str
    clients: int
    rounds: int
    replies: list[Reply] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    fake_cpu: float = 0.0
    client_cpu: float = 0.0
    startup_cpu: float = 0.0
    connect_cpu: float = 0.0
    run_cpu: float = 0.0
    run_replies: int = 0
    pressure: float | None = None
    load: float = 0.0


class BenchClient:
    """One Socket.IO client (its own session) that timestamps every delta and final message it receives."""

    def __init__(self, url: str, timeout: float):
        """Connect over websocket and wait for the `session_id` event."""
        self.timeout = timeout
        self._changed = threading.Condition()
        self._deltas: dict[int, list[tuple[float, int, str]]] = defaultdict(list)
        self._finals: dict[int, tuple[float, dict]] = {}
        self._starts: dict[int, float] = {}
        self._errors: list[dict] = []
        self._session = False
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("session_id", self._on_session)
        self.sio.on("bot_start", self._on_start)
        self.sio.on("bot_delta", self._on_delta)
        self.sio.on("bot_message", self._on_final)
        self.sio.on("error", self._on_error)
        self.sio.connect(url, transports=["websocket"], wait_timeout=timeout)
        with self._changed:
            if not self._changed.wait_for(lambda: self._session, timeout):
                raise ReplyFailed(f"no session_id within {timeout} s")

    def _on_session(self, data=None) -> None:
        """Note that the server attached us to a session."""
        with self._changed:
            self._session = True
            self._changed.notify_all()

    def _on_start(self, data) -> None:
        """Record when a reply was announced (the server has stored the user message and begun the reply)."""
        now = time.perf_counter()
        with self._changed:
            self._starts[data["reply_id"]] = now

    def _on_delta(self, data) -> None:
        """Record a delta with its arrival time (handlers may run out of order: seq sorts them)."""
        now = time.perf_counter()
        with self._changed:
            self._deltas[data["reply_id"]].append((now, data["seq"], data["text"]))

    def _on_final(self, data) -> None:
        """Record a reply's final message (the welcome message has no reply_id)."""
        now = time.perf_counter()
        if data.get("reply_id") is None:
            return
        with self._changed:
            self._finals[data["reply_id"]] = (now, data)
            self._changed.notify_all()

    def _on_error(self, data) -> None:
        """Record an error event."""
        with self._changed:
            self._errors.append(data)
            self._changed.notify_all()

    def turn(self, text: str, expected: str, tokens: int) -> Reply:
        """Send one message, wait for its reply and check it; ReplyFailed says what went wrong."""
        start = time.perf_counter()
        try:
            ack = self.sio.call("user_message", {"message": text}, timeout=self.timeout)
        except socketio.exceptions.TimeoutError:
            raise ReplyFailed(f"no ack within {self.timeout} s") from None
        if not isinstance(ack, dict) or not ack.get("ok"):
            raise ReplyFailed(f"refused: {ack!r}")
        reply_id = ack["reply_id"]
        with self._changed:
            if not self._changed.wait_for(lambda: reply_id in self._finals, self.timeout):
                raise ReplyFailed(f"reply {reply_id}: no final bot_message within {self.timeout} s")
            end, final = self._finals.pop(reply_id)
            started = self._starts.pop(reply_id, math.nan)
            deltas = sorted(self._deltas.pop(reply_id, []), key=lambda d: d[1])
            errors = [e for e in self._errors if e.get("reply_id") == reply_id]
        if errors:
            raise ReplyFailed(f"reply {reply_id}: error event {errors[0]!r}")
        if not deltas:
            raise ReplyFailed(f"reply {reply_id}: no bot_delta")
        seqs = [seq for _, seq, _ in deltas]
        if seqs != list(range(len(seqs))):
            raise ReplyFailed(f"reply {reply_id}: seqs not 0..n-1 without gaps: {seqs[:20]}")
        streamed = "".join(piece for _, _, piece in deltas)
        if streamed != final["message"]:
            raise ReplyFailed(f"reply {reply_id}: final text ({len(final['message'])} chars) != concatenated "
                              f"deltas ({len(streamed)} chars)")
        if final["message"] != expected or final.get("finish_reason") != "stop":
            raise ReplyFailed(f"reply {reply_id}: finish_reason={final.get('finish_reason')!r}, text of "
                              f"{len(final['message'])} chars, expected {len(expected)}")
        usage = final.get("usage") or {}
        return Reply(started=started - start, first_delta=min(t for t, _, _ in deltas) - start, total=end - start,
                     deltas=len(deltas), tokens=usage.get("completion_tokens") or tokens)

    def close(self) -> None:
        """Disconnect (quietly if already gone)."""
        try:
            self.sio.disconnect()
        except Exception:
            pass


def start_fake(args, key: str, workdir: Path) -> tuple[Child, str]:
    """Start the fake Groq in its own process; returns it and its base URL."""
    argv = [sys.executable, "-m", "fakes.groq", "--port", "0", "--key", key, "--delay", str(args.delay),
            "--tokens", str(args.tokens)]
    fake = Child("fake Groq", argv, {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}, workdir / "fake.log",
                 cwd=ROOT)
    try:
        found = fake.wait_for_log(r"listening on (http://\S+)", args.timeout)
    except BaseException:
        fake.stop()
        raise
    return fake, found.group(1)


def start_server(args, mode: str, key: str, base_url: str, workdir: Path, database: Path,
                 children: list[Child]) -> tuple[Child, str]:
    """Start `python app.py` on a free port against the fake Groq and a fresh SQLite file; returns it and its URL."""
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(workdir), "PYTHONUNBUFFERED": "1",
        "HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": mode,
        "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": "",
        "SECRET_KEY": secrets.token_urlsafe(32), "GROQ_API_KEY": key, "GROQ_BASE_URL": base_url,
        "RATE_LIMIT_MESSAGES": HIGH_LIMIT, "RATE_LIMIT_MESSAGES_PER_IP": HIGH_LIMIT,
        "RATE_LIMIT_CONNECTIONS": HIGH_LIMIT, "LOG_LEVEL": args.log_level,
    }  # fmt: skip
    env.update(args.set)
    server = Child(f"server ({mode})", [sys.executable, str(args.app.resolve())], env,
                   workdir / f"server-{mode}-{port}.log", cwd=workdir)
    children.append(server)  # the watchdog kills it too
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http_ok(url + "/healthz", args.timeout)
    except BaseException:
        server.stop()
        raise
    return server, url


def client_loop(client: BenchClient, index: int, rounds: int, go: threading.Barrier, done: threading.Barrier,
                expected: str, tokens: int, scenario: Scenario, warmup: int) -> None:
    """One client's rounds: wait for the common start, send, wait for the reply, report."""
    for number in range(rounds):
        try:
            go.wait()
        except threading.BrokenBarrierError:
            return
        try:
            reply = client.turn(f"benchmark message {number} from client {index}", expected, tokens)
        except ReplyFailed as exc:
            scenario.failures.append(f"client {index} round {number}: {exc}")
        except Exception as exc:  # a broken client must still reach the barrier
            scenario.failures.append(f"client {index} round {number}: {type(exc).__name__}: {exc}")
        else:
            if number >= warmup:
                scenario.replies.append(reply)
        try:
            done.wait()
        except threading.BrokenBarrierError:
            return


def run_scenario(args, mode: str, clients: int, key: str, base_url: str, fake: Child, workdir: Path,
                 children: list[Child]) -> Scenario:
    """Start a fresh server, connect `clients` sessions, run warm-up + measured rounds, stop the server."""
    rounds = args.rounds or DEFAULT_ROUNDS.get(clients, 3)
    scenario = Scenario(mode, clients, rounds)
    expected = "".join(f"tok{i} " for i in range(args.tokens))
    database = (args.db_dir or workdir) / f"chatbot-bench-{mode}-{clients}-{secrets.token_hex(4)}.db"
    scenario.load = os.getloadavg()[0]
    server, url = start_server(args, mode, key, base_url, workdir, database, children)
    connected: list[BenchClient] = []
    try:
        scenario.startup_cpu = cpu_seconds(server.pid)
        for _ in range(clients):
            connected.append(BenchClient(url, args.timeout))
        scenario.connect_cpu = cpu_seconds(server.pid) - scenario.startup_cpu
        total = args.warmup + rounds
        # The main thread is one more party, so it can read the CPU counters between rounds.
        go = threading.Barrier(clients + 1, timeout=args.timeout * 2)
        done = threading.Barrier(clients + 1, timeout=args.timeout * 2)
        threads = [threading.Thread(target=client_loop, daemon=True, name=f"client-{i}",
                                    args=(c, i, total, go, done, expected, args.tokens, scenario, args.warmup))
                   for i, c in enumerate(connected)]
        for thread in threads:
            thread.start()
        for number in range(total):
            if number == args.warmup:
                marks = (time.perf_counter(), cpu_seconds(server.pid), cpu_seconds(fake.pid), own_cpu_seconds(),
                         cpu_pressure_seconds())
            go.wait()
            done.wait()
            server.check_alive()
        scenario.wall = time.perf_counter() - marks[0]
        scenario.server_cpu = cpu_seconds(server.pid) - marks[1]
        scenario.fake_cpu = cpu_seconds(fake.pid) - marks[2]
        scenario.client_cpu = own_cpu_seconds() - marks[3]
        pressure = cpu_pressure_seconds()
        if pressure is not None and marks[4] is not None:
            scenario.pressure = (pressure - marks[4]) / scenario.wall
        scenario.run_cpu = cpu_seconds(server.pid) - scenario.startup_cpu
        scenario.run_replies = clients * total
        for thread in threads:
            thread.join(args.timeout)
    except threading.BrokenBarrierError:
        scenario.failures.append("a client stopped answering (barrier broken)")
    except Exception as exc:  # e.g. a client could not connect: report it with the others
        scenario.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        for client in connected:
            client.close()
        server.stop()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    if scenario.failures:
        print(f"\n{mode}, {clients} client(s): server log tail:\n{server.log()[-2000:]}", file=sys.stderr)
    return scenario


def latency_rows(scenarios: list[Scenario]) -> list[list[str]]:
    """One latency row per scenario."""
    rows = []
    for s in scenarios:
        started = [r.started * 1000 for r in s.replies if not math.isnan(r.started)]
        first = [r.first_delta * 1000 for r in s.replies]
        total = [r.total * 1000 for r in s.replies]
        deltas = [r.deltas for r in s.replies]
        rows.append([s.mode, s.clients, s.rounds, len(s.replies), len(s.failures), fmt(median(started)),
                     fmt(median(first)), fmt(percentile(first, 95)), fmt(median(total), 0),
                     fmt(percentile(total, 95), 0), fmt(median(deltas), 0),
                     f"{min(deltas, default=0)}–{max(deltas, default=0)}"])
    return rows


def cpu_rows(scenarios: list[Scenario]) -> list[list[str]]:
    """One CPU row per scenario."""
    rows = []
    for s in scenarios:
        tokens = sum(r.tokens for r in s.replies)
        replies = len(s.replies)
        per_token = s.server_cpu / tokens * 1e6 if tokens else math.nan
        per_reply = s.server_cpu / replies * 1000 if replies else math.nan
        whole = s.run_cpu / s.run_replies * 1000 if s.run_replies else math.nan
        wall = s.wall or math.nan
        pressure = "n/a" if s.pressure is None else fmt(s.pressure * 100, 0)
        rows.append([s.mode, s.clients, tokens, fmt(per_token), fmt(per_reply, 1), fmt(whole, 1),
                     fmt(s.connect_cpu / s.clients * 1000, 1), fmt(s.startup_cpu, 2),
                     fmt(s.server_cpu / wall * 100, 0), fmt(s.fake_cpu / wall * 100, 0),
                     fmt(s.client_cpu / wall * 100, 0), pressure, fmt(s.load, 1)])
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50], help="client counts (default 1 50)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="measured rounds per client count (default 10 for 1 client, else 3)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument("--tokens", type=int, default=280, help="tokens per reply (default 280)")
    parser.add_argument("--delay", type=float, default=0.004, help="seconds between tokens (default 0.004)")
    parser.add_argument("--async-mode", nargs="+", default=["eventlet"], choices=["eventlet", "gevent", "threading"])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds any one wait may take (default 60)")
    parser.add_argument("--budget", type=float, default=900.0, help="hard stop for the whole run, s (default 900)")
    parser.add_argument("--app", type=Path, default=ROOT / "app.py", help="server entry point (default app.py)")
    parser.add_argument("--db-dir", type=Path, default=None,
                        help="directory for the SQLite files (default: the run's temp dir; /dev/shm: no fsync)")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="on a shared machine: before each scenario wait up to this long for CPU pressure "
                             "(/proc/pressure/cpu avg10) to drop under --quiet-below (default 0: no wait)")
    parser.add_argument("--quiet-below", type=float, default=10.0, metavar="PCT", help="default 10")
    parser.add_argument("--log-level", default="warning", help="server LOG_LEVEL (default warning)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="extra server setting, e.g. --set STREAM_WINDOW_MS=0 (repeatable)")
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.delay < 0 or min(args.clients) < 1 or (args.rounds is not None and args.rounds < 1):
        parser.error("--tokens, --clients and --rounds must be >= 1, --delay >= 0")
    try:
        args.set = dict(item.split("=", 1) for item in args.set)
    except ValueError:
        parser.error("--set takes NAME=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every (async mode, client count) scenario, print the tables; 1 if any reply failed."""
    args = parse_args(argv)
    key = "gsk_bench_" + secrets.token_hex(12)
    scenarios: list[Scenario] = []
    children: list[Child] = []
    watchdog = None
    with tempfile.TemporaryDirectory(prefix="chatbot-bench-") as tmp:
        workdir = Path(tmp)
        try:
            fake, base_url = start_fake(args, key, workdir)
            children.append(fake)
            watchdog = start_watchdog(args.budget, children, workdir)
            for mode in args.async_mode:
                for clients in args.clients:
                    if args.quiet_wait > 0:
                        reading = wait_until_quiet(args.quiet_wait, args.quiet_below)
                        print(f"CPU pressure avg10 {reading}%", file=sys.stderr, flush=True)
                    print(f"running {mode}, {clients} client(s)...", file=sys.stderr, flush=True)
                    try:
                        scenario = run_scenario(args, mode, clients, key, base_url, fake, workdir, children)
                    except Exception as exc:  # the server did not start: the other scenarios may still run
                        scenario = Scenario(mode, clients, 0, failures=[f"{type(exc).__name__}: {exc}"])
                    scenarios.append(scenario)
        finally:
            for child in children:
                child.stop()
            if watchdog is not None:
                watchdog.cancel()
    print_report(args, scenarios)
    return 1 if any(s.failures for s in scenarios) or not scenarios else 0


def print_report(args, scenarios: list[Scenario]) -> None:
    """Print the settings, both tables and any failures."""
    print(f"## Streaming benchmark: {args.tokens} tokens per reply, {args.delay * 1000:g} ms apart "
          f"(pure streaming time {(args.tokens - 1) * args.delay * 1000:.0f} ms), {os.cpu_count()} cores")
    print(f"Code: {code_version()}")
    settings = {"STREAM_WINDOW_MS": "30 (default)", "CHECKPOINT_SECONDS": "1.0 (default)", **args.set}
    print(f"Server: {args.app.name}, LOG_LEVEL={args.log_level}, "
          + ", ".join(f"{k}={v}" for k, v in settings.items())
          + f"; SQLite in {args.db_dir or 'a temp dir'}; {args.warmup} unmeasured warm-up round(s) first.")
    print()
    print("Latency in ms from the client's `user_message` emit to the `bot_start` / first `bot_delta` / final")
    print("`bot_message` it received. The clients are python-socketio threads in the benchmark process: these")
    print("figures include client overhead (client CPU below) and any CPU contention on the machine.")
    print()
    print(markdown_table(["mode", "clients", "rounds", "replies", "failed", "bot_start median",
                          "first delta median", "first delta p95", "total median", "total p95",
                          "deltas/reply median", "deltas/reply range"],
                         latency_rows(scenarios)))
    print()
    print("Server CPU from /proc/<pid>/stat (utime+stime, 10 ms ticks). µs/token and ms/reply: measured rounds only;")
    print("whole run: everything after start-up (connects, warm-up, measured rounds) / all replies. server %,")
    print("fake Groq %, clients %: share of one core during the measured rounds. CPU pressure: share of that time")
    print("some task on the machine waited for a CPU (/proc/pressure/cpu; other workloads count too); load: 1-min")
    print("load average when the scenario started.")
    print()
    print(markdown_table(["mode", "clients", "tokens", "server µs/token", "server ms/reply", "whole run ms/reply",
                          "connect ms/client", "start-up CPU s", "server %", "fake Groq %", "clients %",
                          "CPU pressure %", "load"],
                         cpu_rows(scenarios)))
    failures = [f"{s.mode}, {s.clients} client(s): {f}" for s in scenarios for f in s.failures]
    print()
    if failures:
        print(f"**FAILED: {len(failures)} problem(s):**")
        for line in failures[:50]:
            print(f"- {line}")
    elif scenarios:
        print("All replies checked: final text == concatenated deltas (seq 0..n-1, no gaps) == the fake's text.")


if __name__ == "__main__":
    sys.exit(main())
