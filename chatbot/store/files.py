"""Files: resumable uploads stored in pieces in the database, deduplicated per owner, with a storage quota, expiry of
unfinished uploads, what processing made of them, and the files messages carry. Every query is owner-scoped: a
foreign file id is NotFound, like an unknown one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .rows import NotFound, _iso, _now, _seconds, _valid_id, _valid_message_id
from .schema import FILE_ERROR_MAX, blob_parts, blobs, file_chunks, files, message_files, messages, project_files

PART_BYTES = 256 * 1024  # one stored piece: big enough to be few rows, small enough to hold one in memory


class StorageFull(Exception):
    """The owner's files would pass the storage quota."""

    def __init__(self, used: int, quota: int):
        """Keep the figures for the sentence people see."""
        super().__init__(f"{used} of {quota} bytes used")
        self.used, self.quota = used, quota


class OffsetMismatch(Exception):
    """A PATCH's Upload-Offset is not where the upload stands (`offset` is where it does)."""

    def __init__(self, offset: int):
        """Remember the real offset."""
        super().__init__(offset)
        self.offset = offset


class UploadTooLong(Exception):
    """More bytes were sent than the upload announced."""


_FILE_COLUMNS = (files.c.id, files.c.name, files.c.blob_id, files.c.created_at, blobs.c.kind, blobs.c.mime,
                 blobs.c.size, blobs.c.length, blobs.c.received, blobs.c.status, blobs.c.pages, blobs.c.error,
                 blobs.c.text_chars, blobs.c.sha256)


def _info(row: sa.Row) -> dict:
    """A file as the HTTP info and the wire show it (plus internal fields: blob_id, length, received, text_chars,
    and `stored_status`, the row's own: a complete upload not yet picked up for reading already shows as
    `processing`)."""
    status = "processing" if row.status == "uploading" and row.received == row.length else row.status
    info = {"id": row.id, "name": row.name, "kind": row.kind, "mime": row.mime,
            "size": row.size if row.status == "ready" else row.length, "status": status,
            "stored_status": row.status,
            "created_at": _iso(row.created_at), "blob_id": row.blob_id, "length": row.length,
            "received": row.received, "text_chars": row.text_chars}
    if row.pages is not None:
        info["pages"] = row.pages
    if row.error:
        info["error"] = row.error
    return info


def public_info(info: dict) -> dict:
    """The fields of a file that clients see: {id, name, kind, mime, size, status, pages?, error?}."""
    return {key: info[key] for key in ("id", "name", "kind", "mime", "size", "status", "pages", "error")
            if key in info}


def attachment_info(info: dict) -> dict:
    """A file as a message's `attachments` entry: {id, name, kind, mime, size, pages?}."""
    return {key: info[key] for key in ("id", "name", "kind", "mime", "size", "pages") if key in info}


