"""Importing conversations (chatbot.turns.imports, chatbot.store.imports) on SQLite and, with TEST_DATABASE_URL, on
Postgres: a real-shaped ChatGPT export with its branches, our own JSON export round trip, and malformed files
refused whole."""

import json
from pathlib import Path

import pytest

from chatbot.protocol import ChatError
from chatbot.store import conversations, messages
from chatbot.turns.imports import parse_import
from tests.storekit import count_rows, turn

CHATGPT = Path(__file__).parent / "data" / "chatgpt_conversations.json"


def imported(store, owner, raw: bytes) -> list[str]:
    """Parse and write a file for the owner; the new conversations' ids."""
    return store.import_conversations(owner, parse_import(raw))


def test_chatgpt_export_keeps_branches_and_the_shown_path(store, owner):
    first, second = imported(store, owner, CHATGPT.read_bytes())
    leaf, tree = store.tree(owner, first)
    by_content = {m["content"]: m for m in tree}
    assert set(by_content) == {"What is a loquat?", "A small orange fruit.", "Picture?", "Here is one.",
                               "What is a loquat, briefly?", "A fruit."}  # system, tool and empty nodes left out
    # The two first questions are versions of each other (both roots); the tool node's child hangs on the answer.
    assert by_content["What is a loquat?"]["parent_id"] is None
    assert by_content["What is a loquat, briefly?"]["parent_id"] is None
    assert by_content["Picture?"]["parent_id"] == by_content["A small orange fruit."]["id"]
    assert by_content["A small orange fruit."]["model"] == "gpt-4o"
    # The shown path is the export's current node's: the second version.
    assert [m["content"] for m in store.active_path(owner, first)] == ["What is a loquat, briefly?", "A fruit."]
    page, _ = store.message_page(owner, first, None, 50)
    assert (page[0]["version"], page[0]["versions"]) == (2, 2)
    assert store.get_conversation(owner, first)["title"] == "Loquats and <b>tags</b>"
    assert [m["content"] for m in store.active_path(owner, second)] == ["hello", "hi **there**"]
    assert [r["title"] for r in store.search(owner, "loquat")][0] == "Loquats and <b>tags</b>"


def test_our_own_export_comes_back_whole(store, owner):
    source = store.create_conversation(owner, "Round trip")
    store.update_conversation_settings(owner, source["id"], {"instructions": "Be brief.", "temperature": 0.5})
    first, _ = turn(store, owner, source["id"], "first", "answer")
    store.begin_turn(owner, source["id"], "edited", client_id=None, context_limit=10, edit_of=first["id"])
    leaf, tree = store.tree(owner, source["id"])
    export = json.dumps({"conversation": {**store.get_conversation(owner, source["id"]), "active_leaf_id": leaf},
                         "messages": tree}).encode()
    (copy,) = imported(store, owner, export)
    _, copied = store.tree(owner, copy)
    assert [(m["role"], m["content"]) for m in copied] == [(m["role"], m["content"]) for m in tree]
    shape = {m["id"]: m["parent_id"] for m in tree}
    ids = dict(zip([m["id"] for m in tree], [m["id"] for m in copied], strict=True))
    assert {ids[k]: (None if v is None else ids[v]) for k, v in shape.items()} == {
        m["id"]: m["parent_id"] for m in copied}
    assert [m["content"] for m in store.active_path(owner, copy)] == ["edited", ""]
    copied_conversation = store.get_conversation(owner, copy)
    assert (copied_conversation["instructions"], copied_conversation["temperature"]) == ("Be brief.", 0.5)


@pytest.mark.parametrize(("raw", "says"), [
    (b"\xff\xfe", "not JSON"),
    (b"{not json", "not JSON"),
    (b'{"hello": 1}', "neither a ChatGPT export"),
    (b"[]", "no conversations"),
    (b'[{"title": "x"}]', "no message tree"),
    (b'[{"title": "x", "mapping": {"a": 3}}]', "malformed node"),
    (b'{"conversation": {}, "messages": [{"id": 1, "role": "system", "content": "x"}]}', "needs a role"),
    (b'{"conversation": {}, "messages": [{"id": 2, "role": "user", "content": "x", "parent_id": 9}]}',
     "not before it"),
    (b'{"conversation": {}, "messages": [{"role": "user", "content": "x"}]}', "has no id"),
    (b'{"conversation": [], "messages": []}', "must be an object"),
    (b'{"conversation": {"temperature": 7}, "messages": []}', "temperature must be a number from 0 to 2"),
])
def test_malformed_files_are_refused_and_nothing_is_imported(store, owner, raw, says):
    with pytest.raises(ChatError) as refusal:
        imported(store, owner, raw)
    assert refusal.value.code == "invalid_message" and says in refusal.value.message
    assert refusal.value.message.startswith("Nothing was imported")
    assert count_rows(store, conversations) == 1 and count_rows(store, messages) == 0  # the owner's first, empty


def test_a_file_failing_midway_writes_nothing(store, owner):
    good = json.loads(CHATGPT.read_text())
    bad = {"title": "bad", "mapping": {"r": {"parent": None, "children": ["m"], "message": None},
                                       "m": {"parent": "r", "children": [], "message": {
                                           "author": {"role": "user"}, "content": {"parts": ["a\x00b"]}}}}}
    with pytest.raises(ValueError):
        imported(store, owner, json.dumps([*good, bad]).encode())
    assert count_rows(store, conversations) == 1 and count_rows(store, messages) == 0  # the owner's first, empty
