"""The tool events end to end (Socket.IO test client, fake Groq, a real MCP server on loopback): list_tools,
update_conversation.tools, bot_tool steps in the stream, the final message and history, approvals from a second
tab, a call the conversation did not enable, stop mid-step, a server that is down, resume with after_tool_seq."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest

from fakes.mcp_orders import OrdersServer

SEARCH = {"type": "search", "arguments": {"query": "lyon weather"}, "output": "Sunny, 21 C",
          "search_results": {"results": [{"title": "Lyon", "url": "https://w.example/lyon", "content": "Sunny"}]}}


@pytest.fixture
def app(make_app, mcp_orders):
    """An app with the orders server configured."""
    return make_app(MCP_SERVERS=json.dumps([{"name": "orders", "url": mcp_orders.url}]), TOOL_TIMEOUT=5,
                    TOOL_APPROVAL_SECONDS=30)


def fresh_order() -> str:
    """An order id no other test (or run against another database) uses."""
    return uuid.uuid4().hex[:10]


class Tab:
    """One connected tab: its client, events and conversation."""

    def __init__(self, socket_client, received, token=None):
        """Connect (to the session of `token`, when given)."""
        self.client = socket_client(auth={"token": token} if token else None)
        self.events = received(self.client)
        self.session = self.events.wait("session_id")
        self.conversation_id = self.events.wait("history")["conversation_id"]

    def emit(self, event, payload):
        """Emit and return the ack."""
        return self.client.emit(event, payload, callback=True)

    def enable(self, *tools):
        """Let the conversation's replies use `tools`."""
        ack = self.emit("update_conversation", {"conversation_id": self.conversation_id, "tools": list(tools)})
        assert ack["ok"] is True, ack
        return ack

    def ask(self, text="Where is order 42?"):
        """Send a message; its reply id."""
        ack = self.emit("user_message", {"message": text})
        assert ack["ok"] is True, ack
        return ack["reply_id"]

    def final(self, reply_id):
        """The reply's final bot_message."""
        return self.events.wait("bot_message", lambda m: m.get("reply_id") == reply_id, timeout=20)

    def steps(self, reply_id):
        """The bot_tool events of a reply, in seq order."""
        return sorted((e for e in self.events.of("bot_tool") if e["reply_id"] == reply_id), key=lambda e: e["seq"])


def test_list_tools_offers_search_code_and_the_servers_tools(socket_client, received):
    tab = Tab(socket_client, received)
    listed = tab.emit("list_tools", {})
    assert listed["ok"] is True and listed["unavailable"] == []
    ids = [tool["id"] for tool in listed["tools"]]
    assert ids[:2] == ["web_search", "code"]
    assert {"mcp:orders/lookup_order", "mcp:orders/cancel_order"} <= set(ids)
    assert [t["id"] for t in listed["tools"] if t["needs_approval"]] == ["mcp:orders/cancel_order"]
    lookup = next(t for t in listed["tools"] if t["id"] == "mcp:orders/lookup_order")
    assert lookup == {"id": "mcp:orders/lookup_order", "label": "lookup_order", "kind": "mcp", "server": "orders",
                      "description": "Look up an order by its id.", "needs_approval": False}


def test_update_conversation_stores_tools_and_refuses_strangers(socket_client, received):
    tab = Tab(socket_client, received)
    ack = tab.enable("web_search", "mcp:orders/lookup_order")
    assert ack["conversation"]["tools"] == ["web_search", "mcp:orders/lookup_order"]
    assert tab.events.wait("conversation_updated")["conversation"]["tools"] == ack["conversation"]["tools"]
    refused = tab.emit("update_conversation", {"conversation_id": tab.conversation_id, "tools": ["mcp:billing/x"]})
    assert refused["error"]["code"] == "tool_unavailable"
    assert tab.emit("update_conversation", {"conversation_id": tab.conversation_id, "tools": "web_search"})[
        "error"]["code"] == "invalid_message"
    other = Tab(socket_client, received)
    foreign = other.emit("update_conversation", {"conversation_id": tab.conversation_id, "tools": []})
    assert foreign["error"]["code"] == "not_found"