class FileQueries:
    """Upload, processing and attachment queries (mixed into Store, which provides `_transaction` and `dialect`)."""

    # ---- uploads -------------------------------------------------------------------------------------------

    def storage_used(self, owner_id: str) -> int:
        """Bytes the owner's files take (an unfinished upload counts its announced length)."""
        with self._transaction(write=False) as conn:
            return self._used(conn, owner_id)

    @staticmethod
    def _used(conn: Connection, owner_id: str) -> int:
        """Bytes the owner's blobs count against the quota."""
        return int(conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))
                               .where(blobs.c.owner_id == owner_id)) or 0)

    def create_upload(self, owner_id: str, name: str, length: int, *, quota: int) -> dict:
        """Start an upload of `length` bytes named `name` (already sanitized); StorageFull past `quota` bytes,
        NotFound for an unknown owner."""
        if not _valid_id(owner_id):
            raise NotFound(owner_id)
        now = _now()
        file_id = uuid.uuid4().hex
        try:
            with self._transaction() as conn:
                used = self._used(conn, owner_id)
                if used + length > quota:
                    raise StorageFull(used, quota)
                blob_id = conn.execute(sa.insert(blobs).values(
                    owner_id=owner_id, sha256=None, length=length, received=0, size=length, status="uploading",
                    created_at=now, updated_at=now)).inserted_primary_key[0]
                conn.execute(sa.insert(files).values(id=file_id, owner_id=owner_id, blob_id=blob_id, name=name,
                                                     created_at=now))
        except IntegrityError as err:  # the owner does not exist
            raise NotFound(owner_id) from err
        return self.file_info(owner_id, file_id)

    def file_info(self, owner_id: str, file_id: str) -> dict:
        """One of the owner's files with its upload and processing state; NotFound otherwise."""
        found = self.files_info(owner_id, [file_id])
        if not found:
            raise NotFound(file_id)
        return found[0]

    def files_info(self, owner_id: str, file_ids: list[str]) -> list[dict]:
        """The owner's files among `file_ids`, in that order (unknown and foreign ids are left out)."""
        wanted = [file_id for file_id in file_ids if _valid_id(file_id)]
        if not wanted or not _valid_id(owner_id):
            return []
        query = (sa.select(*_FILE_COLUMNS).join(blobs, blobs.c.id == files.c.blob_id)
                 .where(files.c.owner_id == owner_id, files.c.id.in_(wanted)))
        with self._transaction(write=False) as conn:
            rows = {row.id: _info(row) for row in conn.execute(query)}
        return [rows[file_id] for file_id in wanted if file_id in rows]

    def append_upload(self, owner_id: str, file_id: str, offset: int, data: bytes) -> int:
        """Store `data` at `offset` of an unfinished upload and return the new offset. OffsetMismatch when the
        upload is elsewhere (or finished), UploadTooLong past its length, NotFound when it is not the owner's."""
        info = self.file_info(owner_id, file_id)
        blob_id = info["blob_id"]
        if not data:
            if offset != info["received"]:
                raise OffsetMismatch(info["received"])
            return offset
        with self._transaction() as conn:
            # Moving the offset first takes the row's lock: a concurrent PATCH at the same offset then finds it moved.
            moved = conn.execute(
                sa.update(blobs)
                .where(blobs.c.id == blob_id, blobs.c.owner_id == owner_id, blobs.c.status == "uploading",
                       blobs.c.received == offset, blobs.c.received + len(data) <= blobs.c.length)
                .values(received=blobs.c.received + len(data), updated_at=_now())).rowcount
            if moved:
                conn.execute(sa.insert(blob_parts).values(blob_id=blob_id, start=offset, data=data))
                return offset + len(data)
            row = conn.execute(sa.select(blobs.c.received, blobs.c.length, blobs.c.status)
                               .where(blobs.c.id == blob_id)).first()
        if row is None:
            raise NotFound(file_id)
        if row.status == "uploading" and row.received == offset:
            raise UploadTooLong(file_id)
        raise OffsetMismatch(row.received)

    def blob_bytes(self, blob_id: int) -> Iterator[bytes]:
        """The stored bytes of a blob, piece by piece, each piece read in its own short transaction."""
        start = -1
        while True:
            with self._transaction(write=False) as conn:
                row = conn.execute(sa.select(blob_parts.c.start, blob_parts.c.data)
                                   .where(blob_parts.c.blob_id == blob_id, blob_parts.c.start > start)
                                   .order_by(blob_parts.c.start).limit(1)).first()
            if row is None:
                return
            start = row.start
            yield bytes(row.data)

    def complete_upload(self, owner_id: str, file_id: str, sha256: str) -> dict:
        """Record a complete upload's hash. Same content already stored for the owner: the file is pointed at that
        blob and this copy dropped. Returns the file's info, with `deduplicated` (True: nothing left to process)."""
        info = self.file_info(owner_id, file_id)
        if info["stored_status"] != "uploading":
            return {**info, "deduplicated": True}
        with self._transaction() as conn:
            existing = conn.scalar(sa.select(blobs.c.id).where(
                blobs.c.owner_id == owner_id, blobs.c.sha256 == sha256, blobs.c.id != info["blob_id"],
                blobs.c.status.in_(("processing", "ready"))))
            if existing is not None:
                conn.execute(sa.update(files).where(files.c.id == file_id).values(blob_id=existing))
                conn.execute(sa.delete(blobs).where(blobs.c.id == info["blob_id"]))
            else:
                # A failed copy of the same content gives up its hash, so this one may take it and try again.
                conn.execute(sa.update(blobs).where(blobs.c.owner_id == owner_id, blobs.c.sha256 == sha256,
                                                    blobs.c.status == "failed").values(sha256=None))
                conn.execute(sa.update(blobs).where(blobs.c.id == info["blob_id"])
                             .values(sha256=sha256, status="processing", updated_at=_now()))
        return {**self.file_info(owner_id, file_id), "deduplicated": existing is not None}

    def finish_document(self, blob_id: int, mime: str, pages: int | None, chunks: list) -> None:
        """A processed document: its type, pages and chunks (Chunk-like: n, text, page, heading); ready."""
        text_chars = sum(len(chunk.text) for chunk in chunks)
        with self._transaction() as conn:
            if chunks:
                conn.execute(sa.insert(file_chunks), [
                    {"blob_id": blob_id, "n": chunk.n, "page": chunk.page, "heading": chunk.heading,
                     "text": chunk.text} for chunk in chunks])
            conn.execute(sa.update(blobs).where(blobs.c.id == blob_id).values(
                kind="document", mime=mime, pages=pages, text_chars=text_chars, status="ready", updated_at=_now()))

    def finish_picture(self, blob_id: int, mime: str, data: bytes) -> None:
        """A processed picture: the upload's bytes replaced by the re-encoded ones (nothing else of it is kept)."""
        with self._transaction() as conn:
            conn.execute(sa.delete(blob_parts).where(blob_parts.c.blob_id == blob_id))
            for start in range(0, len(data), PART_BYTES):
                conn.execute(sa.insert(blob_parts).values(blob_id=blob_id, start=start,
                                                          data=data[start:start + PART_BYTES]))
            conn.execute(sa.update(blobs).where(blobs.c.id == blob_id).values(
                kind="image", mime=mime, size=len(data), status="ready", updated_at=_now()))

    def fail_blob(self, blob_id: int, error: str) -> None:
        """Processing failed: keep the one-sentence reason, drop the bytes (they count against nothing now)."""
        with self._transaction() as conn:
            conn.execute(sa.delete(blob_parts).where(blob_parts.c.blob_id == blob_id))
            conn.execute(sa.update(blobs).where(blobs.c.id == blob_id).values(
                status="failed", error=error[:FILE_ERROR_MAX], size=0, updated_at=_now()))

    def delete_file(self, owner_id: str, file_id: str) -> None:
        """Delete one of the owner's files (its bytes too, unless another of the owner's files shares them)."""
        info = self.file_info(owner_id, file_id)
        with self._transaction() as conn:
            conn.execute(sa.delete(project_files).where(project_files.c.file_id == file_id))  # as the key would
            conn.execute(sa.delete(files).where(files.c.id == file_id, files.c.owner_id == owner_id))
            self._drop_unused_blobs(conn, owner_id, [info["blob_id"]])

    @staticmethod
    def _drop_unused_blobs(conn: Connection, owner_id: str, blob_ids: list[int] | None = None) -> int:
        """Delete the owner's blobs no file refers to (among `blob_ids`, or all); returns how many."""
        unused = sa.delete(blobs).where(blobs.c.owner_id == owner_id,
                                        ~sa.exists().where(files.c.blob_id == blobs.c.id))
        if blob_ids is not None:
            unused = unused.where(blobs.c.id.in_(blob_ids))
        return conn.execute(unused).rowcount

    def purge_detached_files(self, owner_id: str, conn: Connection | None = None) -> int:
        """Delete the owner's files that were attached to messages but no message carries any more (their
        conversation was deleted) and no project holds, and bytes nothing refers to; returns how many files went."""
        if conn is None:
            with self._transaction() as conn:
                return self.purge_detached_files(owner_id, conn)
        gone = conn.execute(sa.delete(files).where(
            files.c.owner_id == owner_id, files.c.attached_at.is_not(None),
            ~sa.exists().where(message_files.c.file_id == files.c.id),
            ~sa.exists().where(project_files.c.file_id == files.c.id))).rowcount
        self._drop_unused_blobs(conn, owner_id)
        return gone

    def expire_uploads(self, idle_seconds: float, stuck_seconds: float = 3600.0) -> int:
        """Delete uploads idle for `idle_seconds` before they were complete, and fail processing that stopped
        (its process died) over `stuck_seconds` ago; returns how many uploads went."""
        now = _now()
        with self._transaction() as conn:
            gone = conn.execute(sa.delete(blobs).where(
                blobs.c.status == "uploading",
                blobs.c.updated_at < now - _seconds(idle_seconds, "idle_seconds"))).rowcount
            stuck = [row.id for row in conn.execute(sa.select(blobs.c.id).where(
                blobs.c.status == "processing", blobs.c.updated_at < now - timedelta(seconds=stuck_seconds)))]
        for blob_id in stuck:
            self.fail_blob(blob_id, "Reading this file was interrupted: please upload it again.")
        return gone

    # ---- attachments ---------------------------------------------------------------------------------------

    def attach_files(self, owner_id: str, message_id: int, file_ids: list[str]) -> list[dict]:
        """Link the owner's files to one of the owner's messages, in order, and put their descriptions on it
        (`attachments`, read with the message); returns those descriptions. NotFound for a foreign file."""
        if not file_ids:
            return []
        if not _valid_message_id(message_id):
            raise NotFound(message_id)
        found = {info["id"]: info for info in self.files_info(owner_id, file_ids)}
        if set(found) != set(file_ids):
            raise NotFound(next(iter(set(file_ids) - set(found))))
        described = [attachment_info(found[file_id]) for file_id in file_ids]
        with self._transaction() as conn:
            conn.execute(sa.insert(message_files), [{"message_id": message_id, "file_id": file_id,
                                                     "position": position}
                                                    for position, file_id in enumerate(file_ids)])
            conn.execute(sa.update(files).where(files.c.id.in_(file_ids), files.c.attached_at.is_(None))
                         .values(attached_at=_now()))
            conn.execute(sa.update(messages).where(messages.c.id == message_id).values(attachments=described))
        return described

    def save_sources(self, message_id: int, sources: list[dict]) -> None:
        """Keep the excerpts a reply was given on it (`sources`, read with the message)."""
        if sources:
            with self._transaction() as conn:
                conn.execute(sa.update(messages).where(messages.c.id == message_id).values(sources=sources))
