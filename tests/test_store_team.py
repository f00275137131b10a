"""The team layer's store (chatbot.store.settings, projects, shares) on SQLite and, with TEST_DATABASE_URL, on
Postgres: conversation settings, projects, share links and presets, every one owner-scoped."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from chatbot.store import NotFound, PresetNameTaken, TurnSettings, conversations
from chatbot.store.schema import shares
from chatbot.store.settings import turn_settings
from tests.storekit import count_rows, fill, new_owner, turn

OTHER = "0" * 32


# conversation settings


def test_settings_start_empty_and_are_stored(store, owner, conversation):
    assert {k: conversation[k] for k in ("instructions", "temperature", "max_tokens", "reasoning_effort",
                                         "project_id")} == dict.fromkeys(
        ("instructions", "temperature", "max_tokens", "reasoning_effort", "project_id"))
    updated = store.update_conversation_settings(owner, conversation["id"], {
        "instructions": "  Answer in French.  ", "temperature": 1, "max_tokens": 300, "reasoning_effort": "low"})
    assert (updated["instructions"], updated["temperature"], updated["max_tokens"], updated["reasoning_effort"]) \
        == ("Answer in French.", 1.0, 300, "low")
    assert store.get_conversation(owner, conversation["id"]) == updated
    assert store.list_conversations(owner)[0] == updated
    # A subset changes only itself; None and blank instructions go back to the default.
    again = store.update_conversation_settings(owner, conversation["id"], {"temperature": None, "instructions": " "})
    assert (again["instructions"], again["temperature"], again["max_tokens"]) == (None, None, 300)


@pytest.mark.parametrize("changes", [
    {"temperature": "hot"}, {"temperature": True}, {"temperature": float("nan")}, {"max_tokens": 0},
    {"max_tokens": 1.5}, {"max_tokens": 2**40}, {"instructions": 7}, {"instructions": "a\x00b"},
    {"instructions": "x" * 20_001}, {"reasoning_effort": ""}, {"reasoning_effort": "x" * 17}, {"model": "m"},
])
def test_settings_refuse_what_cannot_be_stored(store, owner, conversation, changes):
    with pytest.raises(ValueError):
        store.update_conversation_settings(owner, conversation["id"], changes)
    assert store.get_conversation(owner, conversation["id"]) == conversation


def settings_of_a_turn(store, owner, conversation_id):
    """The settings a turn in the conversation reads in its one transaction (and the conversation it reports)."""
    turn = store.begin_turn(owner, conversation_id, "hello", client_id=None, context_limit=10)
    return turn_settings(turn.conversation)


def test_a_turn_reads_the_settings_and_its_projects_instructions(store, owner, conversation):
    shown, settings = settings_of_a_turn(store, owner, conversation["id"])
    assert settings == TurnSettings(None, None, None, None, None)
    project = store.create_project(owner, "Docs", "Cite the handbook.")
    store.update_conversation_settings(owner, conversation["id"], {"project_id": project["id"],
                                                                   "instructions": "Be brief.", "max_tokens": 50})
    shown, settings = settings_of_a_turn(store, owner, conversation["id"])
    assert settings == TurnSettings("Cite the handbook.", "Be brief.", None, 50, None)
    # What clients are told of the conversation after the turn has the usual shape, and no project instructions.
    assert set(shown) == set(store.get_conversation(owner, conversation["id"]))
    assert shown["project_id"] == project["id"] and shown["instructions"] == "Be brief."
    other = store.create_conversation(owner)
    assert settings_of_a_turn(store, owner, other["id"])[1].project_instructions is None


# projects


def test_project_create_list_update_delete(store, owner, conversation):
    beta = store.create_project(owner, "  beta   team ")
    alpha = store.create_project(owner, "Alpha", "Use metric units.")
    assert beta["name"] == "beta team" and beta["instructions"] == "" and beta["files"] == []
    assert [p["name"] for p in store.list_projects(owner)] == ["Alpha", "beta team"]
    pinned = store.update_project(owner, beta["id"], pinned=True, name="Beta")
    assert pinned["pinned"] and pinned["name"] == "Beta"
    assert [p["name"] for p in store.list_projects(owner)] == ["Beta", "Alpha"]  # pinned first
    store.update_conversation_settings(owner, conversation["id"], {"project_id": alpha["id"]})
    store.delete_project(owner, alpha["id"])
    kept = store.get_conversation(owner, conversation["id"])
    assert kept["project_id"] is None  # the chat stays, outside any project
    assert [p["id"] for p in store.list_projects(owner)] == [beta["id"]]


def test_a_conversation_is_in_at_most_one_project(store, owner, conversation):
    first, second = store.create_project(owner, "one"), store.create_project(owner, "two")
    store.update_conversation_settings(owner, conversation["id"], {"project_id": first["id"]})
    moved = store.update_conversation_settings(owner, conversation["id"], {"project_id": second["id"]})
    assert moved["project_id"] == second["id"]
    assert store.update_conversation_settings(owner, conversation["id"], {"project_id": None})["project_id"] is None


@pytest.mark.parametrize("name", ["", "  ", None, 3, "a\x00"])
def test_project_refuses_bad_names(store, owner, name):
    with pytest.raises(ValueError):
        store.create_project(owner, name)


# shares


def test_share_snapshots_the_active_path_and_refreshes(store, owner, conversation):
    fill(store, owner, conversation["id"], ["hello <script>alert(1)</script>", "**hi**"])
    share = store.share_conversation(owner, conversation["id"], None)
    assert len(share["share_id"]) >= 32 and share["conversation_id"] == conversation["id"]
    fill(store, owner, conversation["id"], ["later", "reply"])
    seen = store.shared(share["share_id"])
    assert [(m["role"], m["content"]) for m in seen["messages"]] == [
        ("user", "hello <script>alert(1)</script>"), ("assistant", "**hi**")]
    assert "conversation_id" not in seen
    # Sharing again refreshes the same link with the path as it is now.
    again = store.share_conversation(owner, conversation["id"], None)
    assert again["share_id"] == share["share_id"]
    assert [m["content"] for m in store.shared(share["share_id"])["messages"]][-2:] == ["later", "reply"]
    assert [s["share_id"] for s in store.list_shares(owner)] == [share["share_id"]]


def test_share_leaves_out_other_branches_and_streaming_replies(store, owner, conversation):
    first, _ = turn(store, owner, conversation["id"], "first", "answer one")
    store.begin_turn(owner, conversation["id"], "edited", client_id=None, context_limit=10,
                     edit_of=first["id"])  # its reply still streams
    share = store.share_conversation(owner, conversation["id"], None)
    assert [m["content"] for m in store.shared(share["share_id"])["messages"]] == ["edited"]


def test_revoked_and_expired_shares_are_gone(store, owner, conversation):
    fill(store, owner, conversation["id"], ["hi", "hello"])
    share = store.share_conversation(owner, conversation["id"], None)
    store.revoke_share(owner, share["share_id"])
    assert store.shared(share["share_id"]) is None and store.list_shares(owner) == []
    with pytest.raises(NotFound):
        store.revoke_share(owner, share["share_id"])
    fresh = store.share_conversation(owner, conversation["id"], datetime.now(UTC) + timedelta(days=1))
    assert fresh["share_id"] != share["share_id"] and fresh["expires_at"] is not None
    with store.engine.begin() as conn:
        conn.execute(sa.update(shares).where(shares.c.id == fresh["share_id"])
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert store.shared(fresh["share_id"]) is None and store.list_shares(owner) == []


def test_deleting_the_conversation_deletes_its_links(store, owner, conversation):
    share = store.share_conversation(owner, conversation["id"], None)
    store.delete_conversation(owner, conversation["id"])
    assert store.shared(share["share_id"]) is None and count_rows(store, shares) == 0


def test_copy_share_makes_the_readers_own_conversation(store, owner, conversation):
    fill(store, owner, conversation["id"], ["question", "answer"])
    share = store.share_conversation(owner, conversation["id"], None)
    reader = new_owner(store)
    copy = store.copy_share(reader, share["share_id"])
    assert copy["message_count"] == 2 and store.get_active_conversation(reader) == copy["id"]
    assert [(m["role"], m["content"]) for m in store.active_path(reader, copy["id"])] == [
        ("user", "question"), ("assistant", "answer")]
    assert [r["title"] for r in store.search(reader, "answer")] == [copy["title"]]  # indexed like any other
    store.revoke_share(owner, share["share_id"])
    with pytest.raises(NotFound):
        store.copy_share(reader, share["share_id"])


# presets


def test_presets_save_list_replace_delete(store, owner):
    preset = store.save_preset(owner, "Terse", {"instructions": "One line.", "temperature": 0.2})
    assert preset["settings"] == {"instructions": "One line.", "temperature": 0.2, "max_tokens": None,
                                  "reasoning_effort": None}
    with pytest.raises(PresetNameTaken):
        store.save_preset(owner, "Terse", {})
    replaced = store.save_preset(owner, "Terse", {"max_tokens": 10}, replace=True)
    assert replaced["id"] == preset["id"] and replaced["settings"]["max_tokens"] == 10
    assert [p["name"] for p in store.list_presets(owner)] == ["Terse"]
    store.delete_preset(owner, preset["id"])
    assert store.list_presets(owner) == []


# owner scoping: another owner's ids behave exactly like ids that do not exist

SCOPED = {
    "update_conversation_settings": lambda s, o, ids: s.update_conversation_settings(o, ids["c"], {"temperature": 1}),
    "move_into_foreign_project": lambda s, o, ids: s.update_conversation_settings(
        o, s.create_conversation(o)["id"], {"project_id": ids["p"]}),
    "begin_turn": lambda s, o, ids: s.begin_turn(o, ids["c"], "hi", client_id=None, context_limit=10),
    "get_project": lambda s, o, ids: s.get_project(o, ids["p"]),
    "update_project": lambda s, o, ids: s.update_project(o, ids["p"], name="stolen"),
    "delete_project": lambda s, o, ids: s.delete_project(o, ids["p"]),
    "share_conversation": lambda s, o, ids: s.share_conversation(o, ids["c"], None),
    "revoke_share": lambda s, o, ids: s.revoke_share(o, ids["s"]),
    "get_preset": lambda s, o, ids: s.get_preset(o, ids["r"]),
    "delete_preset": lambda s, o, ids: s.delete_preset(o, ids["r"]),
}


@pytest.mark.parametrize("call", SCOPED.values(), ids=SCOPED.keys())
def test_team_store_other_owner_not_found(store, owner, conversation, call):
    project = store.create_project(owner, "mine", "secret instructions")
    store.update_conversation_settings(owner, conversation["id"], {"project_id": project["id"], "temperature": 0.3})
    share = store.share_conversation(owner, conversation["id"], None)
    preset = store.save_preset(owner, "mine", {})
    ids = {"c": conversation["id"], "p": project["id"], "s": share["share_id"], "r": preset["id"]}
    before = (store.get_conversation(owner, conversation["id"]), store.list_projects(owner),
              store.list_shares(owner), store.list_presets(owner))
    intruder = new_owner(store)
    with pytest.raises(NotFound):
        call(store, intruder, ids)
    assert before == (store.get_conversation(owner, conversation["id"]), store.list_projects(owner),
                      store.list_shares(owner), store.list_presets(owner))
    assert store.list_projects(intruder) == [] and store.list_shares(intruder) == []
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(conversations.c.project_id == project["id"],
                                                            conversations.c.owner_id == intruder)) == 0


@pytest.mark.parametrize("share_id", ["", "short", "x" * 65, "a b" * 10, None, 3, "../" * 8])
def test_unknown_share_ids_find_nothing(store, owner, share_id):
    assert store.shared(share_id) is None
    with pytest.raises(NotFound):
        store.revoke_share(owner, share_id)
    with pytest.raises(NotFound):
        store.copy_share(owner, share_id)
