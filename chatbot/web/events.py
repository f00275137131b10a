"""Socket.IO handlers — thin: read and validate the payload, call the chat service, reply to the one client.

One class-based namespace ("/"): each `on_<event>` method handles one event of the protocol, and `trigger_event`
wraps every one of them the same way (errors to the `error` event and a `{ok: false}` ack, internals to the log).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, emit

import chatbot.protocol as protocol
import chatbot.tools.wire as tool_wire

from ..extensions import socketio
from ..protocol import ChatError
from ..store import NotFound
from ..store.search import MAX_RESULTS, QUERY_MAX
from ..turns.service import ChatService
from .access import client_ip, socket_login
from .services import chat, metrics, provider, tokens, tools
from .sessions import COOKIE_NAME
from .team_events import TeamEvents

log = logging.getLogger("chatbot.events")


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
        metrics().rate_limited(error.kind or "other")


def greet(service, sid: str, hello: dict, history: dict) -> None:
    """Send a connected socket its `session_id`, then the conversation it shows (and the welcome)."""
    socketio.emit("session_id", hello, to=sid)
    service.send_history(sid, history)


def after_connect(send: Callable[..., None], *args) -> None:
    """Run `send(*args)` once python-socketio has sent the client its CONNECT packet.

    Events emitted inside the connect handler reach the wire before CONNECT. socket.io-client buffers them, but the
    python-socketio client runs each one at once, in a thread of its own: a program that sends as soon as it sees
    `session_id` then finds the namespace not yet connected (BadNamespaceError, nothing sent). Under gevent and
    eventlet a task started here runs after the handler returns, and the server sends CONNECT without yielding, so
    `session_id` follows it. The threading mode (the test client) sends at once, as before.
    """
    if socketio.async_mode == "threading":
        send(*args)
    else:
        socketio.start_background_task(send, *args)


def answer_errors(handler: Callable[..., dict], *args) -> dict:
    """Run an event's handler; exceptions become the protocol's `error` event and a `{ok: false}` ack, internals
    go to the log only (with a reference the client is told)."""
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


class ChatNamespace(TeamEvents, Namespace):
    """The chat protocol's events on the default namespace; each handler is thin and answers with its ack."""

    def trigger_event(self, event: str, sid: str, *args):
        """Dispatch one event: connect and disconnect as Flask-SocketIO does, every other known event through
        `answer_errors` in the socket's request context; unknown events are not handled (no ack)."""
        if event in ("connect", "disconnect"):
            return super().trigger_event(event, sid, *args)
        handler = getattr(self, f"on_{event}", None) if event else None
        if handler is None:
            return self.server.not_handled

        def answered(*payload):
            """The handler, with errors answered."""
            return answer_errors(handler, *payload)

        return self.socketio._handle_event(answered, event, self.namespace, sid, *args)

    def on_connect(self, auth=None):
        """Sent by every client on connect: attach it to the session its token (or cookie) proves, or a new one.

        In accounts and proxy mode a connection without a valid login is refused here, before any other handler.
        """
        if sent_by_client():
            log.info("event=connect sid=%s refused: sent as an event", request.sid)
            return
        service, signer = chat(), tokens()
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            service.admit(client_ip())
            if current_app.config["AUTH_MODE"] == "open":
                owner_id = signer.owner(token) or signer.owner(request.cookies.get(COOKIE_NAME))
                owner_id, history = service.connect(request.sid, owner_id, client_ip())
                token = signer.issue(owner_id)
            else:
                login = socket_login(auth)
                if login is None:
                    raise ChatError("auth_required")
                owner_id, history = service.connect(request.sid, login.owner_id, client_ip(), user_id=login.user_id,
                                                    generation=login.generation)
                # A browser rides on its HttpOnly cookie: script never sees a login token. A client that brought
                # one gets it renewed.
                token = signer.renew(login) if token else None
        except ChatError as exc:
            log.info("event=connect sid=%s ip=%s refused code=%s", request.sid, client_ip(), exc.code)
            count_refusal(exc)
            # Two arguments: the client's connect_error gets {message: <sentence>, data: {code, message,
            # retry_after}} (with one, python-socketio would send the dict's Python repr as the message).
            raise ConnectionRefusedError(exc.message, exc.payload()) from None
        metrics().connection_opened()
        log.info("event=connect sid=%s ip=%s session=%s", request.sid, client_ip(), owner_id[:8])
        llm = provider()
        hello = {"session_id": owner_id, "token": token, "demo": llm.demo, "model": llm.model, "provider": llm.name,
                 "notice": llm.notice}
        after_connect(greet, service, request.sid, hello, history)

    def on_disconnect(self, reason=None):
        """A client went away (closed tab, network loss, ping timeout); its replies still finish and are stored."""
        if sent_by_client():
            log.info("event=disconnect sid=%s refused: sent as an event", request.sid)
            return
        chat().disconnect(request.sid)
        log.info("event=disconnect sid=%s reason=%s", request.sid, reason)

    def on_user_message(self, payload=None):
        """Sent by the browser when the user submits a message: store it, ack it, and stream the reply."""
        data = protocol.payload_dict(payload)
        service: ChatService = chat()
        session_id = data.get("session_id")
        if session_id is not None and session_id != service.state(request.sid).owner_id:
            raise ChatError("session_not_found")
        files = protocol.attachment_ids(data)
        text = protocol.message_text(data, current_app.config["MAX_MESSAGE_CHARS"], allow_blank=bool(files))
        ack = service.user_message(request.sid, text, protocol.optional_id(data, "conversation_id"),
                                   protocol.client_id(data), files)
        log.info("event=user_message sid=%s conversation=%s message=%s reply=%s chars=%d%s", request.sid,
                 ack["conversation_id"], ack["message_id"], ack["reply_id"], len(text), logged_content(text))
        return ack

    def on_stop(self, payload=None):
        """Sent when the user presses Stop: close the upstream request and finish the reply as 'stopped'."""
        return chat().stop(request.sid, protocol.reply_id(protocol.payload_dict(payload), required=False))

    def on_resume(self, payload=None):
        """Sent after a reconnect: re-send the reply's deltas after `after_seq`, then its final message when done."""
        data = protocol.payload_dict(payload)
        return chat().resume(request.sid, protocol.reply_id(data), protocol.after_seq(data),
                             protocol.after_seq(data, "after_reasoning_seq"),
                             protocol.after_seq(data, "after_tool_seq"))

    def on_regenerate(self, payload=None):
        """Sent when the user asks for another answer: a new version of the last reply streams (the old stays)."""
        data = protocol.payload_dict(payload)
        return chat().branches.regenerate(request.sid, protocol.optional_id(data, "conversation_id"))

    def on_edit_message(self, payload=None):
        """Sent when the user resends an edited message: a new version of it streams its own reply (the old
        stays)."""
        data = protocol.payload_dict(payload)
        files = protocol.attachment_ids(data)
        text = protocol.message_text(data, current_app.config["MAX_MESSAGE_CHARS"], allow_blank=bool(files))
        ack = chat().branches.edit(request.sid, protocol.message_id(data), text, protocol.client_id(data), files)
        log.info("event=edit_message sid=%s conversation=%s message=%s reply=%s chars=%d%s", request.sid,
                 ack["conversation_id"], ack["message_id"], ack["reply_id"], len(text), logged_content(text))
        return ack

    def on_switch_branch(self, payload=None):
        """Sent when the user flips a message's versions (‹ 2/3 ›) or opens a search result off the shown path."""
        data = protocol.payload_dict(payload)
        return chat().branches.switch(request.sid, protocol.message_id(data))

    def on_search(self, payload=None):
        """Sent as the user types in the sidebar's search box: the session's matching titles and messages."""
        data = protocol.payload_dict(payload)
        return chat().conversations.search(request.sid, protocol.search_query(data, QUERY_MAX),
                                           protocol.search_limit(data, MAX_RESULTS))

    def on_load_more(self, payload=None):
        """Sent when the user scrolls to the top of a conversation: the page of messages before `before_id`."""
        data = protocol.payload_dict(payload)
        return chat().load_more(request.sid, protocol.required_id(data, "conversation_id"), protocol.before_id(data))

    def on_list_models(self, payload=None):
        """Sent by the model picker: the models the operator allows, and the default."""
        protocol.payload_dict(payload)
        return chat().conversations.list_models(request.sid)

    def on_set_model(self, payload=None):
        """Sent when the user picks a model for a conversation (null: back to the default)."""
        data = protocol.payload_dict(payload)
        return chat().conversations.set_model(request.sid, protocol.required_id(data, "conversation_id"),
                                              protocol.model_id(data))

    def on_list_tools(self, payload=None):
        """Sent by the composer: the tools this conversation's provider and model can use (built-ins, MCP tools)."""
        data = protocol.payload_dict(payload)
        return tools().list_tools(request.sid, protocol.optional_id(data, "conversation_id"))

    def on_update_conversation(self, payload=None):
        """Sent when the user changes a conversation's settings: any subset of them (here: `tools`, which tools its
        replies may use); every tab gets `conversation_updated`."""
        data = protocol.payload_dict(payload)
        conversation_id = protocol.required_id(data, "conversation_id")
        ack = tools().choose(request.sid, conversation_id, tool_wire.tool_ids(data) if "tools" in data else None)
        # The other settings belong to the team layer's handler, when the namespace takes one in (a mixin).
        others = getattr(super(), "on_update_conversation", None)
        if others is not None and set(data) - {"conversation_id", "tools"}:
            return others(payload)
        return ack

    def on_approve_tool(self, payload=None):
        """Sent by a tab answering `tool_approval`: run (or decline) a destructive step; the first answer wins."""
        data = protocol.payload_dict(payload)
        return tools().approve(request.sid, protocol.reply_id(data), tool_wire.step_id(data), tool_wire.approve(data))

    def on_list_conversations(self, payload=None):
        """Sent by the sidebar: the session's conversations, newest first."""
        protocol.payload_dict(payload)
        return chat().conversations.list(request.sid)

    def on_new_conversation(self, payload=None):
        """Sent by the New chat button: create a conversation (with a preset's settings, when named) and show it."""
        data = protocol.payload_dict(payload)
        return chat().conversations.new(request.sid, protocol.optional_id(data, "preset_id"))

    def on_open_conversation(self, payload=None):
        """Sent when the user picks a conversation in the sidebar: show its history."""
        data = protocol.payload_dict(payload)
        return chat().conversations.open(request.sid, protocol.required_id(data, "conversation_id"))

    def on_rename_conversation(self, payload=None):
        """Sent when the user renames a conversation."""
        data = protocol.payload_dict(payload)
        return chat().conversations.rename(request.sid, protocol.required_id(data, "conversation_id"),
                                           protocol.title_text(data))

    def on_delete_conversation(self, payload=None):
        """Sent when the user confirms deleting a conversation."""
        data = protocol.payload_dict(payload)
        return chat().conversations.delete(request.sid, protocol.required_id(data, "conversation_id"))


socketio.on_namespace(ChatNamespace("/"))


@socketio.on_error_default
def on_unhandled(exc):
    """Last resort for errors outside `answer_errors` (e.g. in connect or disconnect): log, tell the client plainly."""
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled socket error ref=%s: %r", ref, exc)
    emit("error", ChatError("internal", f"Something went wrong on our side (reference {ref}).").payload())
