"""The tool loop behind the provider contract: function calls run (only offered ones), results go back to the model,
the step cap, approvals (first answer wins, timeout declines), stop mid-step, Groq's built-in steps, limits.

The model is a scripted stand-in here (the fake Groq drives the same loop end to end in test_tools_turns); the
MCP server is the real one from `fakes.mcp_orders`.
"""

import threading

import pytest

from chatbot.providers.base import Delta, ReplyStream
from chatbot.tools.approvals import MemoryApprovals
from chatbot.tools.limits import ToolLimits
from chatbot.tools.loop import ToolTurn
from chatbot.tools.mcp_client import McpClient, ServerConfig
from chatbot.tools.registry import BUILTINS, Offer, ToolRegistry
from chatbot.tools.steps import StepRunner

WAIT = 10


class Round(ReplyStream):
    """One scripted model request: its deltas, then its finish reason."""

    def __init__(self, deltas, finish):
        """Keep the script."""
        super().__init__()
        self._script, self._finish_reason = deltas, finish

    def _deltas(self):
        """Play the script."""
        yield from self._script
        self._finish(self._finish_reason)


class ScriptedModel:
    """A provider whose requests are answered by rounds in order; it records what each request sent."""

    name = "groq"

    def __init__(self, *rounds):
        """Queue the rounds."""
        self.rounds = list(rounds)
        self.requests = []

    def stream(self, messages, *, model=None, tools=None, on_retry=None, on_status=None, options=None):
        """The next round, recording the request."""
        self.requests.append({"messages": list(messages), "tools": tools, "options": options})
        deltas, finish = self.rounds.pop(0) if self.rounds else ([Delta("Done.")], "stop")
        return Round(deltas, finish)


def call(name, arguments, call_id="call_1"):
    """A round asking for one function call, its arguments in two pieces."""
    half = len(arguments) // 2
    return ([Delta(tool_calls=[{"index": 0, "id": call_id, "function": {"name": name, "arguments": ""}}]),
             Delta(tool_calls=[{"index": 0, "function": {"arguments": arguments[:half]}}]),
             Delta(tool_calls=[{"index": 0, "function": {"arguments": arguments[half:]}}])], "tool_calls")


@pytest.fixture(scope="module")
def mcp(mcp_orders):
    """A client of the orders server with a short call limit."""
    client = McpClient([ServerConfig("orders", mcp_orders.url)], timeout=3.0)
    yield client
    client.close()


class Harness:
    """A turn's wiring: what it emitted and asked, and how to answer approvals from 'another tab'."""

    def __init__(self, mcp, enabled, *, approval_seconds=WAIT, limits=None):
        """Offer the enabled tools as a Groq gpt-oss conversation would."""
        self.registry = ToolRegistry(mcp)
        self.offer = self.registry.offer(enabled, ScriptedModel(), "openai/gpt-oss-120b")
        self.emitted, self.asked = [], []
        self.asked_event = threading.Event()
        self.approvals = MemoryApprovals()
        self.runner = StepRunner(self.offer, reply_id=7, account="acct", emit=self.emitted.append, ask=self._ask,
                                 mcp=mcp, approvals=self.approvals, limits=limits,
                                 approval_seconds=approval_seconds)

    def _ask(self, approval):
        """A tool_approval went to the tabs."""
        self.asked.append(approval)
        self.asked_event.set()

    def turn(self, model, max_steps=8):
        """The reply's stream."""
        return ToolTurn(model, [{"role": "user", "content": "hi"}], model="openai/gpt-oss-120b", offer=self.offer,
                        runner=self.runner, max_steps=max_steps)

    def answer_when_asked(self, approve):
        """Answer the first approval from another thread, as a second tab would."""

        def answer():
            assert self.asked_event.wait(WAIT)
            self.approvals.answer(7, self.asked[0]["step_id"], approve)

        thread = threading.Thread(target=answer)
        thread.start()
        return thread


def text_of(stream):
    """The reply's text."""
    return "".join(delta.text for delta in stream)


