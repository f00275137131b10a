"""Store benchmark: history load of a long conversation and the cost of a streaming checkpoint, SQLite and Postgres.

    .venv/bin/python bench/store_bench.py
    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/store_bench.py

Calls `chatbot.store.Store` directly (no server). SQLite runs on a temporary file; Postgres, when a URL is given,
in a fresh schema dropped afterwards (`isolated_database`). Prints a markdown table of wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import code_version, fmt, markdown_table, median, percentile

from chatbot.store import Store, isolated_database

SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL (every commit is synced to disk)", 3: "EXTRA"}
USER_CHARS = 200
ASSISTANT_CHARS = 1200


Timings = tuple[list[float], list[float]]


def timed(call: Callable[[], object], runs: int = 1, timings: Timings | None = None) -> Timings:
    """Wall-clock and CPU milliseconds of `runs` calls, one after another (appended to `timings` if given)."""
    wall, cpu = timings if timings is not None else ([], [])
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def history_payload(store: Store, owner_id: str, conversation_id: str, wire: Callable[[dict], dict],
                    page: int) -> str:
    """What `send_view` does for `history`: load a page, shape every message for the wire, JSON-encode."""
    messages, _ = store.message_page(owner_id, conversation_id, None, page)
    return json.dumps({"conversation_id": conversation_id, "messages": [wire(m) for m in messages]})


def service_helpers() -> tuple[Callable[[dict], dict] | None, Callable | None]:
    """The protocol's `wire_message` and the turn engine's `build_context`."""
    from chatbot.protocol import wire_message
    from chatbot.turns.context import build_context

    return wire_message, build_context


def fill(store: Store, messages: int) -> tuple[str, str, Timings]:
    """A new session whose conversation holds `messages` messages, written as the app writes them: per turn,
    begin_turn (question and streaming reply) then finish_reply (the answer). Returns ids and per-turn times."""
    from chatbot.turns.context import CONTEXT_MESSAGES

    owner_id, conversation = store.create_session()
    conversation_id = conversation["id"]
    timings: Timings = ([], [])

    def one_turn(number: int) -> None:
        question = (f"message {2 * number} " + "lorem ipsum " * 200)[:USER_CHARS]
        answer = (f"message {2 * number + 1} " + "lorem ipsum " * 200)[:ASSISTANT_CHARS]
        started = store.begin_turn(owner_id, conversation_id, question, client_id=None,
                                   context_limit=CONTEXT_MESSAGES)
        store.finish_reply(started.reply["id"], user_id=None, tokens=0, content=answer, status="complete")

    for number in range(messages // 2):
        timed(lambda number=number: one_turn(number), 1, timings)
    return owner_id, conversation_id, timings


def bench_backend(name: str, url: str, args) -> list[list[str]]:
    """Run every measurement on one database; returns table rows."""
    store = Store(url)
    try:
        store.migrate()
        owner_id, conversation_id, adds = fill(store, args.messages)
        wire, build_context = service_helpers()
        rows: list[list[str]] = []

        def row(what: str, timings: Timings) -> None:
            wall, cpu = timings
            rows.append([name, what, len(wall), fmt(median(wall), 2), fmt(percentile(wall, 95), 2),
                         fmt(median(cpu), 2)])

        row(f"a turn's writes: begin_turn + finish_reply (building the {args.messages:,}-message conversation)", adds)

        row(f"tree (export): all {args.messages:,} messages",
            timed(lambda: store.tree(owner_id, conversation_id), args.runs))
        row(f"message_page, the whole active path ({args.messages:,} messages)",
            timed(lambda: store.message_page(owner_id, conversation_id, None, args.messages), args.runs))
        row("message_page, the newest 50",
            timed(lambda: store.message_page(owner_id, conversation_id, None, 50), args.runs))
        if wire is not None:
            size = len(history_payload(store, owner_id, conversation_id, wire, 50))
            row(f"`history` payload: message_page(50) + wire_message + json.dumps ({size / 1024:,.0f} KiB)",
                timed(lambda: history_payload(store, owner_id, conversation_id, wire, 50), args.runs))
        if build_context is not None:
            from chatbot.turns.context import CONTEXT_MESSAGES

            history, _ = store.message_page(owner_id, conversation_id, None, CONTEXT_MESSAGES)
            row(f"turn context: build_context over the newest {CONTEXT_MESSAGES} (24,000-char budget)",
                timed(lambda: build_context("system", history, 24000), args.runs))
        reply = store.begin_turn(owner_id, conversation_id, "one more", client_id=None, context_limit=1).reply
        sizes = [1024 + (8192 - 1024) * i // max(args.checkpoints - 1, 1) for i in range(args.checkpoints)]
        text = "checkpointed reply text " * 400
        checkpoints: Timings = ([], [])
        for size in sizes:
            content = text[:size]
            timed(lambda content=content: store.checkpoint_many([(reply["id"], content, None)]), 1, checkpoints)
        row("checkpoint: checkpoint_many of one reply (1→8 KiB growing text)", checkpoints)
        return rows
    finally:
        store.close()


def bench_turn_path(name: str, url: str, args) -> list[list[str]]:
    """The calls a connect and a turn make: a new session, a returning one, a turn's one transaction, a checkpoint
    beat over 50 streaming replies and a reply's final write (each on its own short conversation)."""
    from chatbot.turns.context import CONTEXT_MESSAGES

    store = Store(url)
    rows: list[list[str]] = []

    def row(what: str, timings: Timings) -> None:
        wall, cpu = timings
        rows.append([name, what, len(wall), fmt(median(wall), 2), fmt(percentile(wall, 95), 2), fmt(median(cpu), 2)])

    try:
        store.migrate()
        runs = args.turns
        sessions = [store.create_session() for _ in range(5)]  # warm the pool and the statement caches
        new: Timings = ([], [])
        for _ in range(runs):
            timed(lambda: sessions.append(store.create_session()), 1, new)
        row("create_session (a new visitor: owner + empty conversation)", new)
        turns: Timings = ([], [])
        started = []
        for number in range(runs):
            owner_id, conversation = sessions[number]
            timed(lambda owner_id=owner_id, conversation=conversation, number=number: started.append(
                (owner_id, store.begin_turn(owner_id, conversation["id"], f"question {number}",
                                            client_id=f"c{number}", context_limit=CONTEXT_MESSAGES))), 1, turns)
        row("begin_turn (idempotency check, user message, reply row, order, context: one transaction)", turns)
        beat = [(turn.reply["id"], "streamed text " * 20, None) for _, turn in started[:50]]
        row("checkpoint_many (one beat over 50 streaming replies)",
            timed(lambda: store.checkpoint_many(beat), max(1, runs // 10)))
        finals: Timings = ([], [])
        for _, turn in started:
            timed(lambda turn=turn: store.finish_reply(turn.reply["id"], user_id=None, tokens=50, content="answer",
                                                       status="complete", finish_reason="stop", model="m",
                                                       usage={"total_tokens": 50}), 1, finals)
        row("finish_reply (a reply's final write)", finals)
        row("open_session (a returning visitor: owner, active conversation, newest page)",
            timed(lambda: [store.open_session(owner_id, 50) for owner_id, _ in started[:1]], runs))
        return rows
    finally:
        store.close()


def sqlite_synchronous(url: str) -> int:
    """The synchronous level the store's SQLite connections run with."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        store.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages in the conversation (default 1000)")
    parser.add_argument("--runs", type=int, default=20, help="runs of each history measurement (default 20)")
    parser.add_argument("--checkpoints", type=int, default=200, help="checkpoint calls (default 200)")
    parser.add_argument("--turns", type=int, default=200, help="sessions and turns on the turn path (default 200)")
    parser.add_argument("--only-turns", action="store_true", help="only the turn path (skip the long conversation)")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"),
                        help="Postgres URL (default: $TEST_DATABASE_URL; unset: SQLite only)")
    parser.add_argument("--sqlite-dir", type=Path, default=None, help="parent of the temp dir holding the SQLite file")
    args = parser.parse_args(argv)
    if min(args.messages, args.runs, args.checkpoints, args.turns) < 1:
        parser.error("--messages, --runs, --checkpoints and --turns must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Benchmark SQLite, then Postgres when a URL is set; print the table."""
    args = parse_args(argv)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="chatbot-store-bench-", dir=args.sqlite_dir) as tmp:
        print("running SQLite...", file=sys.stderr, flush=True)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        rows += [] if args.only_turns else bench_backend("SQLite", url, args)
        rows += bench_turn_path("SQLite", f"sqlite:///{Path(tmp) / 'turns.db'}", args)
        sqlite_sync = sqlite_synchronous(url)
    if args.database_url:
        print("running Postgres...", file=sys.stderr, flush=True)
        with isolated_database(args.database_url) as url:
            rows += [] if args.only_turns else bench_backend("Postgres", url, args)
        with isolated_database(args.database_url) as url:
            rows += bench_turn_path("Postgres", url, args)
    print(f"## Store benchmark: a {args.messages:,}-message conversation (user {USER_CHARS} chars, assistant "
          f"{ASSISTANT_CHARS} chars, alternating); {args.runs} runs per history row, {args.checkpoints} checkpoints")
    print(f"Code: {code_version()}")
    print()
    print("Wall-clock ms per call, one call at a time, in this process; SQLite: WAL mode on a temporary file, "
          f"PRAGMA synchronous={SYNC_NAMES.get(sqlite_sync, sqlite_sync)}.")
    print()
    print("CPU ms: this process's CPU time per call (the rest is waiting for the disk or the database server).")
    print()
    print(markdown_table(["backend", "operation", "calls", "median ms", "p95 ms", "CPU ms median"], rows))
    if not args.database_url:
        print()
        print("Postgres skipped: set TEST_DATABASE_URL (or --database-url), e.g. "
              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
