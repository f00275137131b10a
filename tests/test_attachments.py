"""Files in turns, through the app and the fake Groq: documents give numbered excerpts (the asked page, not the whole
document) and `sources`; they stay available to later turns; pictures reach only models that see, stripped of
EXIF; attachments are owner-checked and shown in history; edits keep or change them."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from chatbot.providers.groq import DEFAULT_MODEL
from tests import files_kit
from tests.conftest import wait_until
from tests.files_kit import tus_upload


def long_page(number: int) -> str:
    """A page of ordinary prose (~700 characters) with one word only this page has."""
    filler = ("The committee reviewed the quarterly figures and agreed that the budget should be spent carefully, "
              "with every department reporting its progress at the next meeting. ") * 4
    return f"{files_kit.page_text(number)} {filler}"


class Session:
    """One socket session with its bearer header and events."""

    def __init__(self, app, socket_client, received):
        """Connect and keep the session's token."""
        self.app, self.client = app, socket_client()
        self.events = received(self.client)
        self.auth = {"Authorization": f"Bearer {self.events.wait('session_id')['token']}"}
        self.http = app.test_client()

    def upload(self, data: bytes, name: str, pieces: int = 2) -> str:
        """Upload a file and wait until it is read; its id."""
        file_id = tus_upload(self.http, data, name, self.auth, pieces=pieces)

        def done():
            info = self.http.get(f"/files/{file_id}/info", headers=self.auth).get_json()
            return info if info["status"] in ("ready", "failed") else None

        assert wait_until(done, what="file processed")["status"] == "ready"
        return file_id

    def send(self, text: str, **fields) -> dict:
        """Emit user_message; its ack."""
        return self.client.emit("user_message", {"message": text, **fields}, callback=True)

    def final(self, reply_id: int) -> dict:
        """The final bot_message of a reply."""
        return self.events.wait("bot_message", lambda data: data.get("reply_id") == reply_id)


@pytest.fixture
def session(app, socket_client, received):
    """Factory: a new session of the default app."""
    return lambda: Session(app, socket_client, received)


@pytest.fixture
def vision(make_app, received):
    """A session of an app whose default model sees pictures (disconnected at the end)."""
    from chatbot import socketio

    app = make_app(VISION_MODELS=DEFAULT_MODEL)
    me = Session(app, lambda: socketio.test_client(app), received)
    yield me
    if me.client.is_connected():
        me.client.disconnect()


def excerpt_message(request: dict) -> str:
    """The system message carrying the excerpts in an upstream request ('' when there is none)."""
    return next((m["content"] for m in request["messages"][1:] if m["role"] == "system"), "")


def test_question_about_one_page_sends_that_page_and_cites_it(session, fake_groq):
    """A 40-page PDF uploaded in two PATCHes: asking about page 17 sends page 17 (not the whole document) as a
    numbered excerpt, and the final bot_message and the history carry the sources."""
    me = session()
    file_id = me.upload(files_kit.make_pdf(40, text=long_page), "report.pdf", pieces=2)
    fake_groq.script(text="Page 17 is about zebras [1].")
    ack = me.send("What does the report say about zebra017word?", attachments=[file_id])
    assert ack["ok"] is True, ack
    final = me.final(ack["reply_id"])
    sent = excerpt_message(fake_groq.requests[-1])
    assert "zebra017word" in sent and "[1] report.pdf, page 17" in sent
    assert sum(f"zebra{n:03d}word" in sent for n in range(1, 41)) < 10  # not the whole document
    assert "cite" in sent and fake_groq.requests[-1]["messages"][-1]["content"].startswith("What does the report")
    pages = [source["page"] for source in final["sources"]]
    assert pages[0] == 17 and final["sources"][0] == {
        "n": 1, "file_id": file_id, "name": "report.pdf", "page": 17,
        "excerpt": final["sources"][0]["excerpt"]} and "zebra017word" in final["sources"][0]["excerpt"]
    assert [source["n"] for source in final["sources"]] == list(range(1, len(pages) + 1))
    # Later turns still draw on the document; history shows the files and the sources.
    fake_groq.script(text="Page 3 too.")
    later = me.send("And what about zebra003word?")
    me.final(later["reply_id"])
    assert "zebra003word" in excerpt_message(fake_groq.requests[-1])
    me.client.emit("open_conversation", {"conversation_id": ack["conversation_id"]}, callback=True)
    history = me.events.wait("history", lambda data: len(data["messages"]) >= 4)
    first, reply = history["messages"][0], history["messages"][1]
    assert first["attachments"] == [{"id": file_id, "name": "report.pdf", "kind": "document",
                                     "mime": "application/pdf", "size": first["attachments"][0]["size"],
                                     "pages": 40}]
    assert reply["sources"] == final["sources"]


