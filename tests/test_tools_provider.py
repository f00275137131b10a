"""The tool loop through the real providers' streams (Groq and OpenAI-compatible, against the fake Groq): function
calls streamed in pieces, results fed back, Groq's built-in steps, and what each request offered."""

import json

import pytest

from chatbot.providers.groq import GroqProvider
from chatbot.providers.openai_compat import OpenAICompatProvider
from chatbot.tools.service import ToolService

GPT_OSS = "openai/gpt-oss-120b"
SEARCH = {"type": "search", "arguments": {"query": "lyon weather"}, "output": "Sunny, 21 C",
          "search_results": {"results": [{"title": "Lyon", "url": "https://w.example/lyon", "content": "Sunny"}]}}


@pytest.fixture
def tools(mcp_orders):
    """The tool service with the orders server configured."""
    service = ToolService({"MCP_SERVERS": [{"name": "orders", "url": mcp_orders.url}], "TOOL_TIMEOUT": 5.0})
    yield service
    service.close()


def run(service, provider, enabled, model=GPT_OSS):
    """Stream one reply with `enabled` tools; (text, steps emitted, finish reason)."""
    emitted = []
    stream = service.stream(provider, [{"role": "user", "content": "order 42?"}], model=model, enabled=enabled,
                            reply_id=1, account="acct", emit=emitted.append, ask=emitted.append, sleep=lambda s: None)
    text = "".join(delta.text for delta in stream)
    return text, emitted, stream.finish_reason


def test_groq_function_call_round_trip(fake_groq, tools, mcp_orders):
    provider = GroqProvider(fake_groq.api_key, GPT_OSS, base_url=fake_groq.base_url)
    lookup = {"name": "orders__lookup_order", "arguments": {"order_id": "42"}}
    fake_groq.script(text="Let me look. ", tool_calls=[lookup])
    fake_groq.script(text="Order 42 is shipping.")
    text, steps, finish = run(tools, provider, ["mcp:orders/lookup_order", "web_search"])
    assert text == "Let me look. Order 42 is shipping." and finish == "stop"
    first, second = fake_groq.requests
    assert [t.get("function", {}).get("name", t["type"]) for t in first["tools"]] == [
        "browser_search", "orders__lookup_order"]
    assistant, result = second["messages"][-2:]
    assert assistant["content"] == "Let me look. " and assistant["tool_calls"][0]["function"]["name"] == (
        "orders__lookup_order")
    assert result["role"] == "tool" and json.loads(result["content"])["status"] == "shipping"
    assert [s["status"] for s in steps] == ["running", "done"]


def test_groq_builtin_search_steps_with_sources(fake_groq, tools):
    provider = GroqProvider(fake_groq.api_key, GPT_OSS, base_url=fake_groq.base_url)
    fake_groq.script(reasoning="Search.", executed_tools=[SEARCH], text="Sunny in Lyon.")
    text, steps, _ = run(tools, provider, ["web_search"])
    assert text == "Sunny in Lyon." and fake_groq.requests[0]["tools"] == [{"type": "browser_search"}]
    assert steps[-1]["status"] == "done" and steps[-1]["sources"] == [{"title": "Lyon", "url": "https://w.example/lyon"}]
    assert steps[-1]["kind"] == "search" and steps[-1]["name"] == "web_search"


def test_builtins_are_not_offered_to_other_models_or_servers(fake_groq, tools):
    provider = GroqProvider(fake_groq.api_key, GPT_OSS, base_url=fake_groq.base_url)
    fake_groq.script(text="Plain.")
    assert run(tools, provider, ["web_search"], model="qwen/qwen3.6-27b")[0] == "Plain."
    assert "tools" not in fake_groq.requests[0]


def test_openai_compatible_server_takes_function_tools(fake_groq, tools):
    provider = OpenAICompatProvider(fake_groq.base_url + "/v1", GPT_OSS, api_key=fake_groq.api_key)
    fake_groq.script(tool_calls=[{"name": "orders__lookup_order", "arguments": {"order_id": "42"}}])
    fake_groq.script(text="Shipping.")
    text, steps, _ = run(tools, provider, ["mcp:orders/lookup_order", "web_search"])
    assert text == "Shipping." and [s["status"] for s in steps] == ["running", "done"]
    assert [t["function"]["name"] for t in fake_groq.requests[0]["tools"]] == ["orders__lookup_order"]
    assert fake_groq.requests[1]["messages"][-1]["role"] == "tool"
