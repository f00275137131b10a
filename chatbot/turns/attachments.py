"""Files in turns: checking what a message may carry, the files on messages as history shows them, and a turn's
context with its document excerpts (retrieval.py) and, for models that see, its pictures."""

from __future__ import annotations

import base64
from typing import Any

from ..protocol import ChatError
from .retrieval import choose_excerpts, excerpts_message

RECENT_TURNS = 2  # earlier user messages whose words also choose excerpts
# What the request says for a message sent with files and no text of its own.
FILES_ONLY = "(Sent without words: see the attached files.)"


def ready_files(store, owner_id: str, file_ids: list[str]) -> list[dict]:
    """The owner's files `file_ids`, in order, all read: not_found for a foreign or unknown id, file_unsupported
    (with its reason) for a failed one, file_not_ready for one still uploading or being read."""
    found = {info["id"]: info for info in store.files_info(owner_id, file_ids)}
    files = []
    for file_id in file_ids:
        info = found.get(file_id)
        if info is None:
            raise ChatError("not_found", "That file does not exist (or is not yours).")
        if info["status"] == "failed":
            raise ChatError("file_unsupported", f"“{info['name']}” cannot be used: {info.get('error', '')}")
        if info["status"] != "ready":
            raise ChatError("file_not_ready", f"“{info['name']}” is not ready yet: wait until it has "
                            "finished uploading and being read.")
        files.append(info)
    return files


def project_documents(store, owner_id: str, file_ids: list[str]) -> list[str]:
    """The file ids a project may hold: the owner's ready documents (a picture is file_unsupported: a project's
    files are searched for text)."""
    for info in ready_files(store, owner_id, file_ids):
        if info["kind"] != "document":
            raise ChatError("file_unsupported", f"“{info['name']}” is a picture: a project holds documents, "
                            "whose text its conversations search. Attach pictures to a message instead.")
    return file_ids


class Attachments:
    """What the turn engine does with files, over the store and the settings (MAX_ATTACHMENTS, VISION_MODELS,
    ATTACHMENT_CONTEXT_CHARS)."""

    def __init__(self, store, settings: dict[str, Any]):
        """Work through `store` with `settings`."""
        self.store, self.settings = store, settings

    def can_see(self, model: str) -> bool:
        """Whether `model` takes pictures (listed in VISION_MODELS)."""
        return model in self.settings["VISION_MODELS"]

    def check(self, owner_id: str, file_ids: list[str], model: str) -> list[dict]:
        """The files a new message may carry, in order: at most MAX_ATTACHMENTS, all the owner's (not_found), all
        read (file_not_ready; a failed one is file_unsupported with its reason), pictures only for a model that
        sees (model_cannot_see). Nothing is stored."""
        most = self.settings["MAX_ATTACHMENTS"]
        if len(file_ids) > most:
            raise ChatError("invalid_message", f"A message can carry at most {most} files.")
        files = ready_files(self.store, owner_id, file_ids)
        if any(info["kind"] == "image" for info in files) and not self.can_see(model):
            raise ChatError("model_cannot_see", f"The model “{model}” cannot see pictures. Pick a model that can "
                            f"(for example {', '.join(self.settings['VISION_MODELS'][:1]) or 'a vision model'}), "
                            "or remove the pictures.")
        return files

    def attach(self, owner_id: str, turn, files: list[dict]) -> None:
        """Link `files` to a begun turn's user message, and show them on its dicts (the message, and its copies in
        the turn's history and page)."""
        if not files:
            return
        message_id = turn.message["id"]
        described = self.store.attach_files(owner_id, message_id, [info["id"] for info in files])
        for message in (turn.message, *turn.history, *(turn.page or [])):
            if message.get("id") == message_id:
                message["attachments"] = described

    def files_of(self, owner_id: str, message: dict) -> list[dict]:
        """The files a stored message carries, as they stand now (for an edit that keeps them)."""
        return self.store.files_info(owner_id, [entry["id"] for entry in message.get("attachments") or []])

    def export_files(self, owner_id: str, messages: list[dict]) -> list[dict]:
        """Every file the messages carry, once, with its extracted text (documents), for the JSON export:
        [{id, name, kind, mime, size, pages?, text?}]."""
        described = {}
        for message in messages:
            for entry in message.get("attachments") or []:
                described.setdefault(entry["id"], dict(entry))
        texts = self.store.file_texts(owner_id, list(described)) if described else {}
        for file_id, entry in described.items():
            if file_id in texts:
                entry["text"] = texts[file_id]
        return list(described.values())

    def context(self, owner_id: str, history: list[dict], context: list[dict], model: str,
                project_id: str | None = None) -> tuple[list, list]:
        """A turn's request with its files: (messages, sources). The documents carried by the path so far, then
        those its project holds, give numbered excerpts (a system message before the question); the question's
        own pictures go with it as image parts when `model` sees."""
        # The files the path carries are on its messages: nothing is read for a conversation without any.
        wanted = [entry["id"] for message in history for entry in message.get("attachments") or []]
        held = self.store.project_documents(owner_id, project_id) if project_id else []
        if not wanted and not held:
            return context, []
        infos = {info["id"]: info for info in self.store.files_info(owner_id, list(dict.fromkeys(wanted)))}
        carried = {message["id"]: [infos[entry["id"]] for entry in message.get("attachments") or []
                                   if entry["id"] in infos] for message in history}
        question = next((m for m in reversed(history) if m["role"] == "user"), None)
        documents, seen = [], set()
        for message in history:
            for info in carried[message["id"]]:
                if info["kind"] == "document" and info["status"] == "ready" and info["blob_id"] not in seen:
                    seen.add(info["blob_id"])
                    documents.append(info)
        for info in held:
            if info["kind"] == "document" and info["status"] == "ready" and info["blob_id"] not in seen:
                seen.add(info["blob_id"])
                documents.append(info)
        context = list(context)
        sources = []
        if documents and question is not None:
            earlier = [m["content"] for m in history if m["role"] == "user" and m is not question][-RECENT_TURNS:]
            excerpts = choose_excerpts(self.store, owner_id, documents, question["content"], " ".join(earlier),
                                       self.settings["ATTACHMENT_CONTEXT_CHARS"])
            if excerpts:
                context.insert(len(context) - 1, excerpts_message(excerpts))
                sources = [excerpt.source() for excerpt in excerpts]
        for index, message in enumerate(context):  # messages sent with files only get words
            if message["role"] == "user" and not message["content"].strip():
                context[index] = {"role": "user", "content": FILES_ONLY}
        pictures = [info for info in carried.get(question["id"], []) if info["kind"] == "image"] if question else []
        if pictures and self.can_see(model) and context[-1]["role"] == "user":
            parts = [{"type": "text", "text": context[-1]["content"]}]
            for info in pictures:
                data = b"".join(self.store.blob_bytes(info["blob_id"]))
                parts.append({"type": "image_url", "image_url": {
                    "url": f"data:{info['mime']};base64,{base64.b64encode(data).decode('ascii')}"}})
            context[-1] = {"role": "user", "content": parts}
        return context, sources

