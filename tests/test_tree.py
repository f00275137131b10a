"""Messages form a tree: edit and resend, regenerate keeping the old reply, switching versions, the context along the
active path only, paging up that path, export, and every new event's refusals (SQLite and Postgres)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests import storekit


def connect(socket_client, received, auth=None):
    """Connect and return (client, events, session payload)."""
    client = socket_client(auth=auth)
    events = received(client)
    return client, events, events.wait("session_id")


def turn(client, events, fake_groq, text, answer, event="user_message", **extra):
    """Send a message (or an edit) whose reply is `answer`; wait for the reply and return the ack."""
    fake_groq.script(text=answer)
    ack = client.emit(event, {"message": text, **extra}, callback=True)
    assert ack["ok"] is True, ack
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    return ack


def sent_upstream(fake_groq) -> list[tuple[str, str]]:
    """The (role, content) pairs of the last request the fake Groq received, after the system prompt."""
    messages = fake_groq.requests[-1]["messages"]
    assert messages[0]["role"] == "system"
    return [(m["role"], m["content"]) for m in messages[1:]]


def versions(history: dict) -> list[tuple]:
    """A `history` as (content, version, versions) per message."""
    return [(m["content"], m["version"], m["versions"]) for m in history["messages"]]


def history_after(events, count: int) -> dict:
    """The first `history` received after the first `count` ones."""
    events.wait("history", lambda _: len(events.of("history")) > count)
    return events.of("history")[count]


@pytest.fixture
def chat(socket_client, received, fake_groq):
    """A connected client with a two-turn conversation: q1 → a1, q2 → a2. Returns a namespace of handles."""
    client, events, session = connect(socket_client, received)
    events.wait("history")
    first = turn(client, events, fake_groq, "question one", "answer one")
    second = turn(client, events, fake_groq, "question two", "answer two")

    class Chat:
        pass

    chat = Chat()
    chat.client, chat.events, chat.session, chat.first, chat.second = client, events, session, first, second
    chat.conversation_id = first["conversation_id"]
    return chat


def test_edit_makes_a_sibling_and_sends_only_its_path_upstream(chat, fake_groq, app):
    edit = turn(chat.client, chat.events, fake_groq, "question two, better", "better answer", event="edit_message",
                message_id=chat.second["message_id"])
    assert set(edit) >= {"ok", "message_id", "reply_id", "conversation_id"}
    assert edit["conversation_id"] == chat.conversation_id and edit["message_id"] != chat.second["message_id"]
    assert sent_upstream(fake_groq) == [("user", "question one"), ("assistant", "answer one"),
                                        ("user", "question two, better")]
    history = chat.events.wait("history", lambda h: any(m["id"] == edit["message_id"] for m in h["messages"]))
    edited = next(m for m in history["messages"] if m["id"] == edit["message_id"])
    assert (edited["version"], edited["versions"]) == (2, 2)
    assert edited["sibling_ids"] == [chat.second["message_id"], edit["message_id"]]
    # The old branch stays, beside the new one.
    store = app.extensions["chatbot"].store
    leaf, tree = store.tree(chat.session["session_id"], chat.conversation_id)
    parents = {m["id"]: m["parent_id"] for m in tree}
    assert len(tree) == 6 and leaf == edit["reply_id"]
    assert parents[edit["message_id"]] == parents[chat.second["message_id"]] == chat.first["reply_id"]
    assert parents[edit["reply_id"]] == edit["message_id"]
    # The next message continues the edited path.
    turn(chat.client, chat.events, fake_groq, "and then?", "then this")
    assert sent_upstream(fake_groq) == [("user", "question one"), ("assistant", "answer one"),
                                        ("user", "question two, better"), ("assistant", "better answer"),
                                        ("user", "and then?")]


def test_edit_of_the_first_message_makes_a_second_root(chat, fake_groq):
    edit = turn(chat.client, chat.events, fake_groq, "question one again", "fresh start", event="edit_message",
                message_id=chat.first["message_id"])
    assert sent_upstream(fake_groq) == [("user", "question one again")]
    history = chat.events.wait("history", lambda h: h["messages"] and h["messages"][0]["id"] == edit["message_id"])
    first, reply = history["messages"]  # the reply was still streaming when the history went out
    assert (first["content"], first["version"], first["versions"], first["parent_id"]) == (
        "question one again", 2, 2, None)
    assert first["sibling_ids"] == [chat.first["message_id"], edit["message_id"]]
    assert (reply["id"], reply["versions"]) == (edit["reply_id"], 1)


def test_regenerate_keeps_the_old_reply_and_the_context_is_the_new_path(chat, fake_groq):
    fake_groq.script(text="answer two, take two")
    regen = chat.client.emit("regenerate", {}, callback=True)
    chat.events.wait("bot_message", lambda d: d.get("reply_id") == regen["reply_id"])
    assert sent_upstream(fake_groq) == [("user", "question one"), ("assistant", "answer one"),
                                        ("user", "question two")]
    turn(chat.client, chat.events, fake_groq, "next", "ok")
    assert sent_upstream(fake_groq)[-2:] == [("assistant", "answer two, take two"), ("user", "next")]
    assert ("answer two", "assistant") not in [(c, r) for r, c in sent_upstream(fake_groq)]


def test_switch_branch_flips_versions_for_every_tab_and_survives_a_reload(chat, fake_groq, socket_client, received):
    edit = turn(chat.client, chat.events, fake_groq, "question two, better", "better answer", event="edit_message",
                message_id=chat.second["message_id"])
    _, other_events, _ = connect(socket_client, received, auth={"token": chat.session["token"]})
    other_events.wait("history")
    seen = {id(events): len(events.of("history")) for events in (chat.events, other_events)}
    ack = chat.client.emit("switch_branch", {"message_id": chat.second["message_id"]}, callback=True)
    assert ack["ok"] is True and ack["leaf_id"] == chat.second["reply_id"]
    old_path = [("question one", 1, 1), ("answer one", 1, 1), ("question two", 1, 2), ("answer two", 1, 1)]
    for events in (chat.events, other_events):  # the other tab follows the switch
        assert versions(history_after(events, seen[id(events)])) == old_path
    _, reloaded, _ = connect(socket_client, received, auth={"token": chat.session["token"]})
    assert versions(reloaded.wait("history")) == old_path
    # And back: the newest path under the edited version.
    seen = len(chat.events.of("history"))
    chat.client.emit("switch_branch", {"message_id": edit["message_id"]}, callback=True)
    assert versions(history_after(chat.events, seen))[2:] == [("question two, better", 2, 2), ("better answer", 1, 1)]
    _, again, _ = connect(socket_client, received, auth={"token": chat.session["token"]})
    assert [m["id"] for m in again.wait("history")["messages"]][-1] == edit["reply_id"]


def test_switch_branch_to_an_inner_message_picks_the_newest_leaf_under_it(chat, fake_groq):
    edit = turn(chat.client, chat.events, fake_groq, "question two, better", "better answer", event="edit_message",
                message_id=chat.second["message_id"])
    chat.client.emit("switch_branch", {"message_id": chat.second["message_id"]}, callback=True)
    seen = len(chat.events.of("history"))
    ack = chat.client.emit("switch_branch", {"message_id": chat.first["message_id"]}, callback=True)
    assert ack["leaf_id"] == edit["reply_id"]
    assert history_after(chat.events, seen)["messages"][-1]["content"] == "better answer"


def test_switch_branch_while_a_reply_streams_is_busy(chat, fake_groq):
    fake_groq.script(text="slow", hold_after=1)
    ack = chat.client.emit("user_message", {"message": "hold on"}, callback=True)
    fake_groq.wait_for_requests(3)
    result = chat.client.emit("switch_branch", {"message_id": chat.second["message_id"]}, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "busy"
    fake_groq.release()
    chat.events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])


def test_edit_while_a_reply_streams_is_busy_and_stores_nothing(chat, fake_groq, app):
    fake_groq.script(text="slow", hold_after=1)
    ack = chat.client.emit("user_message", {"message": "hold on"}, callback=True)
    fake_groq.wait_for_requests(3)
    result = chat.client.emit("edit_message", {"message_id": chat.second["message_id"], "message": "x"},
                              callback=True)
    assert result["ok"] is False and result["error"]["code"] == "busy"
    fake_groq.release()
    chat.events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    assert len(app.extensions["chatbot"].store.tree(chat.session["session_id"], chat.conversation_id)[1]) == 6


def test_edit_resend_with_the_same_client_id_is_answered_once(chat, fake_groq):
    payload = {"message_id": chat.second["message_id"], "message": "once", "client_id": "edit-1"}
    fake_groq.script(text="edited")
    first = chat.client.emit("edit_message", payload, callback=True)
    chat.events.wait("bot_message", lambda d: d.get("reply_id") == first["reply_id"])
    again = chat.client.emit("edit_message", payload, callback=True)
    assert again["duplicate"] is True and (again["message_id"], again["reply_id"]) == (first["message_id"],
                                                                                        first["reply_id"])
    assert len(fake_groq.requests) == 3


def test_edit_of_a_reply_is_refused(chat):
    result = chat.client.emit("edit_message", {"message_id": chat.second["reply_id"], "message": "mine now"},
                              callback=True)
    assert result["ok"] is False and result["error"]["code"] == "invalid_message"


def test_load_more_walks_up_the_active_path(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(HISTORY_PAGE=3)
    client = socketio.test_client(app)
    events = received(client)
    session = events.wait("session_id")
    events.wait("history")
    acks = [turn(client, events, fake_groq, f"q{i}", f"a{i}") for i in range(3)]
    edit = turn(client, events, fake_groq, "q1 edited", "a1 edited", event="edit_message",
                message_id=acks[1]["message_id"])
    turn(client, events, fake_groq, "q3", "a3")
    again = socketio.test_client(app, auth={"token": session["token"]})
    page = received(again).wait("history")
    assert [m["content"] for m in page["messages"]] == ["a1 edited", "q3", "a3"] and page["more"] is True
    older = again.emit("load_more", {"conversation_id": edit["conversation_id"],
                                     "before_id": page["messages"][0]["id"]}, callback=True)
    assert [m["content"] for m in older["messages"]] == ["q0", "a0", "q1 edited"] and older["more"] is False
    assert [m["version"] for m in older["messages"]] == [1, 1, 2]


def test_export_json_holds_the_tree_and_markdown_the_active_path(chat, fake_groq, app):
    edit = turn(chat.client, chat.events, fake_groq, "question two, better", "better answer", event="edit_message",
                message_id=chat.second["message_id"])
    web = app.test_client()
    headers = {"Authorization": f"Bearer {chat.session['token']}"}
    base = f"/conversations/{chat.conversation_id}/export"
    exported = json.loads(web.get(base + ".json", headers=headers).data)
    assert exported["conversation"]["active_leaf_id"] == edit["reply_id"]
    assert [(m["content"], m["parent_id"] is None) for m in exported["messages"]][:2] == [("question one", True),
                                                                                          ("answer one", False)]
    assert {m["content"] for m in exported["messages"]} >= {"question two", "answer two", "better answer"}
    markdown = web.get(base + ".md", headers=headers).data.decode()
    assert "question two, better" in markdown and "better answer" in markdown
    assert "answer two" not in markdown


def test_delete_conversation_removes_its_whole_tree(chat, fake_groq, app):
    from chatbot.store import messages

    turn(chat.client, chat.events, fake_groq, "question two, better", "better answer", event="edit_message",
         message_id=chat.second["message_id"])
    assert chat.client.emit("delete_conversation", {"conversation_id": chat.conversation_id}, callback=True)["ok"]
    store = app.extensions["chatbot"].store
    with store.engine.connect() as conn:
        left = conn.scalar(sa.select(sa.func.count()).where(messages.c.conversation_id == chat.conversation_id))
    assert left == 0
    assert store.search(chat.session["session_id"], "answer") == []


@pytest.mark.parametrize(("event", "extra"), [
    ("edit_message", {"message": "taken over"}),
    ("switch_branch", {}),
])
def test_foreign_message_id_is_not_found(chat, socket_client, received, app, event, extra):
    intruder, intruder_events, _ = connect(socket_client, received)
    intruder_events.wait("history")
    for message_id in (chat.second["message_id"], chat.second["reply_id"], 10**6):
        result = intruder.emit(event, {"message_id": message_id, **extra}, callback=True)
        assert result["ok"] is False and result["error"]["code"] == "not_found"
    assert "question two" not in repr(intruder_events.events)
    store = app.extensions["chatbot"].store
    leaf, tree = store.tree(chat.session["session_id"], chat.conversation_id)
    assert leaf == chat.second["reply_id"] and len(tree) == 4


@pytest.mark.parametrize(("event", "payload"), [
    ("edit_message", {"message": "x"}),
    ("edit_message", {"message_id": "1", "message": "x"}),
    ("edit_message", {"message_id": True, "message": "x"}),
    ("edit_message", {"message_id": -3, "message": "x"}),
    ("edit_message", {"message_id": 2**70, "message": "x"}),
    ("edit_message", {"message_id": 1}),
    ("edit_message", {"message_id": 1, "message": "   "}),
    ("edit_message", {"message_id": 1, "message": "a\x00b"}),
    ("edit_message", {"message_id": 1, "message": "x", "client_id": "no spaces allowed"}),
    ("edit_message", ["not", "an", "object"]),
    ("switch_branch", {}),
    ("switch_branch", {"message_id": 1.5}),
    ("switch_branch", {"message_id": None}),
    ("switch_branch", "x"),
])
def test_new_events_refuse_bad_payloads(socket_client, received, event, payload):
    client, events, _ = connect(socket_client, received)
    result = client.emit(event, payload, callback=True)
    assert result["ok"] is False and result["error"]["code"] == "invalid_message"
    assert client.emit("list_conversations", {}, callback=True)["ok"] is True  # the socket still works


def test_edit_of_an_over_long_message_is_refused(chat):
    result = chat.client.emit("edit_message", {"message_id": chat.second["message_id"], "message": "x" * 5000},
                              callback=True)
    assert result["ok"] is False and result["error"]["code"] == "message_too_long"


# ---- the store directly ---------------------------------------------------------------------------------------


@pytest.fixture
def store(app):
    """The app's store."""
    return app.extensions["chatbot"].store


