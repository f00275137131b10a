"""Socket.IO handlers — thin: read and validate the payload, call the chat service, reply to the one client."""

from __future__ import annotations

import functools
import logging
import uuid

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, emit

import chatbot.protocol as protocol
import chatbot.tools.wire as tool_wire

from ..extensions import socketio
from ..protocol import ChatError
from ..store import NotFound
from ..store.search import MAX_RESULTS, QUERY_MAX
from .access import socket_login
from .sessions import COOKIE_NAME

log = logging.getLogger("chatbot.events")


def service():
    """The app's chat service."""
    return current_app.extensions["chatbot"]


def client_ip() -> str:
    """The client's address (with TRUST_PROXY, ProxyFix has put the proxy's X-Forwarded-For hop here)."""
    return request.remote_addr or "unknown"


def sent_by_client() -> bool:
    """Whether this `connect`/`disconnect` is an ordinary event a client emitted under that reserved name.

    python-socketio hands such events to the same handlers; the real ones run while the socket is still
    connecting or already leaving, when the manager does not count it as connected.
    """
    return socketio.server.manager.is_connected(request.sid, request.namespace)


def logged_content(text: str) -> str:
    """A ` content=...` log field when LOG_CONTENT is on, else nothing: message text stays out of the logs."""
    return f" content={text!r}" if current_app.config["LOG_CONTENT"] else ""


def count_refusal(error: ChatError) -> None:
    """Count a refusal by one of our own limits in the metrics."""
    if error.code == "rate_limited":
        current_app.extensions["chatbot_metrics"].rate_limited(error.kind or "other")


def edge(handler):
    """Turn exceptions into the protocol's `error` event and a `{ok: false}` ack; internals go to the log only."""

    @functools.wraps(handler)
    def wrapper(*args):
        try:
            if len(args) > 1:
                raise ChatError("invalid_message", "The event takes one JSON object, not several arguments.")
            return handler(*args)
        except ChatError as exc:
            error = exc
        except NotFound:
            error = ChatError("not_found")
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("event=%s sid=%s ref=%s failed", handler.__name__, request.sid, ref)
            error = ChatError("internal", f"Something went wrong on our side (reference {ref}).")
        log.info("event=%s sid=%s refused code=%s", handler.__name__, request.sid, error.code)
        count_refusal(error)
        emit("error", error.payload())
        return {"ok": False, "error": error.payload()}

    return wrapper


@socketio.on("connect")
def on_connect(auth=None):
    """Sent by every client on connect: attach it to the session its token (or cookie) proves, or a new one.

    In accounts and proxy mode a connection without a valid login is refused here, before any other handler.
    """
    if sent_by_client():
        log.info("event=connect sid=%s refused: sent as an event", request.sid)
        return
    chat, tokens = service(), current_app.extensions["chatbot_tokens"]
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        chat.admit(client_ip())
        if current_app.config["AUTH_MODE"] == "open":
            owner_id = tokens.owner(token) or tokens.owner(request.cookies.get(COOKIE_NAME))
            owner_id, history = chat.connect(request.sid, owner_id, client_ip())
            token = tokens.issue(owner_id)
        else:
            login = socket_login(auth)
            if login is None:
                raise ChatError("auth_required")
            owner_id, history = chat.connect(request.sid, login.owner_id, client_ip(), user_id=login.user_id,
                                             version=login.version)
            # A browser rides on its HttpOnly cookie: script never sees a login token. A client that brought
            # one gets it renewed.
            token = tokens.renew(login) if token else None
    except ChatError as exc:
        log.info("event=connect sid=%s ip=%s refused code=%s", request.sid, client_ip(), exc.code)
        count_refusal(exc)
        # Two arguments: the client's connect_error gets {message: <sentence>, data: {code, message, retry_after}}
        # (with one, python-socketio would send the dict's Python repr as the message).
        raise ConnectionRefusedError(exc.message, exc.payload()) from None
    current_app.extensions["chatbot_metrics"].connection_opened()
    log.info("event=connect sid=%s ip=%s session=%s", request.sid, client_ip(), owner_id[:8])
    emit("session_id", {"session_id": owner_id, "token": token,
                        "demo": chat.provider.demo, "model": chat.provider.model, "provider": chat.provider.name,
                        "notice": chat.provider.notice})
    chat.send_history(request.sid, history)


@socketio.on("disconnect")
def on_disconnect(reason=None):
    """A client went away (closed tab, network loss, ping timeout); its replies still finish and are stored."""
    if sent_by_client():
        log.info("event=disconnect sid=%s refused: sent as an event", request.sid)
        return
    service().disconnect(request.sid)
    log.info("event=disconnect sid=%s reason=%s", request.sid, reason)


@socketio.on("user_message")
@edge
def on_user_message(payload=None):
    """Sent by the browser when the user submits a message: store it, ack it, and stream the reply."""
    data = protocol.payload_dict(payload)
    chat = service()
    session_id = data.get("session_id")
    if session_id is not None and session_id != chat.state(request.sid).owner_id:
        raise ChatError("session_not_found")
    text = protocol.message_text(data, current_app.config["MAX_MESSAGE_CHARS"])
    ack = chat.user_message(request.sid, text, protocol.optional_id(data, "conversation_id"), protocol.client_id(data))
    log.info("event=user_message sid=%s conversation=%s message=%s reply=%s chars=%d%s", request.sid,
             ack["conversation_id"], ack["message_id"], ack["reply_id"], len(text), logged_content(text))
    return ack


@socketio.on("stop")
@edge
def on_stop(payload=None):
    """Sent when the user presses Stop: close the upstream request and finish the reply as 'stopped'."""
    return service().stop(request.sid, protocol.reply_id(protocol.payload_dict(payload), required=False))