def test_small_document_goes_whole(session, fake_groq):
    """A short text file is sent whole as one excerpt."""
    me = session()
    file_id = me.upload(b"Opening hours: 9 to 17.\n\nClosed on Sundays.", "hours.txt", pieces=1)
    fake_groq.script(text="9 to 17 [1].")
    ack = me.send("When are you open?", attachments=[file_id])
    final = me.final(ack["reply_id"])
    assert "Closed on Sundays." in excerpt_message(fake_groq.requests[-1])
    assert [s["name"] for s in final["sources"]] == ["hours.txt"] and "page" not in final["sources"][0]


def test_picture_refused_for_a_model_that_cannot_see(session, fake_groq):
    """A picture to a text-only model: model_cannot_see, and nothing stored or asked upstream."""
    me = session()
    file_id = me.upload(files_kit.make_jpeg_with_gps(), "photo.jpg")
    before = len(fake_groq.requests)
    ack = me.send("What is in this photo?", attachments=[file_id], client_id="photo-1")
    assert ack["ok"] is False and ack["error"]["code"] == "model_cannot_see"
    assert len(fake_groq.requests) == before
    me.client.emit("open_conversation", {"conversation_id": me.events.wait("history")["conversation_id"]},
                   callback=True)
    assert me.events.of("history")[-1]["messages"] == []


