"""The store's tool columns: a conversation's enabled tools and a reply's steps (checkpointed, then final), on the
production turn path, owner-scoped, on SQLite and (with TEST_DATABASE_URL) Postgres."""

import pytest

from chatbot.store import NotFound
from tests.storekit import messages_of, new_owner

STEP = {"id": "call_1", "kind": "mcp", "name": "mcp:orders/lookup_order", "status": "running",
        "input": {"order_id": "42"}}


def test_a_conversation_keeps_its_tools_and_only_its_owner_may_set_them(store, owner):
    conversation = store.create_conversation(owner)
    assert conversation["tools"] is None
    store.set_conversation_tools(owner, conversation["id"], ["web_search", "mcp:orders/lookup_order", "web_search"])
    assert store.get_conversation(owner, conversation["id"])["tools"] == ["web_search", "mcp:orders/lookup_order"]
    assert store.list_conversations(owner)[0]["tools"] == ["web_search", "mcp:orders/lookup_order"]
    with pytest.raises(NotFound):
        store.set_conversation_tools(new_owner(store), conversation["id"], [])
    with pytest.raises(ValueError):
        store.set_conversation_tools(owner, conversation["id"], ["x" * 300])
    store.set_conversation_tools(owner, conversation["id"], [])
    assert store.get_conversation(owner, conversation["id"])["tools"] is None


def test_a_reply_keeps_its_steps_checkpointed_then_final(store, owner):
    conversation = store.create_conversation(owner)
    turn = store.begin_turn(owner, conversation["id"], "order 42?", client_id=None, context_limit=10)
    reply_id = turn.reply["id"]
    store.checkpoint_tools(reply_id, [STEP])
    assert store.get_message(owner, reply_id)["tools"] == [STEP]
    done = {**STEP, "status": "done", "output": '{"status": "shipping"}'}
    store.finish_reply(reply_id, user_id=None, tokens=3, content="It ships.", status="complete", tools=[done])
    messages = messages_of(store, owner, conversation["id"])
    assert messages[-1]["tools"] == [done] and messages[0]["tools"] is None
    with pytest.raises(NotFound):
        store.checkpoint_tools(10**9, [STEP])


def test_an_accounts_tool_calls_count_in_its_usage(store):
    account = store.create_user("alice", "hash", pending=False)
    conversation = store.create_conversation(account["owner_id"])
    reply = store.begin_turn(account["owner_id"], conversation["id"], "q", client_id=None, context_limit=5).reply
    steps = [{**STEP, "id": f"step-{n}", "status": status} for n, status in enumerate(("done", "error", "declined"))]
    store.finish_reply(reply["id"], user_id=account["id"], tokens=10, content="a", status="complete", tools=steps)
    figures = {row["username"]: row for row in store.users_with_usage()}["alice"]
    assert (figures["tool_calls_24h"], figures["tool_calls_30d"], figures["messages_24h"]) == (2, 2, 1)
