"""The documents a project holds (chatbot.store.projects, project_files) on SQLite and, with TEST_DATABASE_URL, on
Postgres: replaced as a list, owner-scoped, and gone with the project, the file or the owner."""

from __future__ import annotations

import pytest

from chatbot.files.chunking import Chunk
from chatbot.store import NotFound
from chatbot.store.projects import PROJECT_FILES_MAX
from chatbot.store.schema import project_files
from tests.storekit import count_rows, new_owner
from tests.test_store_files import _message, upload


def document(store, owner, text: str, name: str = "doc.txt") -> dict:
    """A ready document of the owner with one chunk of `text`."""
    info = upload(store, owner, text.encode(), name)
    store.finish_document(info["blob_id"], "text/plain", None, [Chunk(0, text)])
    return store.file_info(owner, info["id"])


def test_a_project_holds_files_in_order_and_lists_them(store, owner):
    first, second = document(store, owner, "alpha", "a.txt"), document(store, owner, "beta", "b.txt")
    project = store.create_project(owner, "Docs")
    assert project["files"] == []
    held = store.update_project(owner, project["id"], files=[second["id"], first["id"], second["id"]])
    assert held["files"] == [
        {"id": second["id"], "name": "b.txt", "kind": "document", "mime": "text/plain", "size": 4},
        {"id": first["id"], "name": "a.txt", "kind": "document", "mime": "text/plain", "size": 5}]
    assert store.list_projects(owner)[0]["files"] == held["files"] == store.get_project(owner, project["id"])["files"]
    assert [info["blob_id"] for info in store.project_documents(owner, project["id"])] == [
        second["blob_id"], first["blob_id"]]
    # Renaming leaves the files; a new list replaces them; [] empties it.
    assert store.update_project(owner, project["id"], name="Renamed")["files"] == held["files"]
    assert [f["id"] for f in store.update_project(owner, project["id"], files=[first["id"]])["files"]] == [
        first["id"]]
    assert store.update_project(owner, project["id"], files=[])["files"] == []
    assert count_rows(store, project_files) == 0


def test_foreign_and_unknown_files_are_not_found_and_change_nothing(store, owner):
    stranger = new_owner(store)
    mine, theirs = document(store, owner, "mine"), document(store, stranger, "theirs")
    project = store.create_project(owner, "Docs")
    store.update_project(owner, project["id"], files=[mine["id"]])
    for ids in ([theirs["id"]], [mine["id"], "f" * 32], ["nonsense"]):
        with pytest.raises(NotFound):
            store.update_project(owner, project["id"], files=ids)
    assert [f["id"] for f in store.get_project(owner, project["id"])["files"]] == [mine["id"]]
    # A stranger can neither fill nor read the owner's project.
    with pytest.raises(NotFound):
        store.update_project(stranger, project["id"], files=[theirs["id"]])
    assert store.project_documents(stranger, project["id"]) == []
    with pytest.raises(ValueError):
        store.update_project(owner, project["id"], files=[mine["id"]] + [
            document(store, owner, f"doc {n}")["id"] for n in range(PROJECT_FILES_MAX)])


def test_links_go_with_the_project_the_file_or_the_owner(store, owner):
    kept, deleted = document(store, owner, "kept"), document(store, owner, "deleted")
    project, other = store.create_project(owner, "One"), store.create_project(owner, "Two")
    store.update_project(owner, project["id"], files=[kept["id"], deleted["id"]])
    store.update_project(owner, other["id"], files=[kept["id"]])
    store.delete_file(owner, deleted["id"])
    assert [f["id"] for f in store.get_project(owner, project["id"])["files"]] == [kept["id"]]
    store.delete_project(owner, other["id"])
    assert count_rows(store, project_files) == 1
    assert store.file_info(owner, kept["id"])  # the file stays in the person's files
    store.delete_idle_owners(0)
    assert count_rows(store, project_files) == 0


def test_a_file_a_project_holds_outlives_its_deleted_conversation(store, owner):
    held = document(store, owner, "held")
    conversation = store.create_conversation(owner)["id"]
    store.attach_files(owner, _message(store, owner, conversation), [held["id"]])
    project = store.create_project(owner, "Keep")
    store.update_project(owner, project["id"], files=[held["id"]])
    store.delete_conversation(owner, conversation)
    assert store.file_info(owner, held["id"])["status"] == "ready"
    assert [f["id"] for f in store.get_project(owner, project["id"])["files"]] == [held["id"]]
