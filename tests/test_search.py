"""Search over a session's own titles and message text (SQLite FTS5, Postgres tsvector): ranking, marking, scoping,
prefix matching as you type, hostile queries, the rate limit and the `search` event."""

from __future__ import annotations

import pytest

from chatbot.store.search import mark, query_words
from tests import storekit


@pytest.fixture
def store(app):
    """The app's store (on SQLite, and on Postgres when TEST_DATABASE_URL is set)."""
    return app.extensions["chatbot"].store


def fill(store, texts, title="Notes"):
    """A new owner with one conversation called `title` holding `texts` (alternating questions and answers, as
    turns); returns (owner, conversation id, message ids)."""
    owner, conversation = store.create_session()
    ids = [message["id"] for message in storekit.fill(store, owner, conversation["id"], texts)]
    store.rename_conversation(owner, conversation["id"], title)
    return owner, conversation["id"], ids


def text_of(result) -> str:
    """A result's snippet as plain text."""
    return "".join(piece["text"] for piece in result["snippet"])


def marked(result) -> list[str]:
    """The marked words of a result's snippet."""
    return [piece["text"] for piece in result["snippet"] if piece["match"]]


def test_search_ranks_titles_first_then_the_densest_text(store):
    owner, conversation_id, ids = fill(store, [
        "a note that mentions a kumquat once among many other ordinary words of the day",
        "kumquat kumquat kumquat",
        "nothing to see here",
    ], title="About fruit")
    other, _ = store.create_session()
    titled = store.create_conversation(owner, "Kumquat recipes")
    results = store.search(owner, "kumquat")
    assert [(r["conversation_id"], r["message_id"]) for r in results] == [
        (titled["id"], None), (conversation_id, ids[1]), (conversation_id, ids[0])]
    assert results[0]["title"] == "Kumquat recipes" and results[1]["title"] == "About fruit"
    assert results[1]["role"] == "assistant" and results[2]["role"] == "user"
    assert store.search(other, "kumquat") == []


def test_search_marks_the_matched_words_as_pieces_never_markup(store):
    owner, _, _ = fill(store, ["Hello <b>World</b> & the wide world of worlds"])
    [result] = store.search(owner, "world ")
    assert text_of(result) == "Hello <b>World</b> & the wide world of worlds"
    assert marked(result) == ["World", "world"]  # whole words only: the query ends with a space
    [prefixed] = store.search(owner, "worl")
    assert marked(prefixed) == ["World", "world", "worlds"]
    assert all(set(piece) == {"text", "match"} for piece in prefixed["snippet"])


def test_search_splits_words_alike_on_both_backends(store):
    text = "see <div class=box> at example.com, v3.5 or foo_bar"
    owner, _, ids = fill(store, [text])
    for word in ("div", "box", "example", "com", "v3", "5", "foo", "bar"):
        found = store.search(owner, word + " ")
        assert [r["message_id"] for r in found] == [ids[0]], word
        assert text_of(found[0]) == text and marked(found[0]) == [word]
    assert store.search(owner, "examp") and not store.search(owner, "examp ")


def test_search_needs_every_word(store):
    owner, _, ids = fill(store, ["red apples", "green apples", "red cherries"])
    assert [r["message_id"] for r in store.search(owner, "red apples ")] == [ids[0]]
    assert {r["message_id"] for r in store.search(owner, "apples ")} == {ids[0], ids[1]}


def test_search_snippet_of_a_long_text_is_a_window_with_ellipses(store):
    words = [f"filler{i}" for i in range(200)]
    words[120] = "needle"
    owner, _, _ = fill(store, [" ".join(words)])
    [result] = store.search(owner, "needle")
    text = text_of(result)
    assert "needle" in marked(result) and text.startswith("…") and text.endswith("…") and len(text) < 400


def test_search_never_finds_another_sessions_text(store):
    mine, my_conversation, _ = fill(store, ["my secret is plums"], title="plums for me")
    theirs, their_conversation, _ = fill(store, ["their secret is plums too"], title="their plums")
    for owner, own in ((mine, my_conversation), (theirs, their_conversation)):
        found = store.search(owner, "secret plums", 50) + store.search(owner, "plums", 50)
        assert found and {r["conversation_id"] for r in found} == {own}
    assert store.search("0" * 32, "plums") == [] and store.search("not an owner", "plums") == []


def test_search_finds_a_streaming_reply_once_it_is_finished(store):
    owner, conversation = store.create_session()
    started = store.begin_turn(owner, conversation["id"], "tell me", client_id=None, context_limit=10)
    store.checkpoint_many([(started.reply["id"], "the quokka is", None)])
    assert store.search(owner, "quokka") == []
    store.finish_reply(started.reply["id"], user_id=None, tokens=0, content="the quokka is happy", status="complete")
    assert [r["message_id"] for r in store.search(owner, "quokka")] == [started.reply["id"]]
    store.finish_reply(started.reply["id"], user_id=None, tokens=0, content="now about wombats")
    assert store.search(owner, "quokka") == [] and len(store.search(owner, "wombats")) == 1