def test_a_search_streams_as_steps_and_stays_in_the_final_message_and_history(socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("web_search")
    fake_groq.script(reasoning="Search.", executed_tools=[SEARCH], text="Sunny in Lyon.")
    reply_id = tab.ask("Weather in Lyon?")
    final = tab.final(reply_id)
    assert final["message"] == "Sunny in Lyon." and fake_groq.requests[0]["tools"] == [{"type": "browser_search"}]
    steps = tab.steps(reply_id)
    assert [(e["seq"], e["step"]["status"]) for e in steps] == [(0, "running"), (1, "done")]
    done = steps[-1]["step"]
    assert done["kind"] == "search" and done["sources"] == [{"title": "Lyon", "url": "https://w.example/lyon"}]
    assert final["tools"] == [done]
    history = tab.emit("load_more", {"conversation_id": tab.conversation_id})
    assert history["messages"][-1]["tools"] == [done]


def test_an_mcp_call_runs_once_after_approval_from_a_second_tab(socket_client, received, fake_groq, mcp_orders):
    order = fresh_order()  # the MCP server outlives the test: ids must not repeat
    first = Tab(socket_client, received)
    second = Tab(socket_client, received, token=first.session["token"])
    first.enable("mcp:orders/cancel_order")
    fake_groq.script(tool_calls=[{"name": "orders__cancel_order", "arguments": {"order_id": order}}])
    fake_groq.script(text=f"Order {order} is cancelled.")
    reply_id = first.ask(f"Cancel {order}")
    asked = second.events.wait("tool_approval", lambda a: a["reply_id"] == reply_id)
    assert asked["name"] == "mcp:orders/cancel_order" and asked["input"] == {"order_id": order}
    assert first.events.wait("tool_approval", lambda a: a["reply_id"] == reply_id) == asked
    assert {"tool": "cancel_order", "order_id": order} not in mcp_orders.calls()  # nothing runs before the answer
    assert second.emit("approve_tool", {"reply_id": reply_id, "step_id": asked["step_id"], "approve": True}) == {
        "ok": True, "first": True}
    final = first.final(reply_id)
    late = first.emit("approve_tool", {"reply_id": reply_id, "step_id": asked["step_id"], "approve": False})
    assert late["ok"] is False or late["first"] is False
    assert final["message"] == f"Order {order} is cancelled." and final["tools"][0]["status"] == "done"
    assert mcp_orders.calls().count({"tool": "cancel_order", "order_id": order}) == 1
    fed_back = fake_groq.requests[1]["messages"][-1]
    assert fed_back["role"] == "tool" and fed_back["content"] == f"Order {order} cancelled."


def test_a_declined_call_is_not_run_and_the_reply_goes_on(socket_client, received, fake_groq, mcp_orders):
    order = fresh_order()  # the MCP server outlives the test: ids must not repeat
    tab = Tab(socket_client, received)
    tab.enable("mcp:orders/cancel_order")
    fake_groq.script(tool_calls=[{"name": "orders__cancel_order", "arguments": {"order_id": order}}])
    fake_groq.script(text="Kept it.")
    reply_id = tab.ask(f"Cancel {order}")
    asked = tab.events.wait("tool_approval", lambda a: a["reply_id"] == reply_id)
    assert tab.emit("approve_tool", {"reply_id": reply_id, "step_id": asked["step_id"], "approve": False})["first"]
    final = tab.final(reply_id)
    assert final["message"] == "Kept it." and final["tools"][0]["status"] == "declined"
    assert {"tool": "cancel_order", "order_id": order} not in mcp_orders.calls()
    assert "declined" in fake_groq.requests[1]["messages"][-1]["content"]


def test_a_call_the_conversation_did_not_enable_is_never_run(socket_client, received, fake_groq, mcp_orders):
    order = fresh_order()  # the MCP server outlives the test: ids must not repeat
    tab = Tab(socket_client, received)
    tab.enable("mcp:orders/lookup_order")
    fake_groq.script(tool_calls=[{"name": "orders__cancel_order", "arguments": {"order_id": order}}])
    fake_groq.script(text="I may not.")
    final = tab.final(tab.ask(f"Cancel {order}"))
    assert final["message"] == "I may not." and final["tools"][0]["status"] == "error"
    assert {"tool": "cancel_order", "order_id": order} not in mcp_orders.calls()
    assert tab.events.of("tool_approval") == []
    assert [t["function"]["name"] for t in fake_groq.requests[0]["tools"]] == ["orders__lookup_order"]


def test_stop_mid_step_ends_the_reply_with_the_step_stopped(socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("mcp:orders/hang_order")
    fake_groq.script(tool_calls=[{"name": "orders__hang_order", "arguments": {"order_id": "1"}}])
    reply_id = tab.ask("Hang")
    tab.events.wait("bot_tool", lambda e: e["reply_id"] == reply_id and e["step"]["status"] == "running")
    assert tab.emit("stop", {"reply_id": reply_id})["stopped"] is True
    final = tab.final(reply_id)
    assert final["finish_reason"] == "stopped" and final["tools"][0]["status"] == "error"
    assert final["tools"][0]["output"] == "Stopped." and len(fake_groq.requests) == 1


def test_a_server_that_is_down_fails_the_step_and_the_reply_goes_on(make_app, received, fake_groq, tmp_path):
    from chatbot import socketio

    dead = OrdersServer(tmp_path / "dead.jsonl").start()
    dead.kill()
    app = make_app(MCP_SERVERS=json.dumps([{"name": "orders", "url": dead.url}]))
    client = socketio.test_client(app)
    try:
        tab = Tab(lambda auth=None: client, received)
        listed = tab.emit("list_tools", {})
        assert listed["unavailable"] == ["orders"] and [t["id"] for t in listed["tools"]] == ["web_search", "code"]
        tab.enable("mcp:orders/lookup_order")  # chosen while the server was up, say
        fake_groq.script(text="Plain answer.")
        final = tab.final(tab.ask())
        # The server's tools cannot be offered while it is down: the reply goes on without them.
        assert final["message"] == "Plain answer." and "tools" not in fake_groq.requests[0]
    finally:
        client.disconnect()


def test_a_server_dying_mid_call_fails_the_step_clearly_and_the_reply_goes_on(make_app, received, fake_groq,
                                                                              tmp_path):
    from chatbot import socketio

    doomed = OrdersServer(tmp_path / "doomed.jsonl").start()
    app = make_app(MCP_SERVERS=json.dumps([{"name": "orders", "url": doomed.url}]), TOOL_TIMEOUT=60)
    client = socketio.test_client(app)
    try:
        tab = Tab(lambda auth=None: client, received)
        tab.enable("mcp:orders/crash_order")
        fake_groq.script(tool_calls=[{"name": "orders__crash_order", "arguments": {"order_id": "1"}}])
        fake_groq.script(text="The order system is down.")
        final = tab.final(tab.ask())
        assert final["message"] == "The order system is down."
        assert final["tools"][0]["status"] == "error" and "went away during the call" in final["tools"][0]["output"]
        assert fake_groq.requests[1]["messages"][-1]["content"].startswith("Error: The tool server 'orders' went")
    finally:
        client.disconnect()
        doomed.kill()


def test_resume_replays_steps_after_after_tool_seq(socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("web_search")
    fake_groq.script(executed_tools=[SEARCH], text="Sunny.")
    reply_id = tab.ask("Weather?")
    tab.final(reply_id)
    other = Tab(socket_client, received, token=tab.session["token"])
    assert other.emit("resume", {"reply_id": reply_id, "after_seq": -1, "after_tool_seq": 0})["done"] is True
    replayed = other.steps(reply_id)
    assert [(e["seq"], e["step"]["status"]) for e in replayed] == [(1, "done")]


def test_exports_carry_the_steps(app, socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("web_search")
    fake_groq.script(executed_tools=[SEARCH], text="Sunny.")
    tab.final(tab.ask("Weather?"))
    web, headers = app.test_client(), {"Authorization": f"Bearer {tab.session['token']}"}
    exported = web.get(f"/conversations/{tab.conversation_id}/export.json", headers=headers).get_json()
    assert exported["messages"][-1]["tools"][0]["sources"] == [{"title": "Lyon", "url": "https://w.example/lyon"}]
    markdown = web.get(f"/conversations/{tab.conversation_id}/export.md", headers=headers).get_data(as_text=True)
    assert "> - Searched the web for “lyon weather” — done\n>   - Lyon <https://w.example/lyon>" in markdown
    assert markdown.index("Searched the web") < markdown.index("Sunny.")


def test_metrics_count_tool_calls_by_tool_and_outcome(app, socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("mcp:orders/lookup_order")
    fake_groq.script(tool_calls=[{"name": "orders__lookup_order", "arguments": {"order_id": "42"}}])
    fake_groq.script(text="Shipping.")
    tab.final(tab.ask())
    body = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'chatbot_tool_calls_total{outcome="done",tool="mcp:orders/lookup_order"} 1.0' in body
    assert 'chatbot_tool_call_seconds_count{tool="mcp:orders/lookup_order"} 1.0' in body


def test_a_builtin_refused_by_groq_is_said_clearly(socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("web_search")
    fake_groq.script(status=400, error_message="`browser_search` is not available in this region.")
    reply_id = tab.ask("Weather?")
    final = tab.final(reply_id)
    assert final["finish_reason"] == "error" and final["error"]["code"] == "tool_unavailable"
    assert "Turn it off in Tools" in final["error"]["message"]


def test_stop_while_a_step_waits_for_approval_declines_it(socket_client, received, fake_groq, mcp_orders):
    order = fresh_order()  # the MCP server outlives the test: ids must not repeat
    tab = Tab(socket_client, received)
    tab.enable("mcp:orders/cancel_order")
    fake_groq.script(tool_calls=[{"name": "orders__cancel_order", "arguments": {"order_id": order}}])
    reply_id = tab.ask(f"Cancel {order}")
    asked = tab.events.wait("tool_approval", lambda a: a["reply_id"] == reply_id)
    assert tab.emit("stop", {"reply_id": reply_id})["stopped"] is True
    final = tab.final(reply_id)
    assert final["finish_reason"] == "stopped" and final["tools"][0]["status"] == "declined"
    assert {"tool": "cancel_order", "order_id": order} not in mcp_orders.calls() and len(fake_groq.requests) == 1
    late = tab.emit("approve_tool", {"reply_id": reply_id, "step_id": asked["step_id"], "approve": True})
    assert late["ok"] is False and late["error"]["code"] == "not_found"


def test_a_share_link_carries_the_steps_as_escaped_text(app, socket_client, received, fake_groq):
    tab = Tab(socket_client, received)
    tab.enable("web_search")
    hostile = {**SEARCH, "arguments": {"query": "<img src=x onerror=alert(1)>"},
               "search_results": {"results": [{"title": "<b>Lyon</b>", "url": "https://w.example/lyon"},
                                              {"title": "js", "url": "javascript:alert(2)"}]}}
    fake_groq.script(executed_tools=[hostile], text="Sunny.")
    tab.final(tab.ask("Weather?"))
    ack = tab.emit("share_conversation", {"conversation_id": tab.conversation_id})
    body = app.test_client().get(urlsplit(ack["url"]).path).get_data(as_text=True)
    assert "Searched the web for “&lt;img src=x onerror=alert(1)&gt;” — done" in body
    assert '<a href="https://w.example/lyon" rel="noopener noreferrer nofollow" target="_blank">&lt;b&gt;Lyon' in body
    assert "javascript:" not in body and "<img src=x" not in body
