"""Nothing lost on reload, reconnect or restart: kill -9 mid-stream, exact resume, tabs, export, idle cleanup."""

from __future__ import annotations

import pytest
import requests

from chatbot.store import Store
from tests.conftest import wait_until
from tests.live_client import LiveClient
from tests.storekit import owner_exists

pytestmark = pytest.mark.server


def test_kill_9_mid_stream_keeps_user_message_and_partial_reply(live_server, fake_groq, tmp_path):
    server = live_server("eventlet", CHECKPOINT_SECONDS="0.05")
    client = LiveClient(server.url)
    session = client.wait("session_id")
    fake_groq.script(tokens=400, delay=0.005, hold_after=60)
    ack = client.call("user_message", {"message": "survive this", "client_id": "k9"})
    store = Store(server.env["DATABASE_URL"])
    try:
        # Wait until a checkpoint holds some of the reply, then pull the plug.
        wait_until(lambda: store.get_message(session["session_id"], ack["reply_id"])["content"], what="checkpoint")
        server.kill()
        client.close()
        fake_groq.release()
        checkpointed = store.get_message(session["session_id"], ack["reply_id"])
        assert checkpointed["status"] == "streaming"

        server.start()
        again = LiveClient(server.url, session["token"])
        assert again.wait("session_id")["session_id"] == session["session_id"]
        history = again.wait("history")["messages"]
        assert [m["content"] for m in history if m["role"] == "user"] == ["survive this"]
        reply = history[-1]
        assert reply["reply_id"] == ack["reply_id"] and reply["status"] == "interrupted"
        assert reply["content"] and fake_groq.last_text.startswith(reply["content"])
        # Resending the same client_id after the restart stores nothing new.
        resend = again.call("user_message", {"message": "survive this", "client_id": "k9"})
        assert resend["message_id"] == ack["message_id"]
        fake_groq.script(text="Back in business.")
        new = again.call("user_message", {"message": "still there?"})
        assert again.final(new["reply_id"])["message"] == "Back in business."
        again.close()
    finally:
        store.close()


def test_resume_after_disconnect_gives_exact_text(live_server, fake_groq):
    server = live_server("eventlet")
    client = LiveClient(server.url)
    session = client.wait("session_id")
    fake_groq.script(tokens=120, delay=0.002, hold_after=40)
    ack = client.call("user_message", {"message": "long one"})
    fake_groq.wait_streamed(40)
    client.wait("bot_delta", lambda d: d["reply_id"] == ack["reply_id"])
    seen = client.text_of(ack["reply_id"])
    last_seq = max(d["seq"] for d in client.of("bot_delta") if d["reply_id"] == ack["reply_id"])
    client.close()  # a network blip or a reload

    back = LiveClient(server.url, session["token"])
    history = back.wait("history")
    assert history["messages"][-1]["status"] == "streaming"
    assert back.call("resume", {"reply_id": ack["reply_id"], "after_seq": last_seq})["ok"] is True
    fake_groq.release()
    final = back.final(ack["reply_id"])
    assert seen + back.text_of(ack["reply_id"], after_seq=last_seq) == fake_groq.last_text == final["message"]
    back.close()


def test_two_tabs_both_see_the_live_reply_and_a_late_tab_resumes(live_server, fake_groq):
    server = live_server("gevent")
    tab1 = LiveClient(server.url)
    session = tab1.wait("session_id")
    tab2 = LiveClient(server.url, session["token"])
    tab2.wait("history")
    fake_groq.script(tokens=80, delay=0.002, hold_after=30)
    ack = tab1.call("user_message", {"message": "for every tab"})
    fake_groq.wait_streamed(30)
    tab3 = LiveClient(server.url, session["token"])
    streaming = tab3.wait("history")["messages"][-1]
    assert streaming["status"] == "streaming" and streaming["reply_id"] == ack["reply_id"]
    assert tab3.call("resume", {"reply_id": ack["reply_id"], "after_seq": -1}) == {"ok": True, "done": False}
    fake_groq.release()
    for tab in (tab1, tab2, tab3):
        final = tab.final(ack["reply_id"])
        assert tab.text_of(ack["reply_id"]) == final["message"] == fake_groq.last_text
        tab.close()