def test_search_follows_renames_and_deletes(store):
    owner, conversation_id, _ = fill(store, ["hi"], title="Old name")
    assert len(store.search(owner, "old")) == 1
    store.rename_conversation(owner, conversation_id, "Brand new")
    assert store.search(owner, "old") == [] and len(store.search(owner, "brand")) == 1
    store.delete_conversation(owner, conversation_id)
    assert store.search(owner, "brand") == [] and store.search(owner, "hi") == []


HOSTILE = [
    'NEAR(apple pie, 2)', '"unbalanced', "apple OR pie", "apple AND NOT pie", "*", "-apple", "^apple", "apple*",
    "content:apple", "title : apple", "{title}: apple", "conversation_key: apple", "%", "%apple%", "_", "a'b",
    "'; DROP TABLE messages; --", "\\", "apple & pie | !x", "apple:*", "<->", "(((", "🍎 apple", "ünïcode",
    "x" * 200, " ".join(["apple"] * 60)[:200], "",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_search_hostile_queries_are_just_words(store, query):
    owner, _, _ = fill(store, ["apple pie is sweet", "pie without apple", "a'b ünïcode 🍎"])
    results = store.search(owner, query)
    assert isinstance(results, list)
    assert all(marked(result) for result in results)  # whatever was found shows why
    if query_words(query)[0] == ["apple"]:
        assert len(results) == 2


@pytest.mark.parametrize(("query", "expected"), [
    ("Apple", (["apple"], True)), ("apple ", (["apple"], False)), ("foo_bar-baz!", (["foo", "bar", "baz"], False)),
    ('"x" OR y*', (["x", "or", "y"], False)), ("%%%", ([], False)), ("ÉTÉ", (["été"], True)),
])
def test_query_words_take_letters_and_digits_only(query, expected):
    assert query_words(query) == expected


def test_mark_splits_text_into_pieces():
    assert mark("Cats, cat and category", ["cat"], prefix=True) == [
        {"text": "Cats", "match": True}, {"text": ", ", "match": False}, {"text": "cat", "match": True},
        {"text": " and ", "match": False}, {"text": "category", "match": True}]
    assert mark("Cats, cat", ["cat"], prefix=False) == [{"text": "Cats, ", "match": False},
                                                        {"text": "cat", "match": True}]


@pytest.mark.parametrize("bad", [{"query": 5}, {"query": None}, {}, {"query": "x" * 10240},
                                 {"query": "y" * 201}, {"query": "a\x00b"}, {"query": "\ud800"},
                                 {"query": "ok", "limit": 0}, {"query": "ok", "limit": 51},
                                 {"query": "ok", "limit": "5"}, {"query": "ok", "limit": True}, "query"])
def test_search_event_refuses_bad_input_clearly(socket_client, received, bad):
    client = socket_client()
    events = received(client)
    events.wait("session_id")
    result = client.emit("search", bad, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "invalid_message"
    assert result["error"]["message"] and "Traceback" not in result["error"]["message"]
    assert client.emit("search", {"query": "fine"}, callback=True) == {"ok": True, "results": []}


def test_search_event_finds_the_sessions_own_messages(socket_client, received, fake_groq):
    client = socket_client()
    events = received(client)
    events.wait("session_id")
    fake_groq.script(text="Axolotls can regrow limbs.")
    ack = client.emit("user_message", {"message": "tell me about axolotls"}, callback=True)
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    found = client.emit("search", {"query": "axolotl", "limit": 10}, callback=True)
    assert found["ok"] is True
    by_id = {r["message_id"]: r for r in found["results"]}
    assert set(by_id) == {None, ack["message_id"], ack["reply_id"]}  # the title (the first message) too
    assert all(r["conversation_id"] == ack["conversation_id"] for r in found["results"])
    assert marked(by_id[ack["reply_id"]]) == ["Axolotls"]
    intruder = socket_client()
    received(intruder).wait("session_id")
    assert intruder.emit("search", {"query": "axolotl"}, callback=True) == {"ok": True, "results": []}


def test_search_event_is_rate_limited_per_session(make_app, received):
    from chatbot import socketio

    app = make_app(RATE_LIMIT_SEARCH="2/minute")
    client = socketio.test_client(app)
    received(client).wait("session_id")
    for _ in range(2):
        assert client.emit("search", {"query": "x"}, callback=True)["ok"] is True
    refused = client.emit("search", {"query": "x"}, callback=True)
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    assert refused["error"]["retry_after"] > 0
    assert client.emit("search", {"query": "  "}, callback=True)["ok"] is True  # nothing to look for: free