def finish(store, started, text):
    """The final write of a turn's reply: `text`, complete."""
    store.finish_reply(started.reply["id"], user_id=None, tokens=0, content=text, status="complete")


def test_store_switch_branch_of_another_owner_is_not_found(store):
    from chatbot.store import NotFound

    owner, conversation = store.create_session()
    message, _ = storekit.turn(store, owner, conversation["id"], "mine", "yours")
    intruder, _ = store.create_session()
    for bad in (message["id"], 0, -1, 2**31, "1", None):
        with pytest.raises(NotFound):
            store.switch_branch(intruder, bad, 10)
    assert store.get_active_conversation(intruder) != conversation["id"]


def test_store_switch_branch_goes_to_the_newest_leaf_not_the_newest_child(store):
    owner, conversation = store.create_session()
    first = store.begin_turn(owner, conversation["id"], "q", client_id=None, context_limit=10)
    finish(store, first, "a1")
    second = store.begin_regenerate(owner, conversation["id"], context_limit=10)  # a2: the newest child of q
    finish(store, second, "a2")
    store.switch_branch(owner, first.reply["id"], 10)
    later = store.begin_turn(owner, conversation["id"], "q2", client_id=None, context_limit=10)  # under a1
    finish(store, later, "later")
    store.switch_branch(owner, second.reply["id"], 10)
    branch = store.switch_branch(owner, first.message["id"], 10)
    assert branch.leaf_id == later.reply["id"]
    assert [(m["content"], m["version"], m["versions"]) for m in branch.messages] == [
        ("q", 1, 1), ("a1", 1, 2), ("q2", 1, 1), ("later", 1, 1)]
    assert [m["content"] for m in store.active_path(owner, conversation["id"])] == ["q", "a1", "q2", "later"]