def test_a_call_runs_once_and_its_result_goes_back_to_the_model(mcp, mcp_orders):
    harness = Harness(mcp, ["mcp:orders/lookup_order"])
    model = ScriptedModel(call("orders__lookup_order", '{"order_id": "42"}'), ([Delta("It ships.")], "stop"))
    turn = harness.turn(model)
    assert text_of(turn) == "It ships." and turn.finish_reason == "stop"
    offered = model.requests[0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["orders__lookup_order"]
    assert offered[0]["function"]["parameters"]["required"] == ["order_id"]
    follow_up = model.requests[1]["messages"]
    assert follow_up[-2]["tool_calls"][0]["function"] == {"name": "orders__lookup_order",
                                                           "arguments": '{"order_id": "42"}'}
    assert follow_up[-1]["role"] == "tool" and follow_up[-1]["tool_call_id"] == "call_1"
    assert '"status": "shipping"' in follow_up[-1]["content"]
    assert [(s["status"], s["name"]) for s in harness.emitted] == [("running", "mcp:orders/lookup_order")] + [
        ("done", "mcp:orders/lookup_order")]
    assert harness.emitted[0]["input"] == {"order_id": "42"} and harness.emitted[0]["kind"] == "mcp"
    assert turn.steps() == [harness.emitted[-1]]


def test_a_call_to_a_tool_not_offered_is_never_run(mcp, mcp_orders):
    harness = Harness(mcp, ["mcp:orders/lookup_order"])
    model = ScriptedModel(call("orders__cancel_order", '{"order_id": "42"}'), ([Delta("Sorry.")], "stop"))
    assert text_of(harness.turn(model)) == "Sorry."
    assert mcp_orders.calls() == []
    assert harness.emitted[-1]["status"] == "error" and "not enabled" in harness.emitted[-1]["output"]
    assert model.requests[1]["messages"][-1]["content"].startswith("Error: The tool 'orders__cancel_order' is not")


def test_the_step_cap_ends_the_loop_with_a_request_without_tools(mcp):
    harness = Harness(mcp, ["mcp:orders/lookup_order"])
    lookup = '{"order_id": "42"}'
    first, second = call("orders__lookup_order", lookup, "c1"), call("orders__lookup_order", lookup, "c2")
    second_pieces = [Delta(tool_calls=[{**piece, "index": 1} for piece in d.tool_calls]) for d in second[0]]
    model = ScriptedModel((first[0] + second_pieces, "tool_calls"), call("orders__lookup_order", lookup, "c3"),
                          ([Delta("Enough.")], "stop"))
    turn = harness.turn(model, max_steps=1)
    assert text_of(turn) == ""  # the model asked again without tools being offered: the reply ends there
    assert [r["tools"] is not None for r in model.requests] == [True, False]
    assert [s["id"] for s in turn.steps()] == ["step-1"]  # the call over the cap is answered, never run nor shown
    over = model.requests[1]["messages"][-1]
    assert over["tool_call_id"] == "c2" and "step limit" in over["content"]


def test_a_destructive_call_approved_from_another_tab_runs_once(mcp, mcp_orders):
    harness = Harness(mcp, ["mcp:orders/cancel_order"])
    model = ScriptedModel(call("orders__cancel_order", '{"order_id": "7"}'), ([Delta("Cancelled.")], "stop"))
    before = len(mcp_orders.calls())
    answering = harness.answer_when_asked(True)
    assert text_of(harness.turn(model)) == "Cancelled."
    answering.join(WAIT)
    assert mcp_orders.calls()[before:] == [{"tool": "cancel_order", "order_id": "7"}]
    assert harness.asked == [{"reply_id": 7, "step_id": "step-1", "name": "mcp:orders/cancel_order",
                              "input": {"order_id": "7"}}]
    assert harness.emitted[-1]["status"] == "done"
    assert harness.approvals.answer(7, "step-1", False) is None  # settled and forgotten: a late answer is nobody's


def test_a_declined_call_does_not_run_and_the_model_is_told(mcp, mcp_orders):
    harness = Harness(mcp, ["mcp:orders/cancel_order"])
    model = ScriptedModel(call("orders__cancel_order", '{"order_id": "8"}'), ([Delta("Kept it.")], "stop"))
    answering = harness.answer_when_asked(False)
    assert text_of(harness.turn(model)) == "Kept it."
    answering.join(WAIT)
    assert {"tool": "cancel_order", "order_id": "8"} not in mcp_orders.calls()
    assert harness.emitted[-1]["status"] == "declined"
    assert "declined" in model.requests[1]["messages"][-1]["content"]


def test_an_unanswered_approval_times_out_as_declined(mcp, mcp_orders):
    harness = Harness(mcp, ["mcp:orders/cancel_order"], approval_seconds=0.3)
    model = ScriptedModel(call("orders__cancel_order", '{"order_id": "9"}'), ([Delta("No answer.")], "stop"))
    assert text_of(harness.turn(model)) == "No answer."
    assert {"tool": "cancel_order", "order_id": "9"} not in mcp_orders.calls()
    assert harness.emitted[-1]["status"] == "declined"


def test_stop_mid_step_aborts_the_call_and_the_loop(mcp):
    harness = Harness(mcp, ["mcp:orders/hang_order"])
    model = ScriptedModel(call("orders__hang_order", '{"order_id": "1"}'), ([Delta("never")], "stop"))
    turn = harness.turn(model)
    running = threading.Event()
    harness.runner.emit = lambda step: (harness.emitted.append(step), running.set())
    stopper = threading.Thread(target=lambda: running.wait(WAIT) and turn.close())
    stopper.start()
    assert text_of(turn) == ""
    stopper.join(WAIT)
    assert turn.finish_reason == "stopped" and len(model.requests) == 1
    assert harness.emitted[-1]["status"] == "error" and harness.emitted[-1]["output"] == "Stopped."


def test_groq_builtin_steps_are_followed_with_their_sources(mcp):
    harness = Harness(mcp, ["web_search"])
    search = {"index": 0, "type": "search", "arguments": '{"query": "lyon weather"}'}
    done = {**search, "output": "Sunny", "search_results": {"results": [
        {"title": "Lyon", "url": "https://w.example/lyon", "content": "Sunny", "score": 0.9}]}}
    model = ScriptedModel(([Delta(executed_tools=[search]), Delta(executed_tools=[done]), Delta("Sunny.")], "stop"))
    turn = harness.turn(model)
    assert text_of(turn) == "Sunny." and model.requests[0]["tools"] == [{"type": "browser_search"}]
    assert [s["status"] for s in harness.emitted] == ["running", "done"]
    assert turn.steps() == [{"id": "builtin-0-0", "kind": "search", "name": "web_search", "status": "done",
                             "input": {"query": "lyon weather"}, "output": "Sunny",
                             "sources": [{"title": "Lyon", "url": "https://w.example/lyon"}]}]


def test_the_daily_cap_refuses_further_calls(mcp):
    harness = Harness(mcp, ["mcp:orders/lookup_order"], limits=ToolLimits(None, per_tool="10/minute", daily="1/day"))
    lookup = '{"order_id": "42"}'
    model = ScriptedModel(call("orders__lookup_order", lookup, "c1"), call("orders__lookup_order", lookup, "c2"))
    text_of(harness.turn(model))
    assert [s["status"] for s in harness.runner.final()] == ["done", "error"]
    assert "daily limit" in harness.runner.final()[1]["output"]


def test_registry_offers_by_provider_and_model(mcp):
    registry = ToolRegistry(mcp)

    class Local:
        name = "local"

    class Compat:
        name = "openai"

    groq_tools = registry.list_payload(ScriptedModel(), "openai/gpt-oss-20b")["tools"]
    assert [t["id"] for t in groq_tools][:2] == ["web_search", "code"]
    assert {t["id"]: t["needs_approval"] for t in groq_tools}["mcp:orders/cancel_order"] is True
    assert [t for t in groq_tools if t["needs_approval"]] == [
        {"id": "mcp:orders/cancel_order", "label": "cancel_order", "description": "Cancel an order.", "kind": "mcp",
         "needs_approval": True, "server": "orders"}]
    assert "web_search" not in [t["id"] for t in registry.list_payload(ScriptedModel(), "qwen/qwen3.6-27b")["tools"]]
    assert "web_search" not in [t["id"] for t in registry.list_payload(Compat(), "openai/gpt-oss-20b")["tools"]]
    assert registry.list_payload(Local(), "any") == {"tools": [], "unavailable": []}
    assert registry.known(["web_search", "mcp:orders/x", "mcp:billing/x", "shell"]) == ["web_search", "mcp:orders/x"]
    assert Offer(list(BUILTINS)).resolve("web_search") is None  # built-ins are never run by us


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


def test_code_steps_keep_their_png_charts_and_nothing_else(mcp):
    harness = Harness(mcp, ["code"])
    run = {"index": 0, "type": "python", "arguments": '{"code": "plot()"}', "output": "",
           "code_results": [{"text": "done", "png": PNG}, {"png": "PHN2Zz48L3N2Zz4="}, {"png": "%%%"}]}
    model = ScriptedModel(([Delta(executed_tools=[run]), Delta("A chart.")], "stop"))
    assert text_of(harness.turn(model)) == "A chart."
    step = harness.runner.final()[0]
    assert step["kind"] == "code" and step["output"] == "done"
    assert step["images"] == [f"data:image/png;base64,{PNG}"]  # the SVG and the junk are dropped
