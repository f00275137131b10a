"""Who sees what: one socket's state, and the Socket.IO rooms of a conversation and of a session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SocketState:
    """What the server knows about one connected socket."""

    owner_id: str
    conversation_id: str
    ip: str
    user_id: str | None = None  # the signed-in account (None: an anonymous session)
    generation: int | None = None  # its login generation when the socket connected
    unsaved: bool = False  # a new visitor's owner and conversation rows wait for its first message or change


def conversation_room(conversation_id: str) -> str:
    """The room of every socket showing a conversation."""
    return f"c:{conversation_id}"


def owner_room(owner_id: str) -> str:
    """The room of every socket of a session."""
    return f"o:{owner_id}"
