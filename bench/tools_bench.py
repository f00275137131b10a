"""Tool-step benchmark: the extra server CPU and latency of one MCP tool step in a reply.

    .venv/bin/python bench/tools_bench.py                          # eventlet, 20 rounds of each kind
    .venv/bin/python bench/tools_bench.py --async-mode eventlet gevent --rounds 40

On loopback: `python app.py` (the server, SQLite, MCP_SERVERS pointing at the orders server), the orders MCP server
(`fakes/mcp_orders.py`, a real `mcp` server), and this process, which runs the fake Groq in a thread (each round is
scripted: a plain reply, or a `lookup_order` call followed by the answer) and one python-socketio client. A round is
user_message → final bot_message; server CPU comes from /proc. The difference between the two kinds is what one tool
step costs: a second upstream request, the MCP call over the bridge thread, two `bot_tool` events and two writes of
the steps. Prints markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import socketio
from common import ROOT, Child, code_version, cpu_seconds, fmt, free_port, markdown_table, median, percentile

from fakes.groq import FakeGroq
from fakes.mcp_orders import OrdersServer

ANSWER = "Order 42 is on its way: it left the warehouse this morning."


def mean(values: list[float]) -> float:
    """The average (CPU is read in clock ticks, so per-reply figures are averaged over the rounds)."""
    return sum(values) / len(values)


def one_round(client: socketio.Client, fake: FakeGroq, tool: bool, done: dict) -> float:
    """Script and send one message; seconds until its final bot_message."""
    if tool:
        fake.script(tool_calls=[{"name": "orders__lookup_order", "arguments": {"order_id": "42"}}])
    fake.script(text=ANSWER)
    done["event"].clear()
    started = time.perf_counter()
    ack = client.call("user_message", {"message": "Where is order 42?"}, timeout=30)
    if not ack or not ack.get("ok"):
        raise RuntimeError(f"refused: {ack}")
    if not done["event"].wait(30) or done["final"].get("message") != ANSWER:
        raise RuntimeError(f"no complete reply: {done['final']}")
    if tool and [s["status"] for s in done["final"].get("tools", [])] != ["done"]:
        raise RuntimeError(f"the step did not run: {done['final']}")
    return time.perf_counter() - started


def run_mode(mode: str, rounds: int, workdir: Path, fake: FakeGroq, orders: OrdersServer) -> list:
    """Start a server in `mode`, run plain and tool rounds alternately; one table row per kind."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": mode, "LLM_PROVIDER": "groq",
           "GROQ_API_KEY": fake.api_key, "GROQ_BASE_URL": fake.base_url, "SECRET_KEY": secrets.token_hex(32),
           "DATABASE_URL": f"sqlite:///{workdir / f'{mode}.db'}", "REDIS_URL": "", "LOG_LEVEL": "warning",
           "MCP_SERVERS": json.dumps([{"name": "orders", "url": orders.url}]),
           "RATE_LIMIT_MESSAGES": "100000/minute", "RATE_LIMIT_MESSAGES_PER_IP": "100000/minute",
           "RATE_LIMIT_TOOLS": "100000/minute", "TOOL_DAILY_CALLS": "0"}
    server = Child(f"server-{mode}", [sys.executable, str(ROOT / "app.py")], env, workdir / f"{mode}.log", ROOT)
    client = socketio.Client(reconnection=False)
    done = {"event": threading.Event(), "final": {}}

    def on_final(data):
        if data.get("reply_id") is not None:
            done["final"] = data
            done["event"].set()

    client.on("bot_message", on_final)
    try:
        server.wait_http_ok(f"http://127.0.0.1:{port}/healthz", 60)
        client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
        conversation = client.call("list_conversations", {}, timeout=10)["active_id"]
        client.call("update_conversation", {"conversation_id": conversation, "tools": ["mcp:orders/lookup_order"]},
                    timeout=10)
        one_round(client, fake, True, done)  # warm-up: opens the MCP session and the upstream connection
        one_round(client, fake, False, done)
        figures = {False: ([], []), True: ([], [])}
        for index in range(rounds * 2):
            tool = index % 2 == 1
            before = cpu_seconds(server.pid)
            figures[tool][0].append(one_round(client, fake, tool, done))
            figures[tool][1].append(cpu_seconds(server.pid) - before)
    finally:
        client.disconnect()
        server.stop()
    rows = []
    for tool in (False, True):
        latency, cpu = figures[tool]
        rows.append([mode, "one MCP step" if tool else "plain", rounds, fmt(median(latency) * 1000),
                     fmt(percentile(latency, 95) * 1000), fmt(mean(cpu) * 1000)])
    extra = median(figures[True][0]) - median(figures[False][0]), mean(figures[True][1]) - mean(figures[False][1])
    rows.append([mode, "extra per step", "", fmt(extra[0] * 1000), "", fmt(extra[1] * 1000)])
    return rows


def main() -> None:
    """Parse the arguments, run every mode, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--async-mode", nargs="+", default=["eventlet"], choices=["eventlet", "gevent", "threading"])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeGroq() as fake:
        workdir = Path(tmp)
        orders = OrdersServer(workdir / "calls.jsonl", extra=False).start()
        try:
            for mode in args.async_mode:
                rows += run_mode(mode, args.rounds, workdir, fake, orders)
        finally:
            orders.kill()
    print(f"Tool steps at {code_version()}: user_message → final bot_message, one client, sequential rounds\n")
    print(markdown_table(["mode", "reply", "rounds", "median ms", "p95 ms", "server CPU ms/reply (mean)"], rows))


if __name__ == "__main__":
    main()
