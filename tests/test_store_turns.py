"""Tests for chatbot.store.turns, the store's one write path for messages (begin_turn, begin_regenerate,
checkpoint_many, finish_reply) and the paged reads along the active path, on SQLite and, when TEST_DATABASE_URL is
set, on Postgres."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatbot import store as store_module
from chatbot.store import DEFAULT_TITLE, MESSAGE_FIELDS, NotFound, Store, conversations, messages
from tests.storekit import backdate, count_rows, fill, messages_of, turn


def test_turn_writes_the_message_and_a_streaming_reply(store, owner, conversation):
    started = store.begin_turn(owner, conversation["id"], "hello", client_id=None, context_limit=10)
    message, reply = started.message, started.reply
    assert tuple(message) == MESSAGE_FIELDS and tuple(reply) == MESSAGE_FIELDS
    assert (message["role"], message["status"], message["content"]) == ("user", "complete", "hello")
    assert message["conversation_id"] == reply["conversation_id"] == conversation["id"]
    assert (reply["role"], reply["status"], reply["content"], reply["parent_id"]) == (
        "assistant", "streaming", "", message["id"])
    assert store.get_message(owner, message["id"]) == message
    assert store.get_message(owner, reply["id"]) == reply
    assert messages_of(store, owner, conversation["id"]) == [message, reply]
    assert started.conversation["message_count"] == 2 and not started.duplicate
    assert store.get_active_conversation(owner) == conversation["id"]


def test_turn_bumps_updated_at(store, owner, conversation):
    backdate(store, conversations, "updated_at", conversation["id"], 3600)
    stale = store.get_conversation(owner, conversation["id"])["updated_at"]
    turn(store, owner, conversation["id"], "hi", "hello")
    assert store.get_conversation(owner, conversation["id"])["updated_at"] > stale


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"content": None}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "\udc80"}, "content"),
        ({"client_id": ""}, "client_id"),
        ({"client_id": "x" * 101}, "client_id"),
        ({"client_id": 5}, "client_id"),
        ({"client_id": "a\x00b"}, "client_id"),
    ],
)
def test_turn_rejects_bad_input(store, owner, conversation, kwargs, field):
    args = {"content": "hello", "client_id": None, **kwargs}
    with pytest.raises(ValueError, match=field):
        store.begin_turn(owner, conversation["id"], args.pop("content"), context_limit=5, **args)
    assert count_rows(store, messages) == 0


def test_turn_client_id_idempotent(store, owner, conversation):
    first = store.begin_turn(owner, conversation["id"], "hello", client_id="c-1", context_limit=5)
    again = store.begin_turn(owner, conversation["id"], "hello", client_id="c-1", context_limit=5)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert (again.message, again.reply) == (first.message, first.reply)
    other = store.create_conversation(owner)
    assert not store.begin_turn(owner, other["id"], "hello", client_id="c-1", context_limit=5).duplicate
    assert count_rows(store, messages) == 4


def test_turn_client_id_concurrent_resend(store, owner, conversation):
    def send(client_id, barrier):
        """Resend the same message at the same moment as the other thread."""
        barrier.wait()
        return store.begin_turn(owner, conversation["id"], "hello", client_id=client_id, context_limit=5)

    with ThreadPoolExecutor(2) as pool:
        for attempt in range(5):
            barrier = threading.Barrier(2, timeout=10)
            futures = [pool.submit(send, f"resend-{attempt}", barrier) for _ in range(2)]
            results = [future.result(timeout=30) for future in futures]
            assert sorted(result.duplicate for result in results) == [False, True]
            assert results[0].message == results[1].message
    assert count_rows(store, messages) == 10


def test_turn_client_id_unique_violation_rereads(store, owner, conversation, monkeypatch):
    stored = store.begin_turn(owner, conversation["id"], "hello", client_id="c-1", context_limit=5)
    real_duplicate = Store._duplicate
    calls = []

    def miss_once(self, conn, conversation, client_id):
        """Miss the first lookup, as if the other resend had not committed yet."""
        calls.append(client_id)
        return None if len(calls) == 1 else real_duplicate(self, conn, conversation, client_id)

    monkeypatch.setattr(Store, "_duplicate", miss_once)
    again = store.begin_turn(owner, conversation["id"], "hello", client_id="c-1", context_limit=5)
    assert again.duplicate and (again.message, again.reply) == (stored.message, stored.reply)
    assert len(calls) == 2  # the insert failed on the unique index, and the store read the stored turn instead
    assert count_rows(store, messages) == 2


def test_turn_titles_a_conversation_from_its_first_message(store, owner, conversation):
    assert store.get_conversation(owner, conversation["id"])["title"] == DEFAULT_TITLE
    turn(store, owner, conversation["id"], "  How do\n\nI bake   bread?  ", "Knead.")
    assert store.get_conversation(owner, conversation["id"])["title"] == "How do I bake bread?"
    turn(store, owner, conversation["id"], "Another question", "Another answer")
    assert store.get_conversation(owner, conversation["id"])["title"] == "How do I bake bread?"


def test_turn_title_from_long_message(store, owner, conversation):
    turn(store, owner, conversation["id"], "word " * 100, "ok")
    title = store.get_conversation(owner, conversation["id"])["title"]
    assert title.endswith("…")
    assert len(title) <= store_module.AUTO_TITLE_MAX
    assert "\n" not in title


@pytest.mark.parametrize("content", ["", "   ", "\n"])
def test_turn_title_kept_for_blank_message(store, owner, conversation, content):
    turn(store, owner, conversation["id"], content, "ok")
    assert store.get_conversation(owner, conversation["id"])["title"] == DEFAULT_TITLE


def test_turn_title_not_overwritten(store, owner):
    conversation = store.create_conversation(owner, "Named")
    turn(store, owner, conversation["id"], "hello", "hi")
    assert store.get_conversation(owner, conversation["id"])["title"] == "Named"


def test_checkpoint_then_final_write(store, owner, conversation, count_statements):
    _, reply = turn(store, owner, conversation["id"], "question", None)
    count_statements.clear()
    store.checkpoint_many([(reply["id"], "Hel\x00lo", "think \ud800")])
    assert count_statements == {"UPDATE": 1}
    stored = store.get_message(owner, reply["id"])
    assert (stored["content"], stored["reasoning"], stored["status"]) == ("Hel\ufffdlo", "think ?", "streaming")
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    count_statements.clear()
    store.finish_reply(reply["id"], user_id=None, tokens=8, status="complete", usage=usage, finish_reason="stop")
    assert count_statements == {"UPDATE": 1}  # no usage row for an anonymous owner
    stored = store.get_message(owner, reply["id"])
    assert stored["content"] == "Hel\ufffdlo"  # None leaves a field as is
    assert (stored["status"], stored["usage"], stored["finish_reason"]) == ("complete", usage, "stop")
    store.checkpoint_many([(reply["id"], "a late beat", None)])  # lands after the final write: ignored
    assert store.get_message(owner, reply["id"])["content"] == "Hel\ufffdlo"
    store.finish_reply(reply["id"], user_id=None, tokens=0, status="error", error_code="upstream_unavailable")
    assert store.get_message(owner, reply["id"])["error_code"] == "upstream_unavailable"


def test_final_write_of_nothing_is_noop(store, owner, conversation, count_statements):
    _, reply = turn(store, owner, conversation["id"], "question", None)
    count_statements.clear()
    store.finish_reply(reply["id"], user_id=None, tokens=0)
    store.checkpoint_many([])
    assert count_statements == {}


@pytest.mark.parametrize("message_id", [10_000, 0, 2**31, "1", None])
def test_final_write_of_unknown_reply_not_found(store, message_id):
    with pytest.raises(NotFound):
        store.finish_reply(message_id, user_id=None, tokens=0, content="x")


def test_final_write_rejects_bad_status(store, owner, conversation):
    _, reply = turn(store, owner, conversation["id"], "question", None)
    with pytest.raises(ValueError):
        store.finish_reply(reply["id"], user_id=None, tokens=0, status="finished")
    assert store.get_message(owner, reply["id"])["status"] == "streaming"


def test_message_page_walks_up_the_active_path(store, owner, conversation):
    made = fill(store, owner, conversation["id"], [f"m{i}" for i in range(10)])
    ids = [m["id"] for m in made]
    page, more = store.message_page(owner, conversation["id"], None, 3)
    assert [m["id"] for m in page] == ids[-3:] and more
    older, more = store.message_page(owner, conversation["id"], ids[-3], 50)
    assert [m["id"] for m in older] == ids[:-3] and not more
    assert [m["id"] for m in store.message_page(owner, conversation["id"], None, 50)[0]] == ids
    assert [m["content"] for m in store.active_path(owner, conversation["id"])] == [f"m{i}" for i in range(10)]