@socketio.on("resume")
@edge
def on_resume(payload=None):
    """Sent after a reconnect: re-send the reply's deltas after `after_seq`, then its final message when done."""
    data = protocol.payload_dict(payload)
    return service().resume(request.sid, protocol.reply_id(data), protocol.after_seq(data),
                            protocol.after_seq(data, "after_reasoning_seq"), protocol.after_seq(data, "after_tool_seq"))


@socketio.on("regenerate")
@edge
def on_regenerate(payload=None):
    """Sent when the user asks for another answer: a new version of the last reply streams (the old one stays)."""
    data = protocol.payload_dict(payload)
    return service().branches.regenerate(request.sid, protocol.optional_id(data, "conversation_id"))


@socketio.on("edit_message")
@edge
def on_edit_message(payload=None):
    """Sent when the user resends an edited message: a new version of it streams its own reply (the old stays)."""
    data = protocol.payload_dict(payload)
    text = protocol.message_text(data, current_app.config["MAX_MESSAGE_CHARS"])
    ack = service().branches.edit(request.sid, protocol.message_id(data), text, protocol.client_id(data))
    log.info("event=edit_message sid=%s conversation=%s message=%s reply=%s chars=%d%s", request.sid,
             ack["conversation_id"], ack["message_id"], ack["reply_id"], len(text), logged_content(text))
    return ack


@socketio.on("switch_branch")
@edge
def on_switch_branch(payload=None):
    """Sent when the user flips a message's versions (‹ 2/3 ›) or opens a search result off the shown path."""
    data = protocol.payload_dict(payload)
    return service().branches.switch(request.sid, protocol.message_id(data))


@socketio.on("search")
@edge
def on_search(payload=None):
    """Sent as the user types in the sidebar's search box: the session's matching titles and messages."""
    data = protocol.payload_dict(payload)
    return service().conversations.search(request.sid, protocol.search_query(data, QUERY_MAX),
                                          protocol.search_limit(data, MAX_RESULTS))


@socketio.on("load_more")
@edge
def on_load_more(payload=None):
    """Sent when the user scrolls to the top of a conversation: the page of messages before `before_id`."""
    data = protocol.payload_dict(payload)
    return service().load_more(request.sid, protocol.required_id(data, "conversation_id"), protocol.before_id(data))


@socketio.on("list_models")
@edge
def on_list_models(payload=None):
    """Sent by the model picker: the models the operator allows, and the default."""
    protocol.payload_dict(payload)
    return service().conversations.list_models(request.sid)


@socketio.on("set_model")
@edge
def on_set_model(payload=None):
    """Sent when the user picks a model for a conversation (null: back to the default)."""
    data = protocol.payload_dict(payload)
    return service().conversations.set_model(request.sid, protocol.required_id(data, "conversation_id"),
                                             protocol.model_id(data))


@socketio.on("list_tools")
@edge
def on_list_tools(payload=None):
    """Sent by the composer: the tools this conversation's provider and model can use (built-ins, MCP tools)."""
    data = protocol.payload_dict(payload)
    return tool_actions().list_tools(request.sid, protocol.optional_id(data, "conversation_id"))


@socketio.on("update_conversation")
@edge
def on_update_conversation(payload=None):
    """Sent when the user changes a conversation's settings (here: which tools its replies may use)."""
    data = protocol.payload_dict(payload)
    conversation_id = protocol.required_id(data, "conversation_id")
    return tool_actions().choose(request.sid, conversation_id, tool_wire.tool_ids(data))


@socketio.on("approve_tool")
@edge
def on_approve_tool(payload=None):
    """Sent by a tab answering `tool_approval`: run (or decline) a destructive step; the first answer wins."""
    data = protocol.payload_dict(payload)
    return tool_actions().approve(request.sid, protocol.reply_id(data), tool_wire.step_id(data),
                                  tool_wire.approve(data))


def tool_actions():
    """The chat service's tool actions."""
    return service().tools


@socketio.on("list_conversations")
@edge
def on_list_conversations(payload=None):
    """Sent by the sidebar: the session's conversations, newest first."""
    protocol.payload_dict(payload)
    return service().conversations.list(request.sid)


@socketio.on("new_conversation")
@edge
def on_new_conversation(payload=None):
    """Sent by the New chat button: create a conversation and show it."""
    protocol.payload_dict(payload)
    return service().conversations.new(request.sid)


@socketio.on("open_conversation")
@edge
def on_open_conversation(payload=None):
    """Sent when the user picks a conversation in the sidebar: show its history."""
    data = protocol.payload_dict(payload)
    return service().conversations.open(request.sid, protocol.required_id(data, "conversation_id"))


@socketio.on("rename_conversation")
@edge
def on_rename_conversation(payload=None):
    """Sent when the user renames a conversation."""
    data = protocol.payload_dict(payload)
    return service().conversations.rename(request.sid, protocol.required_id(data, "conversation_id"),
                                          protocol.title_text(data))


@socketio.on("delete_conversation")
@edge
def on_delete_conversation(payload=None):
    """Sent when the user confirms deleting a conversation."""
    data = protocol.payload_dict(payload)
    return service().conversations.delete(request.sid, protocol.required_id(data, "conversation_id"))


@socketio.on_error_default
def on_unhandled(exc):
    """Last resort for errors outside `edge` (e.g. an unknown event's handler): log, tell the client plainly."""
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled socket error ref=%s: %r", ref, exc)
    emit("error", ChatError("internal", f"Something went wrong on our side (reference {ref}).").payload())
