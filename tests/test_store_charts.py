"""The usage charts' figures (chatbot.store.charts) on SQLite and, with TEST_DATABASE_URL, on Postgres: replies,
tokens and tool calls per UTC day, per model and per account, from what the turn path writes."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from chatbot.store import messages
from chatbot.store.schema import usage_hourly


def reply(store, account: dict, model: str, tokens: int, tools: list[dict] | None = None) -> int:
    """One finished turn of an account's, written by `model` for `tokens` tokens with its tool steps `tools` (as the
    pump's final write)."""
    conversation = store.create_conversation(account["owner_id"])
    started = store.begin_turn(account["owner_id"], conversation["id"], "hi", client_id=None, context_limit=0)
    store.finish_reply(started.reply["id"], user_id=account["id"], tokens=tokens, content="hello",
                       status="complete", usage={"total_tokens": tokens}, model=model, tools=tools)
    return started.reply["id"]


def test_usage_by_day_per_model_and_per_account(store):
    ann, bob = (store.create_user(name, None, pending=False) for name in ("ann", "bob"))
    old = reply(store, ann, "model-a", 100)
    reply(store, ann, "model-a", 10)
    reply(store, bob, "model-b", 7)
    # Two days ago, and long ago (outside the window): moved back in time instead of waited for.
    two_days = datetime.now(UTC) - timedelta(days=2)
    with store.engine.begin() as conn:
        conn.execute(sa.update(messages).where(messages.c.id == old).values(created_at=two_days))
        conn.execute(sa.update(usage_hourly).where(usage_hourly.c.user_id == bob["id"])
                     .values(hour=datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=40)))
    figures = store.usage_by_day()
    assert len(figures["days"]) == 30 and figures["days"][-1] == datetime.now(UTC).date().isoformat()
    assert figures["models"]["model-a"]["messages"][-1] == 1 and figures["models"]["model-a"]["tokens"][-1] == 10
    assert figures["models"]["model-a"]["messages"][-3] == 1 and figures["models"]["model-a"]["tokens"][-3] == 100
    assert sum(figures["models"]["model-b"]["tokens"]) == 7
    assert sum(figures["users"]["ann"]["tokens"]) == 110 and sum(figures["users"]["ann"]["messages"]) == 2
    assert "bob" not in figures["users"]  # 40 days ago
    own = store.usage_by_day(user_id=ann["id"])
    assert own["models"] == {} and set(own["users"]) == {"ann"}


def steps(*statuses: str) -> list[dict]:
    """A reply's tool steps, one per status, as `bot_tool` sends them."""
    return [{"id": f"call_{n}", "kind": "mcp", "name": "mcp:orders/lookup_order", "status": status,
             "input": {"order_id": "42"}} for n, status in enumerate(statuses)]


def test_tool_calls_per_day_per_model_and_per_account(store):
    ann, bob = (store.create_user(name, None, pending=False) for name in ("ann", "bob"))
    old = reply(store, ann, "model-a", 10, steps("done", "error"))
    reply(store, ann, "model-a", 10, steps("done", "declined", "stopped"))  # the declined one never ran
    reply(store, ann, "model-b", 10)
    reply(store, bob, "model-b", 10, steps("done"))
    two_days = datetime.now(UTC) - timedelta(days=2)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    with store.engine.begin() as conn:  # the older reply, and bob's counter, two days back
        conn.execute(sa.update(messages).where(messages.c.id == old).values(created_at=two_days))
        conn.execute(sa.update(usage_hourly).where(usage_hourly.c.user_id == bob["id"]).values(hour=hour))
    figures = store.usage_by_day()
    assert figures["models"]["model-a"]["tool_calls"][-1] == 2 and figures["models"]["model-a"]["tool_calls"][-3] == 2
    assert figures["models"]["model-b"]["tool_calls"] == [0] * 29 + [1]
    assert figures["users"]["ann"]["tool_calls"] == [0] * 29 + [4]
    assert figures["users"]["bob"]["tool_calls"] == [0] * 27 + [1, 0, 0]
    own = store.usage_by_day(user_id=bob["id"])
    assert set(own["users"]) == {"bob"} and own["users"]["bob"]["tool_calls"][-3] == 1