def test_picture_reaches_a_vision_model_without_gps(vision, fake_groq):
    """A vision model gets the picture as an image_url part, re-encoded: no EXIF, no GPS."""
    me = vision
    file_id = me.upload(files_kit.make_jpeg_with_gps(), "photo.jpg")
    fake_groq.script(text="A red square.")
    ack = me.send("What is in this photo?", attachments=[file_id])
    assert ack["ok"] is True, ack
    me.final(ack["reply_id"])
    content = fake_groq.requests[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is in this photo?"}
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    data = base64.b64decode(url.split(",", 1)[1])
    assert not Image.open(io.BytesIO(data)).getexif() and b"SpyCam" not in data
    assert me.events.wait("history")  # the echo and history carry it as an attachment
    assert me.send("Thanks")["ok"] is True


def test_strangers_unready_failed_and_too_many(session, app, fake_groq):
    """Another session's file is not_found; an unfinished upload is file_not_ready; a failed one is
    file_unsupported with its reason; more than MAX_ATTACHMENTS is refused."""
    me, stranger = session(), session()
    theirs = stranger.upload(b"their secret notes", "notes.txt", pieces=1)
    ack = me.send("Read this", attachments=[theirs])
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    assert me.send("Read this", attachments=["nonsense"])["error"]["code"] == "not_found"
    pending = files_kit.tus_create(me.http, 100, "half.txt", me.auth).headers["Location"].rsplit("/", 1)[1]
    assert me.send("Read this", attachments=[pending])["error"]["code"] == "file_not_ready"
    broken = tus_upload(me.http, files_kit.make_encrypted_pdf(), "locked.pdf", me.auth)
    wait_until(lambda: me.http.get(f"/files/{broken}/info", headers=me.auth).get_json()["status"] == "failed")
    refused = me.send("Read this", attachments=[broken])
    assert refused["error"]["code"] == "file_unsupported" and "password-protected" in refused["error"]["message"]
    many = [me.upload(f"note {i}".encode(), f"n{i}.txt", pieces=1) for i in range(6)]
    assert me.send("Read these", attachments=many)["error"]["code"] == "invalid_message"
    assert len(fake_groq.requests) == 0


def test_edit_keeps_or_changes_files(session, fake_groq):
    """An edit without `attachments` keeps the message's files; with `attachments: []` it drops them."""
    me = session()
    file_id = me.upload(b"The secret word is pelican.", "word.txt", pieces=1)
    fake_groq.script(text="Pelican [1].", repeat=3)
    ack = me.send("What is the secret word?", attachments=[file_id])
    me.final(ack["reply_id"])
    kept = me.client.emit("edit_message", {"message_id": ack["message_id"], "message": "Tell me the word"},
                          callback=True)
    me.final(kept["reply_id"])
    assert "pelican" in excerpt_message(fake_groq.requests[-1])
    shown = me.events.wait("history", lambda data: any(m["id"] == kept["message_id"] for m in data["messages"]))
    assert [m for m in shown["messages"] if m["id"] == kept["message_id"]][0]["attachments"][0]["id"] == file_id
    dropped = me.client.emit("edit_message", {"message_id": ack["message_id"], "message": "Any word?",
                                              "attachments": []}, callback=True)
    me.final(dropped["reply_id"])
    assert excerpt_message(fake_groq.requests[-1]) == ""


def test_export_carries_files_and_sources(session, fake_groq):
    """JSON export: the files with their extracted text; Markdown: the attachments and sources listed."""
    me = session()
    file_id = me.upload(b"The secret word is pelican.", "word.txt", pieces=1)
    fake_groq.script(text="Pelican [1].")
    ack = me.send("What is the secret word?", attachments=[file_id])
    me.final(ack["reply_id"])
    conversation = ack["conversation_id"]
    exported = me.http.get(f"/conversations/{conversation}/export.json", headers=me.auth).get_json()
    assert exported["files"] == [{"id": file_id, "name": "word.txt", "kind": "document", "mime": "text/plain",
                                  "size": 27, "text": "The secret word is pelican."}]
    assert exported["messages"][0]["attachments"][0]["id"] == file_id
    assert exported["messages"][1]["sources"][0]["name"] == "word.txt"
    markdown = me.http.get(f"/conversations/{conversation}/export.md", headers=me.auth).get_data(as_text=True)
    assert "- word.txt (text/plain, 27 bytes)" in markdown and "- [1] word.txt" in markdown
    stranger = session()
    assert stranger.http.get(f"/conversations/{conversation}/export.json", headers=stranger.auth).status_code == 404


def test_files_without_words(vision, fake_groq):
    """A message may be files alone: the request gives it a sentence and the picture; blank text without files is
    still refused."""
    me = vision
    assert me.send("   ")["error"]["code"] == "invalid_message"
    file_id = me.upload(files_kit.make_png(), "screenshot.png")
    fake_groq.script(text="A blue rectangle.")
    ack = me.send("", attachments=[file_id])
    assert ack["ok"] is True, ack
    me.final(ack["reply_id"])
    content = fake_groq.requests[-1]["messages"][-1]["content"]
    assert content[0]["text"] == "(Sent without words: see the attached files.)"
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    fake_groq.script(text="Still blue.")
    later = me.send("And now?")
    me.final(later["reply_id"])
    earlier = fake_groq.requests[-1]["messages"][1]
    assert earlier == {"role": "user", "content": "(Sent without words: see the attached files.)"}


def test_picker_marks_vision_models_and_picking_one_lets_pictures_through(session, fake_groq):
    """list_models says which models see; after picking one for the conversation, the refused picture goes."""
    me = session()
    models = {m["id"]: m["vision"] for m in me.client.emit("list_models", {}, callback=True)["models"]}
    assert models["qwen/qwen3.6-27b"] is True and models[DEFAULT_MODEL] is False
    file_id = me.upload(files_kit.make_png(), "chart.png")
    assert me.send("What does the chart show?", attachments=[file_id])["error"]["code"] == "model_cannot_see"
    conversation = me.events.wait("history")["conversation_id"]
    assert me.client.emit("set_model", {"conversation_id": conversation, "model": "qwen/qwen3.6-27b"},
                          callback=True)["ok"] is True
    fake_groq.script(text="Bars going up.")
    ack = me.send("What does the chart show?", attachments=[file_id])
    assert ack["ok"] is True, ack
    me.final(ack["reply_id"])
    assert fake_groq.requests[-1]["model"] == "qwen/qwen3.6-27b"
    assert fake_groq.requests[-1]["messages"][-1]["content"][1]["type"] == "image_url"
