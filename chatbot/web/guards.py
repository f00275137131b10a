"""Transport guards: what python-engineio and python-socketio let through that a hostile client could abuse.

Frame and body size caps the libraries do not apply everywhere, and packets they would choke on or buffer without
bound. The protocol's own payload validation is in protocol.py.
"""

from __future__ import annotations

import logging

from socketio.packet import BINARY_EVENT, EVENT

# Our protocol carries no binary data; a packet may still announce a few binary parts (refused by validation), not
# more. (Not the MAX_ATTACHMENTS setting, which counts files on a message.)
MAX_BINARY_PARTS = 8


def cap_websocket_frames(eio, max_bytes: int) -> None:
    """Make simple-websocket (gevent, threading) stop reading a frame past MAX_FRAME_BYTES, as eventlet's does."""
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

    base = eio._async.get("websocket")
    if not (isinstance(base, type) and issubclass(base, SimpleWebSocketWSGI)):
        return  # eventlet's websocket already gets max_frame_length from python-engineio

    class CappedWebSocket(base):
        """python-engineio's websocket wrapper, with the message size cap it does not pass on."""

        def __init__(self, handler, server):
            """Add `max_message_size`: without it a hostile frame is buffered whole before being refused."""
            super().__init__(handler, server)
            self.server_args = {**self.server_args, "max_message_size": max_bytes}

    eio._async = {**eio._async, "websocket": CappedWebSocket}


class PollingBodyLimit:
    """WSGI guard: refuse a Socket.IO polling POST larger than MAX_FRAME_BYTES before python-engineio sees it.

    python-engineio answers such a POST by closing the session and waiting for the client to collect its last
    packets; a client that never polls again holds that request (a connection and a green thread) for good.
    """

    def __init__(self, app, max_bytes: int, path: str = "/socket.io"):
        """Wrap the WSGI `app`; only POSTs under `path` are checked."""
        self.app, self.max_bytes, self.path = app, max_bytes, path

    def __call__(self, environ, start_response):
        """Answer 413 without reading the body when the declared length is over the limit."""
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(self.path):
            length = environ.get("CONTENT_LENGTH") or "0"
            if not length.isdigit() or int(length) > self.max_bytes:
                start_response("413 Request Entity Too Large", [("Content-Type", "text/plain")])
                return [b"Payload too large"]
        return self.app(environ, start_response)


def guard_packets(server, max_attachments: int) -> None:
    """Drop a connection that sends a malformed packet or announces more than `max_attachments` binary parts."""
    dispatch = server.eio.handlers["message"]
    log = logging.getLogger("chatbot.events")

    def on_message(eio_sid, data):
        """Check an event packet's shape, then let python-socketio decode and dispatch it."""
        if eio_sid not in server.eio.sockets:
            return None  # dropped already; these frames were in flight
        try:
            if isinstance(data, str) and data[:1] in ("", "2", "5", "6"):  # python-socketio reads "" as an event
                check_event_packet(server.packet_class(encoded_packet=data), max_attachments)
            return dispatch(eio_sid, data)
        except ValueError as exc:
            # No real client sends these; one line instead of a traceback per frame, and the sender is gone.
            log.warning("event=packet eio_sid=%s refused: %s; connection dropped", eio_sid, exc)
            server.eio.disconnect(eio_sid)
            return None

    server.eio.on("message", on_message)


def check_event_packet(packet, max_attachments: int) -> None:
    """Raise ValueError for a packet python-socketio would choke on or buffer without bound."""
    # python-socketio would collect up to 10^9 attachments of one packet, 64 KiB each.
    if packet.attachment_count > max_attachments:
        raise ValueError(f"{packet.attachment_count} binary attachments")
    data = packet.data
    named = isinstance(data, list) and data and isinstance(data[0], str)
    if packet.packet_type in (EVENT, BINARY_EVENT) and not named:
        raise ValueError("event packet without an event name")
