"""Uploads against the real server in both green modes: a PDF in two PATCHes, a connection cut mid-body that the
client resumes from HEAD, and the server answering other requests while a file is read in the worker."""

from __future__ import annotations

import os
import socket

import pytest
import requests

from tests import files_kit
from tests.conftest import wait_until
from tests.files_kit import TUS, tus_metadata
from tests.live_client import LiveClient

pytestmark = pytest.mark.server


def noisy_page(number: int) -> str:
    """A page's known text and a few kilobytes of words that do not compress."""
    noise = os.urandom(1500).hex()
    return files_kit.page_text(number) + " " + " ".join(noise[at:at + 16] for at in range(0, len(noise), 16))


def cut_patch(server, location: str, offset: int, body: bytes, send: int, auth: dict) -> None:
    """A PATCH that announces `body` but sends only its first `send` bytes, then drops the connection."""
    head = (f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: {auth['Authorization']}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(head + body[:send])
        conn.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_upload_cut_mid_body_resumes(live_server, async_mode):
    """Bytes that arrived before the cut are kept; HEAD says where to go on; the rest completes the file."""
    server = live_server(async_mode)
    client = LiveClient(server.url)
    auth = {"Authorization": f"Bearer {client.wait('session_id')['token']}"}
    try:
        data = files_kit.make_pdf(250, text=noisy_page)  # large enough for several stored pieces
        assert len(data) > 700_000
        created = requests.post(server.url + "/files", headers={**TUS, **auth, "Upload-Length": str(len(data)),
                                                                "Upload-Metadata": tus_metadata("big.pdf")})
        location = created.headers["Location"]
        cut_patch(server, location, 0, data, 600_000, auth)

        def offset():
            answer = requests.head(server.url + location, headers={**TUS, **auth})
            return int(answer.headers["Upload-Offset"]) or None

        def resume():
            """What a tus client does: HEAD, then PATCH the rest from there; a 409 (the cut request was still
            storing its last piece) means ask again."""
            resumed = wait_until(offset, what="bytes of the cut PATCH stored")
            assert 0 < resumed <= 600_000  # whole pieces at least, never more than was sent
            rest = requests.patch(server.url + location, data=data[resumed:],
                                  headers={**TUS, **auth, "Upload-Offset": str(resumed),
                                           "Content-Type": "application/offset+octet-stream"})
            assert rest.status_code in (204, 409)
            return rest if rest.status_code == 204 else None

        rest = wait_until(resume, what="the rest sent from the offset HEAD reported")
        assert rest.headers["Upload-Offset"] == str(len(data))
        assert requests.get(server.url + "/healthz", timeout=5).ok  # answered while the worker reads the PDF

        def processed():
            info = requests.get(f"{server.url}{location}/info", headers=auth).json()
            return info if info["status"] in ("ready", "failed") else None

        info = wait_until(processed, timeout=60, what="file processed")
        assert info["status"] == "ready" and info["pages"] >= 250
        assert requests.get(server.url + location, headers=auth).content == data
    finally:
        client.close()
