"""Projects: an owner's folders of conversations, with instructions every conversation in one sends. A
conversation is in at most one project (`conversations.project_id`); deleting a project keeps its conversations. A
project holds documents too (`project_files`), searched for every question asked in its conversations."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .files import _FILE_COLUMNS, _info, attachment_info
from .rows import NotFound, _check_text, _iso, _now, _valid_id, owned_row
from .schema import PROJECT_NAME_MAX, blobs, conversations, files, project_files, projects
from .settings import INSTRUCTIONS_MAX

PROJECTS_MAX = 200  # per owner
# Files a project holds: every question in it searches them all, and they share one excerpt budget
# (ATTACHMENT_CONTEXT_CHARS), so more would only dilute what each question is given.
PROJECT_FILES_MAX = 20


def clean_project_name(name: object) -> str:
    """Strip and collapse whitespace, cap the length; ValueError when nothing is left."""
    name = " ".join(_check_text(name, "name").split())[:PROJECT_NAME_MAX].rstrip()
    if not name:
        raise ValueError("name must not be empty")
    return name


def clean_instructions(text: object) -> str:
    """Instructions as stored (stripped; empty for none); ValueError when too long or not text."""
    text = _check_text(text, "instructions").strip()
    if len(text) > INSTRUCTIONS_MAX:
        raise ValueError(f"instructions must be at most {INSTRUCTIONS_MAX} characters")
    return text


def _project(row: sa.Row, held: list[dict]) -> dict:
    """Turn a projects row and its files (attachment descriptions) into the project dict."""
    return {"id": row.id, "name": row.name, "instructions": row.instructions, "pinned": row.pinned, "files": held,
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}


def _held_files(conn: Connection, project_ids: list[str]) -> dict[str, list[dict]]:
    """The files each of `project_ids` holds, in order, with their internal fields (files.py `_info`)."""
    if not project_ids:
        return {}
    query = (sa.select(project_files.c.project_id, *_FILE_COLUMNS)
             .join(files, files.c.id == project_files.c.file_id).join(blobs, blobs.c.id == files.c.blob_id)
             .join(projects, projects.c.id == project_files.c.project_id)
             .where(project_files.c.project_id.in_(project_ids), files.c.owner_id == projects.c.owner_id)
             .order_by(project_files.c.project_id, project_files.c.position))
    held: dict[str, list[dict]] = {}
    for row in conn.execute(query):
        held.setdefault(row.project_id, []).append(_info(row))
    return held


def _described(held: dict[str, list[dict]], project_id: str) -> list[dict]:
    """A project's files as its `files` field shows them: [{id, name, kind, mime, size, pages?}]."""
    return [attachment_info(info) for info in held.get(project_id, [])]


