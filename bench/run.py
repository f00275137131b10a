"""`make bench`: the real server beside the bare and the naive relay, every scenario, written to BENCHMARKS.md.

    .venv/bin/python bench/run.py                          # everything (~35 min on a busy 2-core box)
    .venv/bin/python bench/run.py --quick                  # a smoke run (eventlet, 2-4 min), prints only
    .venv/bin/python bench/run.py --only turns burst --modes gevent

Processes, all on loopback: two fake Groqs (`python -m fakes.groq`: long replies and tiny ones), the target of
the moment (`python app.py`, or `bench/bare_relay.py [--naive]`), started fresh for each scenario, and this one,
the load generator (asyncio Socket.IO clients over raw websockets, bench/sio_client.py). Exits 1 if any reply was
lost, duplicated or corrupted or a scenario could not run, 3 if the --budget ran out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from common import ROOT, Child, free_port, start_watchdog, wait_until_quiet
from report import render, write_benchmarks
from scenarios import SCENARIOS

IMPLS = ("server", "bare", "naive")
HIGH_LIMIT = "100000/minute"
LONG_SCENARIOS = {"streams"}  # the others talk to the fake that streams tiny replies


class Target:
    """One server under test in one async mode on its own port: started, killed with -9, respawned, stopped."""

    def __init__(self, impl: str, mode: str, fake_url: str, key: str, workdir: Path, args, children: list[Child],
                 label: str):
        """Prepare the command line and environment (a fresh SQLite file for the real server)."""
        self.impl, self.mode, self.args, self.children = impl, mode, args, children
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{label}-{impl}-{mode}-{self.port}.log"
        self.database = (args.db_dir or workdir) / f"bench-{label}-{mode}-{secrets.token_hex(4)}.db"
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "PYTHONUNBUFFERED": "1", "HOST": "127.0.0.1",
                    "PORT": str(self.port), "ASYNC_MODE": mode, "GROQ_API_KEY": key, "GROQ_BASE_URL": fake_url}
        if impl == "server":
            self.argv = [sys.executable, str(args.app.resolve())]
            self.env.update({
                "DATABASE_URL": f"sqlite:///{self.database}", "REDIS_URL": "", "SECRET_KEY": secrets.token_urlsafe(32),
                "RATE_LIMIT_MESSAGES": HIGH_LIMIT, "RATE_LIMIT_MESSAGES_PER_IP": HIGH_LIMIT,
                "RATE_LIMIT_CONNECTIONS": HIGH_LIMIT, "RATE_LIMIT_ACTIONS": HIGH_LIMIT, "MAX_CONNECTIONS": "5000",
                "MAX_CONCURRENT_REPLIES": "100", "LOG_LEVEL": args.log_level, **args.set,
            })  # fmt: skip
        else:
            relay = [sys.executable, str(ROOT / "bench" / "bare_relay.py")]
            self.argv = relay + (["--naive"] if impl == "naive" else [])
        self.child: Child | None = None

    @property
    def pid(self) -> int:
        """The process id of the running server."""
        return self.child.pid

    def respawn(self) -> None:
        """Start the process on our port without waiting for it."""
        self.child = Child(f"{self.impl} ({self.mode})", self.argv, self.env, self.log_path, cwd=self.log_path.parent)
        self.children.append(self.child)  # the watchdog kills it too

    def start(self) -> None:
        """Start the process and wait (bounded) until /healthz answers."""
        self.respawn()
        self.child.wait_http_ok(self.url + "/healthz", self.args.timeout)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        os.kill(self.child.pid, signal.SIGKILL)
        self.child.process.wait(10)

    def stop(self) -> None:
        """Stop the process politely and remove its database."""
        if self.child is not None:
            self.child.stop()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)

    def log_tail(self) -> str:
        """The end of the process's log (every incarnation)."""
        return self.log_path.read_text(errors="replace")[-2500:] if self.log_path.exists() else ""


