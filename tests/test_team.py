"""The team layer over the socket and HTTP: conversation settings and projects in the upstream request, share links
and their page, presets, and owner scoping across sessions and accounts (a stranger's id is `not_found`)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.accounts_kit import CHEAP_ARGON2, Browser, text
from tests.test_events import final_of

SYSTEM = "You are a test bot."
SEARCH = {"type": "search", "arguments": {"query": "lyon weather"}, "output": "Sunny, 21 C",
          "search_results": {"results": [{"title": "Lyon", "url": "https://w.example/lyon", "content": "Sunny"}]}}


@pytest.fixture
def team_app(make_app):
    """An app in open mode with a known operator system prompt."""
    return make_app(SYSTEM_PROMPT=SYSTEM)


def open_tab(app, received, web: Browser | None = None, auth=None):
    """A connected socket (riding on a browser's cookies, or with a token) and its events, once `session_id` came."""
    from chatbot import socketio

    client = socketio.test_client(app, flask_test_client=web.client if web else None, auth=auth)
    events = received(client)
    session = events.wait("session_id")
    return client, events, session


def ask(client, events, text: str, conversation_id: str | None = None) -> dict:
    """Send a message and wait for its reply's final message; return the ack."""
    ack = client.emit("user_message", {"message": text, "conversation_id": conversation_id}, callback=True)
    assert ack["ok"], ack
    final_of(events, ack["reply_id"])
    return ack


def active_conversation(events) -> str:
    """The conversation the socket shows (its last `history`)."""
    return events.of("history")[-1]["conversation_id"]


def emit(client, event: str, payload: dict) -> dict:
    """Emit an event and return its ack."""
    return client.emit(event, payload, callback=True)


def share_path(ack: dict) -> str:
    """The path of a share link's page (the ack's URL names the socket's host)."""
    return urlsplit(ack["url"]).path


# ---- conversation settings -----------------------------------------------------------------------------------


def test_conversation_settings_reach_the_upstream_request_and_every_tab(team_app, received, fake_groq):
    client, events, session = open_tab(team_app, received)
    other_tab, other_events, _ = open_tab(team_app, received, auth={"token": session["token"]})
    conversation_id = active_conversation(events)
    ack = emit(client, "update_conversation", {"conversation_id": conversation_id, "instructions": "Answer in French.",
                                               "temperature": 0.4, "max_tokens": 77})
    assert ack["ok"] and ack["conversation"]["temperature"] == 0.4 and ack["conversation"]["max_tokens"] == 77
    told = other_events.wait("conversation_updated", lambda d: d["conversation"]["id"] == conversation_id)
    assert told["conversation"]["instructions"] == "Answer in French."
    ask(client, events, "Bonjour?")
    sent = fake_groq.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": f"{SYSTEM}\n\nAnswer in French."}
    assert (sent["temperature"], sent["max_completion_tokens"]) == (0.4, 77)
    # Back to the operator's defaults.
    emit(client, "update_conversation", {"conversation_id": conversation_id, "instructions": None,
                                         "temperature": None, "max_tokens": None})
    ask(client, events, "Again?")
    sent = fake_groq.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": SYSTEM}
    assert "temperature" not in sent and "max_completion_tokens" not in sent
    other_tab.disconnect()


@pytest.mark.parametrize("changes", [
    {"temperature": 7}, {"temperature": -0.1}, {"temperature": "1"}, {"temperature": True}, {"max_tokens": 0},
    {"max_tokens": 1.5}, {"max_tokens": 10**9}, {"reasoning_effort": "extreme"}, {"instructions": 5},
    {"instructions": "x" * 20_001},
])
def test_bad_settings_are_refused_and_nothing_changes(team_app, received, changes):
    client, events, _ = open_tab(team_app, received)
    conversation_id = active_conversation(events)
    ack = emit(client, "update_conversation", {"conversation_id": conversation_id, **changes})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_message", ack
    listed = emit(client, "list_conversations", {})["conversations"]
    assert [(c["temperature"], c["max_tokens"], c["instructions"], c["reasoning_effort"]) for c in listed] == [
        (None, None, None, None)]


def test_temperature_seven_is_refused_with_a_clear_sentence(team_app, received):
    client, events, _ = open_tab(team_app, received)
    ack = emit(client, "update_conversation", {"conversation_id": active_conversation(events), "temperature": 7})
    assert ack["error"] == {"code": "invalid_message", "message": "Temperature must be a number from 0 to 2."}


# ---- projects ------------------------------------------------------------------------------------------------


def test_project_instructions_go_to_its_conversations_only(team_app, received, fake_groq):
    client, events, session = open_tab(team_app, received)
    other_tab, other_events, _ = open_tab(team_app, received, auth={"token": session["token"]})
    inside = active_conversation(events)
    created = emit(client, "create_project", {"name": "Handbook", "instructions": "Cite the handbook."})
    project = created["project"]
    assert created["ok"] and project["name"] == "Handbook" and project["files"] == []
    assert other_events.wait("projects")["projects"][0]["id"] == project["id"]
    moved = emit(client, "update_conversation", {"conversation_id": inside, "project_id": project["id"],
                                                 "instructions": "Be brief."})
    assert moved["conversation"]["project_id"] == project["id"]
    ask(client, events, "In the project?", inside)
    assert fake_groq.requests[-1]["messages"][0]["content"] == f"{SYSTEM}\n\nCite the handbook.\n\nBe brief."
    outside = emit(client, "new_conversation", {})["conversation"]["id"]
    ask(client, events, "Outside?", outside)
    assert fake_groq.requests[-1]["messages"][0]["content"] == SYSTEM
    # Renamed and pinned; deleting it keeps its chat, outside any project.
    renamed = emit(client, "update_project", {"project_id": project["id"], "name": "Docs", "pinned": True})
    assert renamed["project"]["name"] == "Docs" and renamed["project"]["pinned"] is True
    assert emit(client, "list_projects", {})["projects"] == [renamed["project"]]
    assert emit(client, "delete_project", {"project_id": project["id"]}) == {"ok": True}
    listed = {c["id"]: c for c in emit(client, "list_conversations", {})["conversations"]}
    assert listed[inside]["project_id"] is None and listed[inside]["instructions"] == "Be brief."
    assert emit(client, "list_projects", {})["projects"] == []
    ask(client, events, "After the project?", inside)
    assert fake_groq.requests[-1]["messages"][0]["content"] == f"{SYSTEM}\n\nBe brief."
    other_tab.disconnect()


@pytest.mark.parametrize(("event", "payload"), [
    ("create_project", {}), ("create_project", {"name": "  "}), ("create_project", {"name": 3}),
    ("create_project", {"name": "ok", "instructions": ["x"]}), ("update_project", {"project_id": "a" * 32,
                                                                                   "pinned": "yes"}),
])
def test_bad_project_payloads_are_refused(team_app, received, event, payload):
    client, _, _ = open_tab(team_app, received)
    ack = emit(client, event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_message", ack


def test_unknown_project_files_are_not_found(team_app, received):
    client, _, _ = open_tab(team_app, received)
    project = emit(client, "create_project", {"name": "Files"})["project"]
    ack = emit(client, "update_project", {"project_id": project["id"], "files": ["f" * 32]})
    assert ack["error"]["code"] == "not_found"
    assert emit(client, "update_project", {"project_id": project["id"], "files": []})["project"]["files"] == []


# ---- share links ---------------------------------------------------------------------------------------------


HOSTILE = ('<script>alert("owned")</script> <img src=x onerror=alert(1)> **bold** '
           '![pixel](https://tracker.example/p.png) [click](javascript:alert(2))')


def test_share_link_shows_an_escaped_noindex_snapshot_to_anyone_until_unshared(team_app, received, fake_groq):
    client, events, _ = open_tab(team_app, received)
    private = emit(client, "new_conversation", {})["conversation"]["id"]
    ask(client, events, "A secret elsewhere", private)
    shared = emit(client, "new_conversation", {})["conversation"]["id"]
    fake_groq.script(text=HOSTILE, repeat=1)
    ask(client, events, "Show me <b>tags</b>", shared)
    ack = emit(client, "share_conversation", {"conversation_id": shared})
    assert ack["ok"] and ack["conversation_id"] == shared and ack["url"].endswith(f"/share/{ack['share_id']}")
    assert len(ack["share_id"]) >= 32 and ack["expires_at"] is None
    stranger = team_app.test_client()  # no cookie, no token
    page = stranger.get(share_path(ack))
    body = text(page)
    assert page.status_code == 200 and page.headers["X-Robots-Tag"].startswith("noindex")
    assert '<meta name="robots" content="noindex' in body
    assert "Set-Cookie" not in page.headers and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in body and "<script>alert" not in body
    assert "Show me &lt;b&gt;tags&lt;/b&gt;" in body and "onerror=alert(1)&gt;" in body
    assert "A secret elsewhere" not in body and "Continue in my chats" not in body
    # The snapshot is as it was: a later message shows only once the owner shares again (same link).
    ask(client, events, "A newer question", shared)
    assert "A newer question" not in text(stranger.get(share_path(ack)))
    again = emit(client, "share_conversation", {"conversation_id": shared, "expires_in_days": 7})
    assert again["share_id"] == ack["share_id"] and again["expires_at"] is not None
    assert "A newer question" in text(stranger.get(share_path(ack)))
    assert [s["share_id"] for s in emit(client, "list_shares", {})["shares"]] == [ack["share_id"]]
    assert emit(client, "unshare", {"share_id": ack["share_id"]}) == {"ok": True}
    gone = stranger.get(share_path(ack))
    assert gone.status_code == 404 and gone.headers["X-Robots-Tag"].startswith("noindex")
    assert emit(client, "list_shares", {})["shares"] == []
    assert emit(client, "unshare", {"share_id": ack["share_id"]})["error"]["code"] == "not_found"


@pytest.mark.parametrize("days", [0, -1, 366, "7", True])
def test_share_expiry_must_be_days_within_a_year(team_app, received, days):
    client, events, _ = open_tab(team_app, received)
    ack = emit(client, "share_conversation", {"conversation_id": active_conversation(events),
                                              "expires_in_days": days})
    assert ack["error"]["code"] == "invalid_message" and emit(client, "list_shares", {})["shares"] == []


@pytest.mark.parametrize("path", ["/share/" + "A" * 32, "/share/short", "/share/" + "x" * 80])
def test_unknown_share_pages_are_404(team_app, path):
    assert team_app.test_client().get(path).status_code == 404


def test_share_links_off_refuses_sharing_and_hides_every_page(make_app, received):
    public = make_app(SYSTEM_PROMPT=SYSTEM)
    client, events, _ = open_tab(public, received)
    ack = emit(client, "share_conversation", {"conversation_id": active_conversation(events)})
    off = make_app(SYSTEM_PROMPT=SYSTEM, SHARE_LINKS="off")
    assert off.test_client().get(share_path(ack)).status_code == 404
    off_client, off_events, _ = open_tab(off, received)
    refused = emit(off_client, "share_conversation", {"conversation_id": active_conversation(off_events)})
    assert refused["error"] == {"code": "invalid_message", "message": "Share links are turned off on this server."}


def test_continue_in_my_chats_copies_the_snapshot_for_a_reader_with_chats(team_app, received, fake_groq):
    client, events, _ = open_tab(team_app, received)
    ask(client, events, "Worth keeping")
    ack = emit(client, "share_conversation", {"conversation_id": active_conversation(events)})
    reader = Browser(team_app.test_client())
    reader.get("/")  # the reader's own chat session (its cookie)
    page = text(reader.get(share_path(ack)))
    assert "Continue in my chats" in page
    answer = reader.submit(share_path(ack) + "/continue", {}, form_page=share_path(ack))
    assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).path == "/"
    reader_tab, reader_events, _ = open_tab(team_app, received, web=reader)
    shown = reader_events.of("history")[-1]
    assert [(m["role"], m["content"]) for m in shown["messages"]][0] == ("user", "Worth keeping")
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["conversation_id"] != active_conversation(events)
    # A reader without chats (no cookie) gets no form, and a post without one is refused.
    assert team_app.test_client().post(share_path(ack) + "/continue").status_code in (400, 404)
    reader_tab.disconnect()


# ---- presets -------------------------------------------------------------------------------------------------


def test_a_preset_starts_a_new_chat_with_its_settings(team_app, received, fake_groq):
    client, events, _ = open_tab(team_app, received)
    saved = emit(client, "save_preset", {"name": "Terse", "settings": {"instructions": "One line.",
                                                                       "temperature": 0.1}})
    assert saved["ok"] and saved["preset"]["settings"]["temperature"] == 0.1
    assert emit(client, "save_preset", {"name": "Terse", "settings": {}})["error"]["code"] == "invalid_message"
    assert emit(client, "save_preset", {"name": "Hot", "settings": {"temperature": 9}})["error"]["code"] == \
        "invalid_message"
    started = emit(client, "new_conversation", {"preset_id": saved["preset"]["id"]})["conversation"]
    assert (started["instructions"], started["temperature"]) == ("One line.", 0.1)
    ask(client, events, "Hi", started["id"])
    assert fake_groq.requests[-1]["messages"][0]["content"] == f"{SYSTEM}\n\nOne line."
    assert [p["name"] for p in emit(client, "list_presets", {})["presets"]] == ["Terse"]
    assert emit(client, "delete_preset", {"preset_id": saved["preset"]["id"]}) == {"ok": True}
    assert emit(client, "list_presets", {})["presets"] == []


# ---- owner scoping -------------------------------------------------------------------------------------------

STRANGER_CALLS = {
    "update_conversation": lambda ids: ("update_conversation", {"conversation_id": ids["c"], "temperature": 1}),
    "into_foreign_project": lambda ids: ("update_conversation", {"conversation_id": ids["own"],
                                                                 "project_id": ids["p"]}),
    "update_project": lambda ids: ("update_project", {"project_id": ids["p"], "name": "stolen"}),
    "delete_project": lambda ids: ("delete_project", {"project_id": ids["p"]}),
    "share_conversation": lambda ids: ("share_conversation", {"conversation_id": ids["c"]}),
    "unshare": lambda ids: ("unshare", {"share_id": ids["s"]}),
    "delete_preset": lambda ids: ("delete_preset", {"preset_id": ids["r"]}),
    "new_conversation_from_preset": lambda ids: ("new_conversation", {"preset_id": ids["r"]}),
}


def owner_things(client, events) -> dict:
    """A conversation in a project, shared, and a preset: the ids a stranger will try."""
    conversation_id = active_conversation(events)
    project = emit(client, "create_project", {"name": "Mine", "instructions": "secret"})["project"]
    emit(client, "update_conversation", {"conversation_id": conversation_id, "project_id": project["id"]})
    share = emit(client, "share_conversation", {"conversation_id": conversation_id})
    preset = emit(client, "save_preset", {"name": "Mine", "settings": {"temperature": 1}})["preset"]
    return {"c": conversation_id, "p": project["id"], "s": share["share_id"], "r": preset["id"]}


def what_the_owner_has(client) -> tuple:
    """Everything the owner's lists say."""
    return tuple(emit(client, event, {}) for event in ("list_conversations", "list_projects", "list_shares",
                                                       "list_presets"))


@pytest.mark.parametrize("call", STRANGER_CALLS.values(), ids=STRANGER_CALLS.keys())
def test_a_strangers_ids_are_not_found_across_sessions(team_app, received, call):
    client, events, _ = open_tab(team_app, received)
    ids = owner_things(client, events)
    before = what_the_owner_has(client)
    stranger, stranger_events, _ = open_tab(team_app, received)
    ids["own"] = active_conversation(stranger_events)
    event, payload = call(ids)
    ack = emit(stranger, event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "not_found", ack
    assert what_the_owner_has(client) == before
    assert emit(stranger, "list_projects", {})["projects"] == [] and emit(stranger, "list_shares", {})["shares"] == []


def test_a_strangers_ids_are_not_found_across_accounts_and_share_pages_need_sign_in(make_app, received):
    app = make_app(AUTH_MODE="accounts", SIGNUP="open", RATE_LIMIT_SIGNIN="1000/minute",
                   RATE_LIMIT_SIGNIN_PER_IP="1000/minute", **CHEAP_ARGON2)
    alice, bob = Browser(app.test_client()), Browser(app.test_client())
    alice.signup("alice")
    bob.signup("bob")
    alice_tab, alice_events, _ = open_tab(app, received, web=alice)
    bob_tab, _, _ = open_tab(app, received, web=bob)
    ids = owner_things(alice_tab, alice_events)
    for event, payload in (("unshare", {"share_id": ids["s"]}), ("share_conversation", {"conversation_id": ids["c"]}),
                           ("update_project", {"project_id": ids["p"], "name": "x"}),
                           ("update_conversation", {"conversation_id": ids["c"], "instructions": "x"})):
        assert emit(bob_tab, event, payload)["error"]["code"] == "not_found", event
    assert [s["share_id"] for s in emit(alice_tab, "list_shares", {})["shares"]] == [ids["s"]]
    # SHARE_LINKS defaults to signed_in with accounts: nobody signed in is sent to sign in; bob may read it.
    page = f"/share/{ids['s']}"
    anonymous = app.test_client().get(page)
    assert anonymous.status_code == 302 and urlsplit(anonymous.headers["Location"]).path == "/signin"
    assert bob.get(page).status_code == 200
    alice_tab.disconnect()
    bob_tab.disconnect()


# ---- import --------------------------------------------------------------------------------------------------


def test_import_over_http_adds_the_chats_and_tells_every_tab(team_app, received):
    from pathlib import Path

    web = Browser(team_app.test_client())
    page = text(web.get("/"))
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    client, events, _ = open_tab(team_app, received, web=web)
    raw = (Path(__file__).parent / "data" / "chatgpt_conversations.json").read_bytes()
    answer = web.client.post("/conversations/import", data=raw, headers={"X-CSRFToken": token},
                             content_type="application/json")
    assert answer.status_code == 200 and answer.get_json()["imported"] == 2
    listed = events.wait("conversations", lambda d: len(d["conversations"]) == 3)
    assert {c["title"] for c in listed["conversations"]} >= {"Loquats and <b>tags</b>", "Second"}
    refused = web.client.post("/conversations/import", data=b'{"nope": 1}', headers={"X-CSRFToken": token},
                              content_type="application/json")
    assert refused.status_code == 400 and refused.get_json()["error"]["message"].startswith("Nothing was imported")
    assert len(emit(client, "list_conversations", {})["conversations"]) == 3
    # Without the page's CSRF token, or without a session, nothing happens.
    assert web.client.post("/conversations/import", data=raw, content_type="application/json").status_code == 400
    assert team_app.test_client().post("/conversations/import", data=raw, headers={"X-CSRFToken": token},
                                       content_type="application/json").status_code in (400, 401)
    assert len(emit(client, "list_conversations", {})["conversations"]) == 3


# ---- usage charts --------------------------------------------------------------------------------------------


def test_usage_figures_for_admins_and_each_account_its_own(make_app, received, fake_groq):
    app = make_app(AUTH_MODE="accounts", SIGNUP="open", RATE_LIMIT_SIGNIN="1000/minute",
                   RATE_LIMIT_SIGNIN_PER_IP="1000/minute", USER_DAILY_TOKENS="5000", **CHEAP_ARGON2)
    admin, bob = Browser(app.test_client()), Browser(app.test_client())
    admin.signup("root")  # the first account is the admin
    bob.signup("bob")
    tab, events, _ = open_tab(app, received, web=bob)
    fake_groq.script(text="Counted.", usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12})
    ask(tab, events, "count me")
    # A reply with one web search (a Groq built-in tool, run through the tool path) counts one tool call.
    conversation_id = active_conversation(events)
    assert emit(tab, "update_conversation", {"conversation_id": conversation_id, "tools": ["web_search"]})["ok"]
    fake_groq.script(executed_tools=[SEARCH], text="Sunny.", usage={"total_tokens": 3})
    ask(tab, events, "weather?", conversation_id)
    everyone = admin.get("/admin/usage.json")
    assert everyone.status_code == 200 and everyone.headers["Cache-Control"] == "no-store"
    figures = everyone.get_json()
    assert len(figures["days"]) == 30
    (model,) = figures["models"]
    assert figures["models"][model]["messages"][-1] == 2 and figures["models"][model]["tokens"][-1] == 15
    assert figures["models"][model]["tool_calls"] == [0] * 29 + [1]
    assert figures["users"]["bob"]["tokens"][-1] == 15 and figures["users"]["bob"]["tool_calls"] == [0] * 29 + [1]
    assert bob.get("/admin/usage.json").status_code == 403
    own = bob.get("/account/usage.json").get_json()
    assert own["models"] == {} and set(own["users"]) == {"bob"} and own["daily_tokens"] == 5000
    assert own["users"]["bob"]["tool_calls"][-1] == 1 and own["users"]["bob"]["messages"][-1] == 2
    assert admin.get("/account/usage.json").get_json()["users"] == {}
    assert app.test_client().get("/account/usage.json").status_code == 404
    tab.disconnect()