class ProjectQueries:
    """Project queries (mixed into Store, which provides `_transaction`)."""

    def create_project(self, owner_id: str, name: str, instructions: str = "") -> dict:
        """Create a project for the owner and return it; NotFound if the owner does not exist."""
        row = {"name": clean_project_name(name), "instructions": clean_instructions(instructions), "pinned": False}
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        now = _now()
        row.update(id=uuid.uuid4().hex, owner_id=owner_id, created_at=now, updated_at=now)
        try:
            with self._transaction() as conn:
                count = conn.scalar(sa.select(sa.func.count()).where(projects.c.owner_id == owner_id))
                if count >= PROJECTS_MAX:
                    raise ValueError(f"at most {PROJECTS_MAX} projects can be kept")
                conn.execute(sa.insert(projects).values(**row))
        except IntegrityError as err:
            raise NotFound(owner_id) from err
        return self.get_project(owner_id, row["id"])

    def get_project(self, owner_id: str, project_id: str) -> dict:
        """One of the owner's projects; NotFound if it is not the owner's."""
        with self._transaction(write=False) as conn:
            row = owned_row(conn, projects, owner_id, project_id)
            return _project(row, _described(_held_files(conn, [project_id]), project_id))

    def project_documents(self, owner_id: str, project_id: str | None) -> list[dict]:
        """The files one of the owner's projects holds, in order, as `files_info` gives them (blob_id, status,
        text_chars...); [] for no project or one that is not the owner's."""
        if not (project_id and _valid_id(owner_id) and _valid_id(project_id)):
            return []
        with self._transaction(write=False) as conn:
            owned = conn.scalar(sa.select(projects.c.id).where(projects.c.id == project_id,
                                                               projects.c.owner_id == owner_id))
            return _held_files(conn, [project_id]).get(project_id, []) if owned else []

    def list_projects(self, owner_id: str) -> list[dict]:
        """The owner's projects: pinned ones first, then by name."""
        if not _valid_id(owner_id):
            return []
        query = (sa.select(projects).where(projects.c.owner_id == owner_id)
                 .order_by(projects.c.pinned.desc(), sa.func.lower(projects.c.name), projects.c.created_at))
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).all()
            held = _held_files(conn, [row.id for row in rows])
            return [_project(row, _described(held, row.id)) for row in rows]

    def update_project(self, owner_id: str, project_id: str, *, name: str | None = None,
                       instructions: str | None = None, pinned: bool | None = None,
                       files: list[str] | None = None) -> dict:
        """Rename, re-instruct, (un)pin one of the owner's projects or replace the files it holds (None leaves a
        field as is); NotFound if the project or any file is not the owner's. Whether a file suits a project (a
        ready document) is the engine's to judge."""
        values: dict = {}
        if name is not None:
            values["name"] = clean_project_name(name)
        if instructions is not None:
            values["instructions"] = clean_instructions(instructions)
        if pinned is not None:
            if not isinstance(pinned, bool):
                raise ValueError("pinned must be true or false")
            values["pinned"] = pinned
        if files is not None:
            files = list(dict.fromkeys(files))  # a file held twice is held once
            if len(files) > PROJECT_FILES_MAX:
                raise ValueError(f"a project can hold at most {PROJECT_FILES_MAX} files")
        if not (_valid_id(owner_id) and _valid_id(project_id)):
            raise NotFound(project_id)
        with self._transaction() as conn:
            changed = conn.execute(sa.update(projects)
                                   .where(projects.c.id == project_id, projects.c.owner_id == owner_id)
                                   .values(updated_at=_now(), **values)).rowcount
            if not changed:
                raise NotFound(project_id)
            if files is not None:
                self._hold_files(conn, owner_id, project_id, files)
        return self.get_project(owner_id, project_id)

    @staticmethod
    def _hold_files(conn: Connection, owner_id: str, project_id: str, file_ids: list[str]) -> None:
        """Make `file_ids` (the owner's, else NotFound) the files the project holds, in that order."""
        wanted = [file_id for file_id in file_ids if _valid_id(file_id)]
        owned = set(conn.scalars(sa.select(files.c.id).where(files.c.owner_id == owner_id,
                                                               files.c.id.in_(wanted)))) if wanted else set()
        missing = [file_id for file_id in file_ids if file_id not in owned]
        if missing:
            raise NotFound(missing[0])
        conn.execute(sa.delete(project_files).where(project_files.c.project_id == project_id))
        if file_ids:
            conn.execute(sa.insert(project_files), [{"project_id": project_id, "file_id": file_id,
                                                     "position": position}
                                                    for position, file_id in enumerate(file_ids)])

    def delete_project(self, owner_id: str, project_id: str) -> None:
        """Delete one of the owner's projects; its conversations stay, in no project. NotFound if not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(project_id)):
            raise NotFound(project_id)
        with self._transaction() as conn:
            # Said here rather than left to the foreign keys, so it holds whatever a backend's key settings are.
            conn.execute(sa.delete(project_files).where(project_files.c.project_id.in_(
                sa.select(projects.c.id).where(projects.c.id == project_id, projects.c.owner_id == owner_id))))
            conn.execute(sa.update(conversations)
                         .where(conversations.c.project_id == project_id, conversations.c.owner_id == owner_id)
                         .values(project_id=None))
            deleted = conn.execute(sa.delete(projects).where(projects.c.id == project_id,
                                                             projects.c.owner_id == owner_id)).rowcount
            if not deleted:
                raise NotFound(project_id)
