"""Projects: an owner's folders of conversations, with instructions every conversation in one sends. A
conversation is in at most one project (`conversations.project_id`); deleting a project keeps its conversations."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .rows import NotFound, _check_text, _iso, _now, _valid_id, owned_row
from .schema import PROJECT_NAME_MAX, conversations, projects
from .settings import INSTRUCTIONS_MAX

PROJECTS_MAX = 200  # per owner


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


def _project(row: sa.Row) -> dict:
    """Turn a projects row into the project dict (files: none until projects hold files)."""
    return {"id": row.id, "name": row.name, "instructions": row.instructions, "pinned": row.pinned, "files": [],
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}


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
            return _project(owned_row(conn, projects, owner_id, project_id))

    def list_projects(self, owner_id: str) -> list[dict]:
        """The owner's projects: pinned ones first, then by name."""
        if not _valid_id(owner_id):
            return []
        query = (sa.select(projects).where(projects.c.owner_id == owner_id)
                 .order_by(projects.c.pinned.desc(), sa.func.lower(projects.c.name), projects.c.created_at))
        with self._transaction(write=False) as conn:
            return [_project(row) for row in conn.execute(query)]

    def update_project(self, owner_id: str, project_id: str, *, name: str | None = None,
                       instructions: str | None = None, pinned: bool | None = None) -> dict:
        """Rename, re-instruct or (un)pin one of the owner's projects (None leaves a field as is); NotFound if it is
        not the owner's."""
        values: dict = {}
        if name is not None:
            values["name"] = clean_project_name(name)
        if instructions is not None:
            values["instructions"] = clean_instructions(instructions)
        if pinned is not None:
            if not isinstance(pinned, bool):
                raise ValueError("pinned must be true or false")
            values["pinned"] = pinned
        if not (_valid_id(owner_id) and _valid_id(project_id)):
            raise NotFound(project_id)
        with self._transaction() as conn:
            changed = conn.execute(sa.update(projects)
                                   .where(projects.c.id == project_id, projects.c.owner_id == owner_id)
                                   .values(updated_at=_now(), **values)).rowcount
        if not changed:
            raise NotFound(project_id)
        return self.get_project(owner_id, project_id)

    def delete_project(self, owner_id: str, project_id: str) -> None:
        """Delete one of the owner's projects; its conversations stay, in no project. NotFound if not the owner's."""
        if not (_valid_id(owner_id) and _valid_id(project_id)):
            raise NotFound(project_id)
        with self._transaction() as conn:
            # Said here rather than left to the foreign key, so it holds whatever a backend's key settings are.
            conn.execute(sa.update(conversations)
                         .where(conversations.c.project_id == project_id, conversations.c.owner_id == owner_id)
                         .values(project_id=None))
            deleted = conn.execute(sa.delete(projects).where(projects.c.id == project_id,
                                                             projects.c.owner_id == owner_id)).rowcount
            if not deleted:
                raise NotFound(project_id)
