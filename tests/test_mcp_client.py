"""The MCP client against a real MCP server on loopback: list, call, timeout, server down or dying, reconnect."""

import pytest

from chatbot.tools.mcp_client import McpClient, ServerConfig, ToolError
from fakes.mcp_orders import OrdersServer


@pytest.fixture
def orders(tmp_path):
    """The orders MCP server (with its hanging and crashing tools) in a subprocess."""
    server = OrdersServer(tmp_path / "calls.jsonl").start()
    yield server
    server.kill()


@pytest.fixture
def client(orders):
    """A client with the orders server configured and a short call limit."""
    mcp = McpClient([ServerConfig("orders", orders.url)], timeout=2.0, max_chars=200)
    yield mcp
    mcp.close()


def test_lists_tools_with_schema_and_approval_from_annotations(client):
    tools, down = client.list_tools()
    by_name = {tool.name: tool for tool in tools}
    assert down == [] and set(by_name) == {"lookup_order", "cancel_order", "hang_order", "crash_order"}
    assert by_name["cancel_order"].needs_approval is True
    assert [t.name for t in tools if t.needs_approval] == ["cancel_order"]
    lookup = by_name["lookup_order"]
    assert lookup.server == "orders" and lookup.description == "Look up an order by its id."
    assert lookup.input_schema["properties"]["order_id"]["type"] == "string"
    assert lookup.input_schema["required"] == ["order_id"]


def test_call_runs_once_on_the_server_and_gives_its_text(client, orders):
    result = client.call("orders", "cancel_order", {"order_id": "42"})
    assert result.text == "Order 42 cancelled." and result.is_error is False
    assert orders.calls() == [{"tool": "cancel_order", "order_id": "42"}]
    looked = client.call("orders", "lookup_order", {"order_id": "42"})
    assert '"status": "shipping"' in looked.text


def test_operator_can_require_approval_for_any_tool(orders):
    mcp = McpClient([ServerConfig("orders", orders.url, approve=("lookup_order",))])
    try:
        tools, _ = mcp.list_tools()
        assert {t.name for t in tools if t.needs_approval} == {"lookup_order", "cancel_order"}
    finally:
        mcp.close()


def test_a_tool_error_is_a_result_and_bad_arguments_are_reported(client):
    result = client.call("orders", "lookup_order", {})  # missing order_id: the server answers with an error result
    assert result.is_error is True and "order_id" in result.text


def test_results_are_capped(client):
    result = client.call("orders", "lookup_order", {"order_id": "x" * 500})
    assert result.truncated and result.text.endswith("[… cut at 200 characters]")
    assert len(result.text) < 260


def test_a_hanging_tool_times_out_and_the_session_still_works(client):
    with pytest.raises(ToolError) as caught:
        client.call("orders", "hang_order", {"order_id": "1"})
    assert caught.value.code == "tool_timeout" and "within 2 s" in caught.value.message
    assert "shipping" in client.call("orders", "lookup_order", {"order_id": "42"}).text


def test_a_server_that_is_down_is_reported_and_not_listed(tmp_path, orders):
    orders.kill()
    mcp = McpClient([ServerConfig("orders", orders.url)], timeout=2.0)
    try:
        assert mcp.list_tools() == ([], ["orders"])
        with pytest.raises(ToolError) as caught:
            mcp.call("orders", "lookup_order", {"order_id": "42"})
        assert caught.value.code == "tool_unavailable" and "'orders' is not reachable" in caught.value.message
    finally:
        mcp.close()


def test_an_unknown_server_is_unavailable(client):
    with pytest.raises(ToolError) as caught:
        client.call("billing", "refund", {})
    assert caught.value.code == "tool_unavailable"


def test_a_server_dying_mid_call_is_a_clear_error_not_a_timeout(client):
    client.timeout = 60.0  # a timeout would take a minute: the error must come from the server's end
    with pytest.raises(ToolError) as caught:
        client.call("orders", "crash_order", {"order_id": "1"})
    assert caught.value.code == "tool_unavailable" and "went away" in caught.value.message


def test_reconnects_after_the_server_restarts(client, orders):
    assert client.call("orders", "lookup_order", {"order_id": "42"}).text
    orders.restart()
    assert "shipping" in client.call("orders", "lookup_order", {"order_id": "42"}).text


GREEN_SCRIPT = """
import sys, json
mode = sys.argv[1]
if mode == "gevent":
    from gevent import monkey; monkey.patch_all()
    import gevent; spawn, sleep = gevent.spawn, gevent.sleep
else:
    import eventlet; eventlet.monkey_patch()
    spawn, sleep = eventlet.spawn, eventlet.sleep
from chatbot.tools.mcp_client import McpClient, ServerConfig, ToolError
ticks = []
def ticker():
    while True:
        ticks.append(1)
        sleep(0.01)
spawn(ticker)
client = McpClient([ServerConfig("orders", sys.argv[2])], timeout=3.0)
tools, down = client.list_tools()
try:
    client.call("orders", "hang_order", {"order_id": "1"})
except ToolError as exc:
    code = exc.code
during = len(ticks)  # read before anything yields: the ticker can only have run while the call waited
# More waiting calls than the framework's pool has threads: none of them holds one, so a quick call still answers
# while they all wait.
ended = []
def hang():
    try:
        client.call("orders", "hang_order", {"order_id": "2"})
    except ToolError:
        ended.append(1)
hanging = [spawn(hang) for _ in range(24)]
sleep(0)  # a yield: every hanging call starts and waits before the quick one is made
text = client.call("orders", "lookup_order", {"order_id": "42"}).text
ended_before = len(ended)
for greenlet in hanging:
    greenlet.wait() if hasattr(greenlet, "wait") else greenlet.join()
print(json.dumps({"tools": len(tools), "code": code, "ticks": during, "text": text, "ended": ended_before,
                  "all_ended": len(ended)}))
"""


@pytest.mark.parametrize("mode", ["gevent", "eventlet"])
def test_green_threads_keep_running_while_a_call_waits(orders, mode):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", GREEN_SCRIPT, mode, orders.url], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["tools"] == 4 and outcome["code"] == "tool_timeout" and "shipping" in outcome["text"]
    assert outcome["ticks"] > 1
    assert outcome["ended"] == 0 and outcome["all_ended"] == 24


def test_a_forked_child_opens_sessions_of_its_own(client):
    import os

    assert client.call("orders", "lookup_order", {"order_id": "42"}).text  # the parent's session and loop exist
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own loop thread and session, the parent's untouched
        try:
            ok = "shipping" in client.call("orders", "lookup_order", {"order_id": "42"}).text
        except BaseException:
            ok = False
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert "shipping" in client.call("orders", "lookup_order", {"order_id": "42"}).text


@pytest.mark.parametrize("annotations, approve, expected", [
    (None, (), False),
    ({"read_only_hint": True}, (), False),
    ({"read_only_hint": True, "destructive_hint": True}, (), False),
    ({"destructive_hint": True}, (), True),
    ({"read_only_hint": False}, (), True),
    ({"read_only_hint": False, "destructive_hint": False}, (), False),
    ({"idempotent_hint": True}, (), False),
    (None, ("lookup",), True),
    ({"read_only_hint": True}, ("*",), True),
])
def test_which_tools_wait_for_approval(annotations, approve, expected):
    from mcp.types import ToolAnnotations

    from chatbot.tools.mcp_client import needs_approval

    given = None if annotations is None else ToolAnnotations(**annotations)
    assert needs_approval(given, "lookup", approve) is expected