def test_history_survives_graceful_restart(live_server, fake_groq):
    server = live_server("eventlet")
    client = LiveClient(server.url)
    session = client.wait("session_id")
    ack = client.call("user_message", {"message": "keep me"})
    client.final(ack["reply_id"])
    client.close()
    server.stop()
    server.start()
    again = LiveClient(server.url, session["token"])
    messages = again.wait("history")["messages"]
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "keep me", "complete"), ("assistant", fake_groq.last_text, "complete")]
    again.close()


def test_export_markdown_and_json_are_owner_scoped(live_server, fake_groq):
    server = live_server("eventlet")
    client = LiveClient(server.url)
    session = client.wait("session_id")
    fake_groq.script(text="Exported **answer**.")
    ack = client.call("user_message", {"message": "export me"})
    client.final(ack["reply_id"])
    url = f"{server.url}/conversations/{ack['conversation_id']}/export"
    auth = {"Authorization": f"Bearer {session['token']}"}
    markdown = requests.get(url + ".md", headers=auth, timeout=5)
    assert markdown.status_code == 200 and "attachment" in markdown.headers["Content-Disposition"]
    assert "export me" in markdown.text and "Exported **answer**." in markdown.text
    exported = requests.get(url + ".json", headers=auth, timeout=5).json()
    assert [m["content"] for m in exported["messages"]] == ["export me", "Exported **answer**."]
    assert exported["conversation"]["id"] == ack["conversation_id"]

    intruder = LiveClient(server.url)
    foreign = {"Authorization": f"Bearer {intruder.wait('session_id')['token']}"}
    for suffix in (".md", ".json"):
        refused = requests.get(url + suffix, headers=foreign, timeout=5)
        assert refused.status_code == 404 and "export me" not in refused.text
    assert requests.get(url + ".md", timeout=5).status_code == 401
    assert requests.get(url + ".md", headers={"Authorization": "Bearer forged"}, timeout=5).status_code == 401
    assert requests.get(url + ".exe", headers=auth, timeout=5).status_code == 404
    # The page's cookie authorises the same download.
    browser = requests.Session()
    browser.get(server.url + "/", timeout=5)
    assert browser.get(url + ".md", timeout=5).status_code == 404
    client.close()
    intruder.close()


def test_cleanup_deletes_idle_sessions_with_their_data(app, socket_client, received):
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from chatbot import store as store_module

    client = socket_client()
    events = received(client)
    idle = events.wait("session_id")
    ack = client.emit("user_message", {"message": "old stuff"}, callback=True)
    events.wait("bot_message", lambda d: d.get("reply_id") == ack["reply_id"])
    fresh_client = socket_client()
    fresh_events = received(fresh_client)
    fresh = fresh_events.wait("session_id")
    ack_fresh = fresh_client.emit("user_message", {"message": "new stuff"}, callback=True)
    fresh_events.wait("bot_message", lambda d: d.get("reply_id") == ack_fresh["reply_id"])
    chat = app.extensions["chatbot"].chat
    with chat.store.engine.begin() as conn:
        conn.execute(sa.update(store_module.owners).where(store_module.owners.c.id == idle["session_id"])
                     .values(last_seen_at=datetime.now(UTC) - timedelta(days=400)))
    assert chat.conversations.cleanup() == 1
    assert not owner_exists(chat.store, idle["session_id"]) and owner_exists(chat.store, fresh["session_id"])
    with pytest.raises(store_module.NotFound):
        chat.store.get_conversation(idle["session_id"], ack["conversation_id"])


def test_history_budget_trims_context(make_app, received, fake_groq):
    from chatbot import socketio

    app = make_app(HISTORY_CHAR_BUDGET="100", SYSTEM_PROMPT="sys")
    client = socketio.test_client(app)
    events = received(client)
    events.wait("session_id")
    for index in range(4):
        fake_groq.script(text=f"answer {index} " + "z" * 40)
        ack = client.emit("user_message", {"message": f"question {index} " + "q" * 40}, callback=True)
        events.wait("bot_message", lambda d, reply=ack["reply_id"]: d.get("reply_id") == reply)
    sent = fake_groq.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "sys"}
    assert sum(len(m["content"]) for m in sent[1:]) <= 100
    assert sent[-1]["content"].startswith("question 3")
    client.disconnect()
