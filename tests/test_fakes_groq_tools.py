"""The fake Groq's tools: streamed function calls, the follow-up with tool results, Groq's built-in executed tools."""

import json

import groq
import httpx
import pytest

from fakes.groq import ENDPOINT, FakeGroq

WAIT = 5.0
GPT_OSS = "openai/gpt-oss-120b"
LOOKUP = {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}
SEARCH = {
    "type": "search",
    "arguments": {"query": "weather in Lyon"},
    "output": "Sunny, 21 C",
    "search_results": {"results": [{"title": "Lyon weather", "url": "https://w.example/lyon", "content": "Sunny",
                                    "score": 0.9}]},
}


def client(fake: FakeGroq) -> groq.Groq:
    """The real groq SDK pointed at the fake."""
    return groq.Groq(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)


def post(fake: FakeGroq, body: dict) -> httpx.Response:
    """POST a chat body to the fake's Groq path."""
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    return httpx.post(fake.base_url + ENDPOINT, json=body, headers=headers, timeout=WAIT)


def test_tool_calls_stream_by_index_in_pieces_and_the_sdk_reassembles_them(fake_groq):
    fake_groq.script(tool_calls=[
        {"id": "call_a", "name": "lookup_order", "arguments": {"order_id": "42", "verbose": True}},
        {"id": "call_b", "name": "lookup_order", "arguments": {"order_id": "43"}},
    ])
    stream = client(fake_groq).chat.completions.create(
        model=GPT_OSS, messages=[{"role": "user", "content": "where are my orders?"}], tools=[LOOKUP], stream=True
    )
    calls: dict[int, dict] = {}
    pieces = finish = 0
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            pieces += 1
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function.name:
                call["name"] = delta.function.name
            call["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert pieces > 4  # arguments arrive in several pieces, not whole
    assert calls[0] == {"id": "call_a", "name": "lookup_order", "arguments": '{"order_id": "42", "verbose": true}'}
    assert calls[1]["id"] == "call_b" and json.loads(calls[1]["arguments"]) == {"order_id": "43"}
    assert fake_groq.requests[0]["tools"] == [LOOKUP]


def test_follow_up_with_tool_results_is_answered_and_recorded(fake_groq):
    fake_groq.script(tool_calls=[{"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "42"}}])
    fake_groq.script(text="Order 42 ships today.")
    messages = [{"role": "user", "content": "order 42?"}]
    first = client(fake_groq).chat.completions.create(model=GPT_OSS, messages=messages, tools=[LOOKUP])
    asked = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and asked.tool_calls[0].id == "call_1"
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [asked.tool_calls[0].model_dump()]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipping"}'},
    ]
    answer = client(fake_groq).chat.completions.create(model=GPT_OSS, messages=messages, tools=[LOOKUP])
    assert answer.choices[0].message.content == "Order 42 ships today."
    assert fake_groq.requests[1]["messages"][-1] == messages[-1]


def test_a_tool_result_that_answers_no_call_is_refused(fake_groq):
    body = {"model": GPT_OSS, "messages": [{"role": "user", "content": "hi"},
                                           {"role": "tool", "tool_call_id": "call_x", "content": "{}"}]}
    response = post(fake_groq, body)
    assert response.status_code == 400 and "tool_call_id" in response.json()["error"]["message"]


@pytest.mark.parametrize("tools, model, problem", [
    ([{"type": "browser_search"}], "qwen/qwen3.6-27b", "not supported with this model"),
    ([{"type": "shell"}], GPT_OSS, "tools.0.type"),
    ([{"type": "function", "function": {}}], GPT_OSS, "tools.0.function.name"),
])
def test_bad_tool_offers_are_refused_like_groq(fake_groq, tools, model, problem):
    response = post(fake_groq, {"model": model, "messages": [{"role": "user", "content": "hi"}], "tools": tools})
    assert response.status_code == 400 and problem in response.json()["error"]["message"]


def test_executed_tools_stream_start_and_done_then_the_answer(fake_groq):
    fake_groq.script(reasoning="Search first.", executed_tools=[SEARCH], text="Sunny in Lyon.")
    stream = client(fake_groq).chat.completions.create(
        model=GPT_OSS, messages=[{"role": "user", "content": "weather?"}], tools=[{"type": "browser_search"}],
        stream=True,
    )
    steps, text = [], ""
    for chunk in stream:
        delta = chunk.choices[0].delta
        steps += [tool.model_dump(exclude_none=True) for tool in delta.executed_tools or []]
        if delta.content:
            assert len(steps) == 2  # the steps come before the answer
            text += delta.content
    assert text == "Sunny in Lyon."
    assert steps[0] == {"index": 0, "type": "search", "arguments": '{"query": "weather in Lyon"}'}
    assert steps[1]["output"] == "Sunny, 21 C"
    assert steps[1]["search_results"]["results"][0]["url"] == "https://w.example/lyon"


def test_executed_tools_are_kept_in_the_complete_message(fake_groq):
    code = {"type": "python", "arguments": {"code": "print(6*7)"}, "output": "42", "code_results": [{"text": "42"}]}
    fake_groq.script(executed_tools=[code], text="It is 42.")
    answer = client(fake_groq).chat.completions.create(
        model=GPT_OSS, messages=[{"role": "user", "content": "6*7?"}], tools=[{"type": "code_interpreter"}]
    )
    message = answer.choices[0].message
    assert message.content == "It is 42."
    assert message.executed_tools[0].code_results[0].text == "42"
    assert json.loads(message.executed_tools[0].arguments) == {"code": "print(6*7)"}
