"""The upload service: create, append and finish uploads, and process complete ones (hash, dedupe, analyse in the
bounded worker, store the result) in a background task. Framework-free: the edge (web/uploads.py) speaks HTTP."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..protocol import ChatError
from ..store import NotFound, StorageFull
from ..store.files import PART_BYTES, public_info
from .errors import FileRejected
from .names import sanitize_filename
from .process import analyze_bounded

log = logging.getLogger("chatbot.files")
MB = 2**20


class FileService:
    """Uploads and their processing for every owner, over the store; `spawn(fn, *args)` runs a background task."""

    def __init__(self, *, store, settings: dict, spawn: Callable[..., object], limiter=None,
                 analyze: Callable[[bytes], object] = analyze_bounded):
        """Wire the service to the store, the settings (limits), the task spawner and the rate limiter."""
        self.store, self.settings, self.spawn, self.limiter = store, settings, spawn, limiter
        self.analyze = analyze
        self.in_flight = 0  # files being processed by this process now


    @property
    def max_bytes(self) -> int:
        """MAX_UPLOAD_MB in bytes."""
        return int(self.settings["MAX_UPLOAD_MB"] * MB)

    def create(self, owner_id: str, name: object, length: int) -> dict:
        """Start an upload (rate-limited, size- and quota-checked); the file's info. ChatError file_too_large or
        storage_full, rate_limited; store NotFound for an unknown owner."""
        if length > self.max_bytes:
            raise ChatError("file_too_large", f"That file is too large: the limit is "
                            f"{self.settings['MAX_UPLOAD_MB']:g} MB.")
        if self.limiter is not None:
            self.limiter.upload(owner_id)
        try:
            try:
                info = self.store.create_upload(owner_id, sanitize_filename(name), length,
                                                quota=int(self.settings["USER_STORAGE_MB"] * MB))
            except NotFound:
                # A new visitor's rows wait for its first write (turns/service.py connect): this upload is one.
                self.store.create_session(owner_id)
                info = self.store.create_upload(owner_id, sanitize_filename(name), length,
                                                quota=int(self.settings["USER_STORAGE_MB"] * MB))
        except StorageFull as exc:
            raise ChatError("storage_full", f"Your storage for files is full ({exc.used / MB:.1f} of "
                            f"{exc.quota / MB:g} MB used): delete some files first.") from None
        if length == 0:
            self.start_processing(owner_id, info["id"])
        return info

    def info(self, owner_id: str, file_id: str) -> dict:
        """One of the owner's files with its upload state (store NotFound otherwise)."""
        return self.store.file_info(owner_id, file_id)

    @staticmethod
    def public(info: dict) -> dict:
        """What clients see of a file: {id, name, kind, mime, size, status, pages?, error?}."""
        return public_info(info)

    def delete(self, owner_id: str, file_id: str) -> None:
        """Delete one of the owner's files (an unfinished upload too) and its bytes."""
        self.store.delete_file(owner_id, file_id)

    def append(self, owner_id: str, file_id: str, offset: int, stream: BinaryIO,
               part_bytes: int = PART_BYTES) -> int:
        """Store what `stream` holds at `offset`, piece by piece (never the whole body in memory); the new offset.
        Pieces stored before the client went away stay stored. Starts processing when the upload is complete."""
        info = self.store.file_info(owner_id, file_id)
        for piece in _pieces(stream, part_bytes):
            offset = self.store.append_upload(owner_id, file_id, offset, piece)
        if offset == info["length"] and info["stored_status"] == "uploading":
            self.start_processing(owner_id, file_id)
        return offset

    def start_processing(self, owner_id: str, file_id: str) -> None:
        """Process a complete upload in a background task."""
        self.in_flight += 1
        self.spawn(self._process_counted, owner_id, file_id)

    def _process_counted(self, owner_id: str, file_id: str) -> None:
        """process(), counted in `in_flight` while it runs."""
        try:
            self.process(owner_id, file_id)
        finally:
            self.in_flight -= 1

    def process(self, owner_id: str, file_id: str) -> None:
        """Hash the complete upload, let a same-content copy stand in for it, else analyse it and store the result
        (ready) or the one sentence why not (failed)."""
        try:
            info = self.store.file_info(owner_id, file_id)
            digest, parts = hashlib.sha256(), []
            for part in self.store.blob_bytes(info["blob_id"]):
                digest.update(part)
                parts.append(part)
            info = self.store.complete_upload(owner_id, file_id, digest.hexdigest())
            if info["deduplicated"]:
                return  # the same content was already stored (or is being read) for this owner
            blob_id = info["blob_id"]
        except Exception:
            log.exception("file=%s processing could not start", file_id[:8])
            return
        try:
            analysis = self.analyze(b"".join(parts))
            del parts
            if analysis.kind == "image":
                self.store.finish_picture(blob_id, analysis.picture.mime, analysis.picture.data)
            else:
                self.store.finish_document(blob_id, analysis.mime, analysis.pages, analysis.chunks)
            log.info("file=%s ready kind=%s mime=%s", file_id[:8], analysis.kind, analysis.mime)
        except FileRejected as exc:
            log.info("file=%s failed: %s", file_id[:8], exc.message)
            self.store.fail_blob(blob_id, exc.message)
        except Exception:
            log.exception("file=%s processing failed", file_id[:8])
            self.store.fail_blob(blob_id, "This file could not be read.")

    def download(self, owner_id: str, file_id: str) -> tuple[dict, Iterator[bytes]]:
        """A ready file's info and its stored bytes (pictures: the re-encoded copy); ChatError file_not_ready."""
        info = self.store.file_info(owner_id, file_id)
        if info["status"] != "ready":
            raise ChatError("file_not_ready")
        return info, self.store.blob_bytes(info["blob_id"])


def _pieces(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """The stream's bytes in pieces of `size` (the last one shorter), read as they arrive."""
    while True:
        buffer = bytearray()
        while len(buffer) < size:
            chunk = stream.read(size - len(buffer))
            if not chunk:
                break
            buffer += chunk
        if buffer:
            yield bytes(buffer)
        if len(buffer) < size:
            return
