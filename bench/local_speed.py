"""The local model's speed through the server against the same model in a bare llama-cpp-python loop, in one run.

    .venv/bin/python bench/local_speed.py                    # gevent, 3 rounds of up to 200 tokens each
    .venv/bin/python bench/local_speed.py --async-mode eventlet --rounds 5

Bare: `Llama.create_completion(stream=True)` on the packaged SmolLM2-135M, one thread, greedy, timed from the first
token to the last. Server: `python app.py` with LLM_PROVIDER=local (the same file, one decoding thread, greedy), one
python-socketio client, timed from the first `bot_delta` to the final `bot_message`, tokens from its `usage`. The
bare loop and the server alternate, so both see the same machine. Prints tokens/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import socketio
from common import ROOT, Child, free_port

from chatbot.providers.local import find_model

PROMPT = "Write a long story about a lighthouse keeper and a storm."
SYSTEM = "You are a helpful assistant."  # sent by both, so both generate the same greedy tokens


def bare_tokens_per_second(llama, max_tokens: int) -> float:
    """One greedy generation in a bare loop: tokens per second from the first token to the last."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    first = last = None
    count = 0
    for chunk in llama.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, stream=True):
        if not chunk["choices"][0]["delta"].get("content"):
            continue  # the opening role chunk and the closing one carry no token
        last = time.perf_counter()
        first = first or last
        count += 1
    return (count - 1) / (last - first) if count > 1 and last > first else float("nan")


def server_tokens_per_second(url: str, timeout: float) -> float:
    """One reply through the server: completion tokens per second from the first delta to the final message."""
    done, times = threading.Event(), {}
    client = socketio.Client(reconnection=False)

    @client.on("bot_delta")
    def delta(data):
        times.setdefault("first", time.perf_counter())

    @client.on("bot_message")
    def final(data):
        if not data.get("welcome"):
            times["last"], times["usage"] = time.perf_counter(), data.get("usage") or {}
            done.set()

    client.connect(url, transports=["websocket"], wait_timeout=10)
    try:
        connected = threading.Event()
        client.on("session_id", lambda data: connected.set())
        connected.wait(10)
        client.call("user_message", {"message": PROMPT}, timeout=timeout)
        if not done.wait(timeout):
            raise RuntimeError("no final bot_message")
    finally:
        client.disconnect()
    tokens = times["usage"].get("completion_tokens", 0)
    return (tokens - 1) / (times["last"] - times["first"])


def main(argv: list[str] | None = None) -> int:
    """Alternate bare and server generations; print both medians and their ratio."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--async-mode", default="gevent", choices=["gevent", "eventlet"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    from llama_cpp import Llama

    from chatbot.providers.llama_params import amx_advertised, model_params

    with model_params(use_extra_bufts=not amx_advertised()):
        llama = Llama(model_path=str(find_model(None)), n_ctx=4096, n_threads=1, verbose=False)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="chatbot-local-speed-") as tmp:
        env = {"HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": args.async_mode, "LLM_PROVIDER": "local",
               "LOCAL_THREADS": "1", "LOCAL_TEMPERATURE": "0", "LOCAL_MAX_TOKENS": str(args.max_tokens),
               "LOCAL_SYSTEM_PROMPT": SYSTEM, "SYSTEM_PROMPT": SYSTEM,
               "DATABASE_URL": f"sqlite:///{Path(tmp) / 'db.sqlite'}",
               "SECRET_KEY": "bench-" + "x" * 40, "LOG_LEVEL": "warning", "REDIS_URL": ""}
        server = Child("server", [sys.executable, str(ROOT / "app.py")], {**os.environ, **env},
                       Path(tmp) / "server.log", ROOT)
        try:
            server.wait_http_ok(f"http://127.0.0.1:{port}/healthz", 60)
            bare, served = [], []
            for _ in range(args.rounds):
                bare.append(bare_tokens_per_second(llama, args.max_tokens))
                served.append(server_tokens_per_second(f"http://127.0.0.1:{port}", args.timeout))
        finally:
            server.stop()
    b, s = statistics.median(bare), statistics.median(served)
    print(f"bare llama-cpp-python loop: {b:.1f} tokens/s (median of {args.rounds}: {[round(x, 1) for x in bare]})")
    print(f"through the server ({args.async_mode}): {s:.1f} tokens/s ({[round(x, 1) for x in served]})")
    print(f"server / bare: {s / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
