"""Files on projects over the socket: `update_project {files}` takes the session's ready documents only, and a
project's documents are searched for every question asked in its conversations (and in no other)."""

from __future__ import annotations

import pytest

from tests import files_kit
from tests.conftest import wait_until
from tests.test_attachments import Session, excerpt_message


@pytest.fixture
def session(app, socket_client, received):
    """Factory: a new session of the default app."""
    return lambda: Session(app, socket_client, received)


def emit(me: Session, event: str, payload: dict) -> dict:
    """Emit an event on the session's socket; its ack."""
    return me.client.emit(event, payload, callback=True)


def test_a_projects_document_is_searched_in_its_conversations_only(session, fake_groq):
    me = session()
    text = b"Holiday policy: every employee gets 31 days of leave, booked through Marigold."
    handbook = me.upload(text, "handbook.txt", pieces=1)
    project = emit(me, "create_project", {"name": "HR"})["project"]
    held = emit(me, "update_project", {"project_id": project["id"], "files": [handbook]})
    assert held["ok"] is True, held
    assert held["project"]["files"] == [{"id": handbook, "name": "handbook.txt", "kind": "document",
                                         "mime": "text/plain", "size": len(text)}]
    assert me.events.wait("projects", lambda data: data["projects"][0]["files"])["projects"] == [held["project"]]
    assert emit(me, "list_projects", {})["projects"] == [held["project"]]
    inside = emit(me, "new_conversation", {})["conversation"]["id"]
    emit(me, "update_conversation", {"conversation_id": inside, "project_id": project["id"]})
    fake_groq.script(text="31 days [1].")
    ack = me.send("How many days of leave?", conversation_id=inside)
    assert ack["ok"] is True, ack
    final = me.final(ack["reply_id"])
    sent = excerpt_message(fake_groq.requests[-1])
    assert "[1] handbook.txt" in sent and "31 days of leave" in sent
    assert [(s["n"], s["file_id"], s["name"]) for s in final["sources"]] == [(1, handbook, "handbook.txt")]
    # The conversation's own documents come first and share the numbering.
    own = me.upload(b"Team calendar: the offsite is in Lisbon.", "calendar.txt", pieces=1)
    fake_groq.script(text="Lisbon [1], 31 days [2].")
    both = me.final(me.send("Where is the offsite and how much leave?", conversation_id=inside,
                            attachments=[own])["reply_id"])
    assert [(s["n"], s["name"]) for s in both["sources"]] == [(1, "calendar.txt"), (2, "handbook.txt")]
    # A conversation outside the project never sees them.
    outside = emit(me, "new_conversation", {})["conversation"]["id"]
    fake_groq.script(text="No idea.")
    other = me.final(me.send("How many days of leave?", conversation_id=outside)["reply_id"])
    assert excerpt_message(fake_groq.requests[-1]) == "" and not other.get("sources")
    assert "Marigold" not in str(fake_groq.requests[-1])


def test_only_the_sessions_ready_documents_can_be_held(session, fake_groq):
    me, stranger = session(), session()
    project = emit(me, "create_project", {"name": "Docs"})["project"]
    mine = me.upload(b"my notes", "mine.txt", pieces=1)
    emit(me, "update_project", {"project_id": project["id"], "files": [mine]})

    def refused(files: list) -> dict:
        """The error of an update_project with `files` (which must change nothing)."""
        ack = emit(me, "update_project", {"project_id": project["id"], "files": files})
        assert ack["ok"] is False, ack
        assert [f["id"] for f in emit(me, "list_projects", {})["projects"][0]["files"]] == [mine]
        return ack["error"]

    theirs = stranger.upload(b"their secret notes", "notes.txt", pieces=1)
    foreign, unknown = refused([theirs]), refused(["f" * 32])
    assert foreign == unknown and foreign["code"] == "not_found"
    picture = me.upload(files_kit.make_png(), "photo.png")
    assert refused([mine, picture])["code"] == "file_unsupported"
    pending = files_kit.tus_create(me.http, 100, "half.txt", me.auth).headers["Location"].rsplit("/", 1)[1]
    assert refused([pending])["code"] == "file_not_ready"
    broken = files_kit.tus_upload(me.http, files_kit.make_encrypted_pdf(), "locked.pdf", me.auth)
    wait_until(lambda: me.http.get(f"/files/{broken}/info", headers=me.auth).get_json()["status"] == "failed")
    assert refused([broken])["code"] == "file_unsupported"
    # A stranger cannot fill the session's project, even with their own file.
    assert emit(stranger, "update_project", {"project_id": project["id"], "files": [theirs]})["error"]["code"] \
        == "not_found"
    assert emit(me, "update_project", {"project_id": project["id"], "files": []})["project"]["files"] == []
