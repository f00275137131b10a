"""The file store and the chunk index on SQLite and Postgres: uploads in pieces, dedupe, quota, expiry, deletion
with conversations and owners, attachments, owner scoping, retrieval by full text."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from chatbot.files.chunking import Chunk
from chatbot.store import NotFound, OffsetMismatch, StorageFull, UploadTooLong
from chatbot.store.schema import blob_parts, blobs, file_chunks
from tests.storekit import new_owner, turn

QUOTA = 10_000_000


def upload(store, owner, data: bytes, name: str = "a.txt", pieces: int = 2) -> dict:
    """Upload `data` in `pieces` PATCH-like appends and complete it; the file's info."""
    info = store.create_upload(owner, name, len(data), quota=QUOTA)
    step = max(1, -(-len(data) // pieces))
    offset = 0
    for start in range(0, len(data), step):
        offset = store.append_upload(owner, info["id"], offset, data[start:start + step])
    return store.complete_upload(owner, info["id"], hashlib.sha256(data).hexdigest())


def test_upload_in_pieces_reads_back_whole(store, owner):
    """Appends at the right offsets store the bytes; the blob reads back identical."""
    data = bytes(range(256)) * 10
    info = store.create_upload(owner, "data.bin", len(data), quota=QUOTA)
    assert (info["status"], info["received"], info["length"]) == ("uploading", 0, len(data))
    assert store.append_upload(owner, info["id"], 0, data[:1000]) == 1000
    assert store.file_info(owner, info["id"])["received"] == 1000
    assert store.append_upload(owner, info["id"], 1000, data[1000:]) == len(data)
    assert store.file_info(owner, info["id"])["status"] == "processing"  # complete: reading it comes next
    assert b"".join(store.blob_bytes(info["blob_id"])) == data
    done = store.complete_upload(owner, info["id"], hashlib.sha256(data).hexdigest())
    assert done["status"] == "processing"


def test_wrong_offset_and_too_long(store, owner):
    """An append elsewhere than the current offset is refused with the real offset; nothing past the length."""
    info = store.create_upload(owner, "a", 10, quota=QUOTA)
    store.append_upload(owner, info["id"], 0, b"12345")
    with pytest.raises(OffsetMismatch) as caught:
        store.append_upload(owner, info["id"], 0, b"12345")
    assert caught.value.offset == 5
    with pytest.raises(UploadTooLong):
        store.append_upload(owner, info["id"], 5, b"123456")
    assert store.file_info(owner, info["id"])["received"] == 5


def test_foreign_and_unknown_ids_are_not_found(store, owner):
    """Another owner's file does not exist for you, on every query."""
    stranger = new_owner(store)
    info = store.create_upload(owner, "a", 4, quota=QUOTA)
    for call in (lambda: store.file_info(stranger, info["id"]),
                 lambda: store.append_upload(stranger, info["id"], 0, b"ab"),
                 lambda: store.delete_file(stranger, info["id"]),
                 lambda: store.complete_upload(stranger, info["id"], "0" * 64),
                 lambda: store.file_info(owner, "f" * 32),
                 lambda: store.file_info(owner, "../etc")):
        with pytest.raises(NotFound):
            call()
    assert store.files_info(stranger, [info["id"]]) == []
    assert store.file_info(owner, info["id"])["received"] == 0


def test_quota_counts_announced_lengths(store, owner):
    """An upload that would pass the quota is refused at creation; deleting frees the room."""
    first = store.create_upload(owner, "a", 6000, quota=10_000)
    with pytest.raises(StorageFull) as caught:
        store.create_upload(owner, "b", 5000, quota=10_000)
    assert (caught.value.used, caught.value.quota) == (6000, 10_000)
    store.delete_file(owner, first["id"])
    assert store.storage_used(owner) == 0
    store.create_upload(owner, "b", 5000, quota=10_000)


def test_same_content_stored_once_per_owner(store, owner):
    """Two uploads of the same bytes keep their own ids and names but share one blob; another owner's does not."""
    first = upload(store, owner, b"same content here", "one.txt")
    second = upload(store, owner, b"same content here", "two.txt")
    assert first["id"] != second["id"] and second["name"] == "two.txt"
    assert first["blob_id"] == second["blob_id"]
    stranger = new_owner(store)
    assert upload(store, stranger, b"same content here")["blob_id"] != first["blob_id"]
    with store._transaction(write=False) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(blobs).where(blobs.c.owner_id == owner)) == 1
    store.delete_file(owner, first["id"])  # the bytes stay for the other file
    assert b"".join(store.blob_bytes(second["blob_id"])) == b"same content here"


def test_picture_bytes_replaced_and_failures_drop_bytes(store, owner):
    """A processed picture keeps only its re-encoded bytes; a failed file keeps its reason and no bytes."""
    picture = upload(store, owner, b"original with exif", "p.jpg")
    store.finish_picture(picture["blob_id"], "image/jpeg", b"clean" * 100_000)
    info = store.file_info(owner, picture["id"])
    assert (info["status"], info["kind"], info["size"]) == ("ready", "image", 500_000)
    assert b"".join(store.blob_bytes(picture["blob_id"])) == b"clean" * 100_000
    broken = upload(store, owner, b"broken pdf", "b.pdf")
    store.fail_blob(broken["blob_id"], "This PDF is password-protected.")
    info = store.file_info(owner, broken["id"])
    assert (info["status"], info["error"]) == ("failed", "This PDF is password-protected.")
    assert list(store.blob_bytes(broken["blob_id"])) == []


def test_unfinished_uploads_expire(store, owner):
    """Uploads idle too long before completion are deleted; finished ones stay; stuck processing fails."""
    idle = store.create_upload(owner, "idle", 10, quota=QUOTA)
    done = upload(store, owner, b"done")
    old = datetime.now(UTC) - timedelta(days=2)
    with store._transaction() as conn:
        conn.execute(sa.update(blobs).values(updated_at=old))
    assert store.expire_uploads(86400, stuck_seconds=3600) == 1
    with pytest.raises(NotFound):
        store.file_info(owner, idle["id"])
    assert store.file_info(owner, done["id"])["status"] == "failed"


def _message(store, owner, conversation_id, text="hello"):
    """A stored user message in the conversation (a finished turn, as the app writes it)."""
    return turn(store, owner, conversation_id, text, "answer")[0]["id"]


def test_attachments_and_conversation_deletion(store, owner):
    """Files carried by messages are listed per message; deleting the conversation deletes them and their bytes,
    while a file never attached stays."""
    conversation = store.create_conversation(owner)["id"]
    attached = upload(store, owner, b"attached doc")
    loose = upload(store, owner, b"never attached")
    message_id = _message(store, owner, conversation)
    described = store.attach_files(owner, message_id, [attached["id"]])
    assert described == [{"id": attached["id"], "name": "a.txt", "kind": None, "mime": None, "size": 12}]
    assert store.get_message(owner, message_id)["attachments"] == described
    store.delete_conversation(owner, conversation)
    with pytest.raises(NotFound):
        store.file_info(owner, attached["id"])
    assert store.file_info(owner, loose["id"])
    with store._transaction(write=False) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(blob_parts)
                           .where(blob_parts.c.blob_id == attached["blob_id"])) == 0


