"""The store's account queries on SQLite and Postgres: users and their conversation space, session versions,
one-time links, adopting anonymous conversations, hourly usage and the quota inside a turn's transaction."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from chatbot.store import LinkInvalid, QuotaExceeded, Store, UsernameTaken, reply_tokens
from chatbot.store.schema import usage_hourly
from tests import storekit


@pytest.fixture
def store(database_url):
    """A migrated store on a fresh database."""
    store = Store(database_url)
    store.migrate()
    yield store
    store.close()


def user(store: Store, name: str, **options) -> dict:
    """Create an account (active unless told otherwise)."""
    return store.create_user(name, "hash", pending=options.pop("pending", False), **options)


def test_accounts_first_is_admin_then_users_pending_or_active(store):
    first, second, third = user(store, "a"), user(store, "b", pending=True), user(store, "c")
    assert (first["role"], first["state"]) == ("admin", "active")
    assert (second["role"], second["state"], third["state"]) == ("user", "pending", "active")
    assert first["owner_id"] != second["owner_id"] and first["session_version"] == 1


def test_accounts_two_first_signups_at_once_make_one_admin(store):
    results: list[dict] = []
    threads = [threading.Thread(target=lambda n=n: results.append(user(store, f"racer{n}"))) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["role"] for r in results) == ["admin", "user", "user", "user"]


@pytest.mark.parametrize("name", ["Alice", "ALICE", "alice", "  alice "])
def test_accounts_names_are_unique_case_insensitively(store, name):
    user(store, "alice")
    with pytest.raises(UsernameTaken):
        user(store, name)
    assert store.find_user(name)["username"] == "alice"


@pytest.mark.parametrize("name", ["", "   ", "x" * 255, None, 7])
def test_accounts_bad_names_are_refused(store, name):
    with pytest.raises(ValueError):
        user(store, name)
    assert store.count_users() == 0


def test_accounts_versions_bump_on_signout_everywhere_password_and_disable(store):
    account = user(store, "alice")
    store.end_sessions(account["id"])
    store.set_password_hash(account["id"], "new", end_sessions=True)
    store.set_password_hash(account["id"], "rehashed", end_sessions=False)
    store.set_user_state(account["id"], "disabled")
    state = store.login_state(account["id"])
    assert (state.session_version, state.state, state.active) == (4, "disabled", False)
    assert store.login_states([account["id"], "f" * 32, "junk"]) == {account["id"]: ("disabled", 4)}


def test_accounts_unknown_ids_are_lookup_errors(store):
    for change in (store.end_sessions, store.delete_user, lambda i: store.set_user_role(i, "admin")):
        with pytest.raises(LookupError):
            change("0" * 32)
    assert store.login_state("nonsense") is None and store.get_user("0" * 32) is None


def test_accounts_delete_takes_conversations_usage_and_links(store):
    admin, bob = user(store, "admin"), user(store, "bob")
    conversation = store.create_conversation(bob["owner_id"])
    storekit.turn(store, bob["owner_id"], conversation["id"], "hi", "hello")
    with store._transaction() as conn:
        store._count_usage(conn, bob["id"], 10)
    store.create_link("reset", created_by=admin["id"], user_id=bob["id"], ttl_seconds=60)
    store.delete_user(bob["id"])
    assert not storekit.owner_exists(store, bob["owner_id"]) and store.get_user(bob["id"]) is None
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(usage_hourly)) == 0
    assert store.find_user("admin") is not None


def test_links_work_once_and_expire(store):
    admin = user(store, "admin")
    token = store.create_link("invite", created_by=admin["id"], ttl_seconds=3600)
    assert store.check_link(token, "invite") is not None and store.check_link(token, "reset") is None
    user(store, "guest", invite=token)
    assert store.check_link(token, "invite") is None
    with pytest.raises(LinkInvalid):
        user(store, "second-guest", invite=token)
    assert store.find_user("second-guest") is None  # the refused invitation rolled the account back
    expired = store.create_link("invite", created_by=admin["id"], ttl_seconds=0)
    assert store.check_link(expired, "invite") is None
    with pytest.raises(LinkInvalid):
        store.reset_password("not-a-token", "hash")


def test_links_reset_sets_the_hash_and_ends_sessions(store):
    admin, bob = user(store, "admin"), user(store, "bob")
    token = store.create_link("reset", created_by=admin["id"], user_id=bob["id"], ttl_seconds=60)
    assert store.reset_password(token, "fresh") == bob["id"]
    after = store.find_user("bob")
    assert after["password_hash"] == "fresh" and after["session_version"] == 2
    with pytest.raises(LinkInvalid):
        store.reset_password(token, "again")


def test_adopt_moves_only_an_anonymous_owners_conversations(store):
    alice, bob = user(store, "alice"), user(store, "bob")
    anonymous, conversation = store.create_session()
    assert store.adopt_conversations(alice["owner_id"], bob["owner_id"]) == 0  # an account is never taken from
    assert store.adopt_conversations(alice["owner_id"], anonymous) == 1
    assert store.get_conversation(alice["owner_id"], conversation["id"])["id"] == conversation["id"]
    assert store.get_active_conversation(alice["owner_id"]) == conversation["id"]
    assert not storekit.owner_exists(store, anonymous) and storekit.owner_exists(store, bob["owner_id"])


def test_usage_counts_per_hour_and_sums_the_windows(store):
    alice = user(store, "alice")
    user(store, "bob")
    reply = start_reply(store, alice)
    store.finish_reply(reply["id"], user_id=alice["id"], tokens=40, content="done", status="complete")
    store.finish_reply(reply["id"], user_id=alice["id"], tokens=2, status="complete")
    with store.engine.begin() as conn:  # an hour two days ago, and one two months ago (past the 30 days)
        for days, tokens in ((2, 100), (60, 999)):
            conn.execute(sa.insert(usage_hourly).values(user_id=alice["id"], messages=1, tokens=tokens,
                                                        hour=_hours_ago(24 * days)))
    figures = {row["username"]: row for row in store.users_with_usage()}
    assert (figures["alice"]["messages_24h"], figures["alice"]["tokens_24h"]) == (2, 42)
    assert (figures["alice"]["messages_30d"], figures["alice"]["tokens_30d"]) == (3, 142)
    assert figures["bob"]["tokens_30d"] == 0 and storekit.tokens_today(store, alice["id"]) == 42
    assert store.delete_old_usage() == 1


def test_quota_is_checked_in_the_turn_transaction(store):
    alice = user(store, "alice")
    conversation = store.create_conversation(alice["owner_id"])
    with store._transaction() as conn:
        store._count_usage(conn, alice["id"], 100)
    store.begin_turn(alice["owner_id"], conversation["id"], "no quota asked", client_id=None, context_limit=5)
    with pytest.raises(QuotaExceeded) as refused:
        store.begin_turn(alice["owner_id"], conversation["id"], "over", client_id=None, context_limit=5, quota=100)
    assert (refused.value.limit, refused.value.used) == (100, 100)
    assert refused.value.resets_at.hour == 0 and refused.value.resets_at.minute == 0
    assert store.get_conversation(alice["owner_id"], conversation["id"])["message_count"] == 2  # nothing stored
    store.set_daily_token_limit(alice["id"], 500)
    store.begin_turn(alice["owner_id"], conversation["id"], "override", client_id=None, context_limit=5, quota=100)
    store.set_daily_token_limit(alice["id"], 0)  # 0: no limit at all
    store.begin_turn(alice["owner_id"], conversation["id"], "unlimited", client_id=None, context_limit=5, quota=1)
    anonymous, anonymous_conversation = store.create_session()
    store.begin_turn(anonymous, anonymous_conversation["id"], "anon", client_id=None, context_limit=5, quota=1)


@pytest.mark.parametrize(("usage", "text", "tokens"), [
    ({"total_tokens": 77}, "ignored", 77), (None, "12345678", 2), ({}, "", 0), ({"total_tokens": "x"}, "abcd", 1),
])
def test_reply_tokens_from_usage_or_text(usage, text, tokens):
    assert reply_tokens(usage, text) == tokens


def test_idle_owners_of_accounts_are_kept(store):
    account = user(store, "alice")
    anonymous, _ = store.create_session()
    assert store.delete_idle_owners(0) == 1
    assert storekit.owner_exists(store, account["owner_id"]) and not storekit.owner_exists(store, anonymous)


def start_reply(store: Store, account: dict) -> dict:
    """A streaming reply in a new conversation of the account."""
    conversation = store.create_conversation(account["owner_id"])
    return store.begin_turn(account["owner_id"], conversation["id"], "q", client_id=None, context_limit=5).reply


def _hours_ago(hours: float):
    """A UTC hour start `hours` ago."""
    from chatbot.store.usage import _hour, _now

    return _hour(_now() - timedelta(hours=hours))