class Context:
    """What a scenario needs besides its target: the options and the fakes' process ids."""

    def __init__(self, args, fakes: dict[str, Child]):
        """Remember the options and the two fakes."""
        self.args, self.fakes = args, fakes

    def fake_pid(self, scenario: str) -> int:
        """The process id of the fake Groq this scenario's target talks to."""
        return self.fakes["long" if scenario in LONG_SCENARIOS else "tiny"].pid


def start_fake(args, key: str, tokens: int, workdir: Path, name: str) -> tuple[Child, str]:
    """Start a fake Groq streaming `tokens` tokens --delay apart; returns it and its base URL."""
    argv = [sys.executable, "-m", "fakes.groq", "--port", "0", "--key", key, "--delay", str(args.delay),
            "--tokens", str(tokens)]
    fake = Child(f"fake Groq ({name})", argv, {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
                 workdir / f"fake-{name}.log", cwd=ROOT)
    try:
        return fake, fake.wait_for_log(r"listening on (http://\S+)", args.timeout).group(1)
    except BaseException:
        fake.stop()
        raise


async def run_all(args, workdir: Path, children: list[Child]) -> list[dict]:
    """Every scenario x async mode x implementation, each on a fresh target; returns the rows."""
    key = "gsk_bench_" + secrets.token_hex(12)
    fakes, urls = {}, {}
    for name, tokens in (("long", args.tokens), ("tiny", args.tiny_tokens)):
        fakes[name], urls[name] = start_fake(args, key, tokens, workdir, name)
        children.append(fakes[name])
    ctx, rows = Context(args, fakes), []
    for scenario in args.only:
        for mode in args.modes:
            for impl in args.impls:
                if args.quiet_wait > 0:
                    wait_until_quiet(args.quiet_wait, args.quiet_below)
                print(f"[{time.strftime('%H:%M:%S')}] {scenario}: {impl} ({mode})", file=sys.stderr, flush=True)
                fake_url = urls["long" if scenario in LONG_SCENARIOS else "tiny"]
                target = Target(impl, mode, fake_url, key, workdir, args, children, scenario)
                base = {"scenario": scenario, "mode": mode, "impl": impl}
                began = time.perf_counter()
                try:
                    target.start()
                    found = await SCENARIOS[scenario](ctx, target)
                    rows += [{**base, **row} for row in found]
                    if any(row.get(k) for row in found for k in ("lost", "duplicated", "corrupted")):
                        print(f"problems: {[row['notes'] for row in found]}\n{target.log_tail()}", file=sys.stderr)
                except Exception as exc:
                    traceback.print_exc()
                    print(target.log_tail(), file=sys.stderr)
                    rows.append({**base, "error": f"{type(exc).__name__}: {exc}"[:300]})
                finally:
                    stopping = time.perf_counter()
                    target.stop()
                    now = time.perf_counter()
                    print(f"    {now - began:.1f} s, of which stopping {now - stopping:.1f} s", file=sys.stderr,
                          flush=True)
    return rows


def raise_open_files_limit() -> None:
    """Thousands of client sockets: lift our soft open-files limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; --quick swaps in small defaults."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: small counts, about 2 minutes; prints only")
    p.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS), metavar="SCENARIO",
                   help=f"scenarios to run (default all: {' '.join(SCENARIOS)})")
    p.add_argument("--modes", nargs="+", choices=["eventlet", "gevent", "threading"],
                   help="async modes (default eventlet gevent threading; quick: eventlet)")
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS), help="targets (default all three)")
    p.add_argument("--streams", type=int, nargs="+", help="concurrent streams per level (default 1 50 100)")
    p.add_argument("--tokens", type=int, default=280, help="tokens per long reply (default 280)")
    p.add_argument("--delay", type=float, default=0.004, help="seconds between streamed tokens (default 0.004)")
    p.add_argument("--tiny-tokens", type=int, default=5, help="tokens per tiny reply (default 5)")
    p.add_argument("--turn-clients", type=int, help="clients taking tiny turns (default 50)")
    p.add_argument("--turns", type=int, help="tiny turns per client (default 4)")
    p.add_argument("--burst", type=int, help="connections in the burst (default 300)")
    p.add_argument("--burst-window", type=float, help="seconds the burst is spread over (default 5)")
    p.add_argument("--idle", type=int, help="idle sockets held on the real server (default 3000)")
    p.add_argument("--idle-baseline", type=int, help="idle sockets held on the relays (default 1000)")
    p.add_argument("--idle-hold", type=float, help="seconds the idle sockets are held and measured (default 10)")
    p.add_argument("--storm", type=int, help="clients in the reconnect storm (default 500)")
    p.add_argument("--storm-timeout", type=float, default=60.0,
                   help="seconds the storm's clients keep trying to reconnect (default 60)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds any one wait may take (default 60)")
    p.add_argument("--connect-timeout", type=float, default=20.0, help="seconds one connect may take (default 20)")
    p.add_argument("--budget", type=float, help="hard stop for the whole run, s (default 2700; quick 420)")
    p.add_argument("--app", type=Path, default=ROOT / "app.py", help="the real server's entry point")
    p.add_argument("--db-dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    p.add_argument("--deflate", action="store_true",
                   help="offer permessage-deflate, as browsers do (default off: keeps the load generator cheap)")
    p.add_argument("--log-level", default="warning", help="the real server's LOG_LEVEL (default warning)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra real-server setting")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each target, wait up to this long for CPU pressure under --quiet-below %%")
    p.add_argument("--quiet-below", type=float, default=10.0, metavar="PCT")
    p.add_argument("--write", type=Path, nargs="?", const=ROOT / "BENCHMARKS.md", default=None,
                   help="write the results into this markdown file (default for a full run: BENCHMARKS.md)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--json", type=Path, help="also write the raw rows as JSON here")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    quick = {"modes": ["eventlet"], "streams": [1, 10], "turn_clients": 10, "turns": 2, "burst": 50,
             "burst_window": 1.0, "idle": 300, "idle_baseline": 100, "idle_hold": 2.0, "storm": 50, "budget": 420.0}
    full = {"modes": ["eventlet", "gevent", "threading"], "streams": [1, 50, 100], "turn_clients": 50, "turns": 4,
            "burst": 300, "burst_window": 5.0, "idle": 3000, "idle_baseline": 1000, "idle_hold": 10.0, "storm": 500,
            "budget": 2700.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.stream_rounds = {1: 5, 0: 1} if not args.quick else {1: 2, 0: 1}  # 0: every other level
    if min(args.streams) < 1 or args.tokens < 1 or args.tiny_tokens < 1 or args.delay < 0:
        p.error("--streams, --tokens and --tiny-tokens must be >= 1, --delay >= 0")
    try:
        args.set = dict(item.split("=", 1) for item in args.set)
    except ValueError:
        p.error("--set takes NAME=VALUE")
    partial = args.quick or set(args.only) != set(SCENARIOS) or args.impls != list(IMPLS)
    if args.write is None and not partial:
        args.write = ROOT / "BENCHMARKS.md"
    if args.no_write:
        args.write = None
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print the report, write BENCHMARKS.md; the exit status says whether everything arrived whole."""
    args = parse_args(argv)
    raise_open_files_limit()
    started = time.time()
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="chatbot-bench-") as tmp:
        watchdog = start_watchdog(args.budget, children, Path(tmp))
        try:
            rows = asyncio.run(run_all(args, Path(tmp), children))
        finally:
            for child in children:
                child.stop()
            watchdog.cancel()
    report = render(args, rows, time.time() - started)
    print(report)
    if args.write is not None:
        write_benchmarks(args.write, report)
        print(f"\nwritten to {args.write}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    bad = [r for r in rows if r.get("error") or any(r.get(k) for k in ("lost", "duplicated", "corrupted"))]
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