def test_attach_foreign_file_refused(store, owner):
    """A message cannot carry another owner's file."""
    stranger = new_owner(store)
    theirs = upload(store, stranger, b"their doc")
    conversation = store.create_conversation(owner)["id"]
    with pytest.raises(NotFound):
        store.attach_files(owner, _message(store, owner, conversation), [theirs["id"]])


def test_deleting_owner_deletes_files(store, owner):
    """An idle owner's files go with it (cascade)."""
    info = upload(store, owner, b"bytes")
    assert store.delete_idle_owners(0) == 1
    with store._transaction(write=False) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(blobs).where(blobs.c.id == info["blob_id"])) == 0


def test_best_chunks_by_full_text_owner_scoped(store, owner):
    """The chunk naming the question's rare word ranks first; another owner's chunks never come back; deleted
    chunks leave the index."""
    info = upload(store, owner, b"document")
    chunks = [Chunk(n, f"Page {n + 1} is about the topic zebra{n + 1:03d}word and nothing else.", n + 1, None)
              for n in range(40)]
    store.finish_document(info["blob_id"], "application/pdf", 40, chunks)
    assert store.file_info(owner, info["id"])["pages"] == 40
    best = store.best_chunks(owner, [info["blob_id"]], "What does the zebra017word page say?", limit=3)
    assert best[0]["page"] == 17 and "zebra017word" in best[0]["text"]
    assert store.best_chunks(new_owner(store), [info["blob_id"]], "zebra017word") == []
    assert store.best_chunks(owner, [info["blob_id"]], "\"' OR * NEAR( -- ;") == []
    assert len(store.blob_chunks(owner, info["blob_id"])) == 40
    store.delete_file(owner, info["id"])
    with store._transaction(write=False) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(file_chunks)) == 0
    assert store.best_chunks(owner, [info["blob_id"]], "zebra017word") == []


def test_sources_kept_with_reply(store, owner):
    """A reply's sources are stored beside it and read back."""
    conversation = store.create_conversation(owner)["id"]
    reply_id = turn(store, owner, conversation, "question", "answer [1]")[1]["id"]
    sources = [{"n": 1, "file_id": "a" * 32, "name": "x.pdf", "page": 3, "excerpt": "text"}]
    store.save_sources(reply_id, sources)
    assert store.get_message(owner, reply_id)["sources"] == sources
    assert store.active_path(owner, conversation)[-1]["sources"] == sources
