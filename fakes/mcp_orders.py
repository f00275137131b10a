"""A real MCP server (the `mcp` SDK's MCPServer over streamable HTTP) for tests: a team's "orders" system.

Tools: `lookup_order` (read-only) and `cancel_order` (destructive; every call is appended to the `--record` file as
one JSON line, so a test can prove a call ran once or never). With `--extra`: `hang_order` (never answers) and
`crash_order` (the process dies mid-call). Prints `mcp-orders listening on http://127.0.0.1:PORT/mcp` once the
socket listens; `--port 0` picks a free port, a fixed one lets a test restart the server where it was.

    python fakes/mcp_orders.py --port 0 --record /tmp/calls.jsonl [--extra]
"""

from __future__ import annotations

import argparse
import json
import os
import socket

ORDERS = {"42": {"order_id": "42", "status": "shipping", "item": "blue kettle"}}


def build(record: str, extra: bool):
    """The orders server (an MCPServer) with its tools."""
    import anyio
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("orders")

    @server.tool(description="Look up an order by its id.", annotations=ToolAnnotations(read_only_hint=True))
    def lookup_order(order_id: str) -> str:
        """The order as JSON text, or a not-found note."""
        return json.dumps(ORDERS.get(order_id, {"order_id": order_id, "status": "unknown"}))

    @server.tool(description="Cancel an order.", annotations=ToolAnnotations(destructive_hint=True))
    def cancel_order(order_id: str) -> str:
        """Record the cancellation and confirm it."""
        with open(record, "a", encoding="utf-8") as calls:
            calls.write(json.dumps({"tool": "cancel_order", "order_id": order_id}) + "\n")
        return f"Order {order_id} cancelled."

    if extra:

        @server.tool(description="Never answers.", annotations=ToolAnnotations(read_only_hint=True))
        async def hang_order(order_id: str) -> str:
            """Wait (practically) forever."""
            await anyio.sleep(3600)
            return order_id

        @server.tool(description="Dies mid-call.", annotations=ToolAnnotations(read_only_hint=True))
        def crash_order(order_id: str) -> str:
            """End the process without answering."""
            os._exit(3)

    return server


def main() -> None:
    """Listen on loopback and serve until killed."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", default=os.devnull)
    parser.add_argument("--extra", action="store_true")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    app = build(args.record, args.extra).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    print(f"mcp-orders listening on http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()


class OrdersServer:
    """Runs this script in a subprocess for a test: `url`, `calls()` (cancel_order's record), `kill()`, `restart()`."""

    def __init__(self, record_path, *, extra: bool = True):
        """Remember where calls are recorded; nothing runs until start()."""
        self.record_path = str(record_path)
        self.extra = extra
        self.port = 0
        self.url = ""
        self.process = None

    def start(self) -> OrdersServer:
        """Start the server (on its previous port after a kill) and wait for its listening line."""
        import subprocess
        import sys

        command = [sys.executable, __file__, "--port", str(self.port), "--record", self.record_path]
        self.process = subprocess.Popen(
            command + (["--extra"] if self.extra else []), stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"mcp-orders did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])
        return self

    def calls(self) -> list[dict]:
        """cancel_order's calls so far."""
        if not os.path.exists(self.record_path):
            return []
        with open(self.record_path, encoding="utf-8") as calls:
            return [json.loads(line) for line in calls if line.strip()]

    def kill(self) -> None:
        """Kill the server and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)
            self.process.stdout.close()

    def restart(self) -> OrdersServer:
        """Kill it and start a new one on the same port."""
        self.kill()
        return self.start()

