"""The tus server at /files through the app: creation, resumable appends, termination, status, downloads, and
every refusal (versions, offsets, sizes, strangers, CSRF, rate limits, quota, hostile files)."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from tests import files_kit
from tests.conftest import wait_until
from tests.files_kit import TUS, tus_create, tus_patch, tus_upload


@pytest.fixture
def bearer(app, socket_client, received):
    """Factory: the Authorization header of a new session (the token of its `session_id`)."""

    def make():
        client = socket_client()
        token = received(client).wait("session_id")["token"]
        return {"Authorization": f"Bearer {token}"}

    return make


def ready(http, file_id: str, headers: dict) -> dict:
    """Wait until the file has been processed (ready or failed); its info."""
    def done():
        info = http.get(f"/files/{file_id}/info", headers=headers).get_json()
        return info if info["status"] in ("ready", "failed") else None

    return wait_until(done, what=f"file {file_id} processed")


def test_options_announces_the_server(app):
    """OPTIONS: version, extensions and maximum size (no credentials needed)."""
    answer = app.test_client().options("/files")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert answer.headers["Tus-Extension"] == "creation,termination"
    assert int(answer.headers["Tus-Max-Size"]) == 20 * 2**20


def test_pdf_in_two_patches_becomes_ready_with_pages(app, bearer):
    """A PDF sent in two PATCHes (resuming from HEAD) is stored, read and downloadable as an attachment."""
    http, auth = app.test_client(), bearer()
    data = files_kit.make_pdf(40)
    file_id = tus_upload(http, data, "hand book.pdf", auth, pieces=2)
    info = ready(http, file_id, auth)
    assert info == {"id": file_id, "name": "hand book.pdf", "kind": "document", "mime": "application/pdf",
                    "size": len(data), "status": "ready", "pages": 40}
    head = http.head(f"/files/{file_id}", headers={**TUS, **auth})
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Tus-Resumable"] == "1.0.0" and head.headers["Cache-Control"] == "no-store"
    download = http.get(f"/files/{file_id}", headers=auth)
    assert download.data == data and download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert download.headers["Tus-Resumable"] == "1.0.0"


def test_wrong_offset_version_and_type(app, bearer):
    """409 with the real offset on a wrong Upload-Offset; 412 without tus 1.0.0; 415 for another body type."""
    http, auth = app.test_client(), bearer()
    location = tus_create(http, 10, "a.txt", auth).headers["Location"]
    assert tus_patch(http, location, 0, b"hello", auth).headers["Upload-Offset"] == "5"
    wrong = tus_patch(http, location, 0, b"hello", auth)
    assert wrong.status_code == 409 and wrong.headers["Upload-Offset"] == "5"
    assert tus_patch(http, location, 5, b"hello world", auth).status_code == 413  # past Upload-Length
    old = http.post("/files", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "5", **auth})
    assert old.status_code == 412 and old.headers["Tus-Version"] == "1.0.0"
    typed = http.patch(location, data=b"hello", headers={**TUS, **auth, "Upload-Offset": "5",
                                                          "Content-Type": "text/plain"})
    assert typed.status_code == 415
    assert http.head(location, headers={**TUS, **auth}).headers["Upload-Offset"] == "5"


def test_over_max_upload_is_413_at_creation(make_app, socket_client, received):
    """An Upload-Length over MAX_UPLOAD_MB is refused before a byte is sent."""
    app = make_app(MAX_UPLOAD_MB=1)
    token = received(socket_client()).wait("session_id")["token"]
    answer = tus_create(app.test_client(), 2**20 + 1, "big.bin", {"Authorization": f"Bearer {token}"})
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "file_too_large"
    assert answer.headers["Tus-Resumable"] == "1.0.0"


def test_storage_quota(make_app, socket_client, received):
    """Uploads past USER_STORAGE_MB are refused with storage_full."""
    app = make_app(USER_STORAGE_MB=0.01)  # about 10 KB
    auth = {"Authorization": f"Bearer {received(socket_client()).wait('session_id')['token']}"}
    http = app.test_client()
    assert tus_create(http, 6000, "a", auth).status_code == 201
    full = tus_create(http, 6000, "b", auth)
    assert full.status_code == 413 and full.get_json()["error"]["code"] == "storage_full"


def test_upload_rate_limit(make_app, socket_client, received):
    """More uploads than RATE_LIMIT_UPLOADS allows are refused with 429 and Retry-After."""
    app = make_app(RATE_LIMIT_UPLOADS="2/minute")
    auth = {"Authorization": f"Bearer {received(socket_client()).wait('session_id')['token']}"}
    http = app.test_client()
    assert [tus_create(http, 1, "a", auth).status_code for _ in range(3)] == [201, 201, 429]


def test_strangers_and_unknown_ids_get_404_on_every_verb(app, bearer):
    """Another session's file is 404 for HEAD, PATCH, DELETE, info and download; so is an unknown id."""
    http, owner, stranger = app.test_client(), bearer(), bearer()
    file_id = tus_upload(http, b"private words", "secret.txt", owner, pieces=1)
    ready(http, file_id, owner)
    for target in (file_id, "0" * 32, "not-an-id"):
        location = f"/files/{target}"
        assert http.head(location, headers={**TUS, **stranger}).status_code == 404
        assert tus_patch(http, location, 0, b"x", stranger).status_code == 404
        assert http.delete(location, headers={**TUS, **stranger}).status_code == 404
        assert http.get(f"{location}/info", headers=stranger).status_code == 404
        assert http.get(location, headers=stranger).status_code == 404
    assert http.get(f"/files/{file_id}", headers=owner).data == b"private words"


def test_no_credentials_and_cookie_without_csrf(app):
    """No credentials: 401. The page's cookie may read, but changes need its CSRF token too."""
    http = app.test_client()
    assert tus_create(http, 5, "a").status_code == 401
    page = http.get("/").get_data(as_text=True)
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    from chatbot import socketio

    socketio.test_client(app, flask_test_client=http)  # the socket makes the session the cookie names
    refused = tus_create(http, 5, "a")
    assert refused.status_code == 401 and "CSRF" in refused.get_json()["error"]["message"]
    created = tus_create(http, 5, "a", {"X-CSRFToken": csrf})
    assert created.status_code == 201
    location = created.headers["Location"]
    assert tus_patch(http, location, 0, b"hello").status_code == 401
    assert tus_patch(http, location, 0, b"hello", {"X-CSRFToken": csrf}).status_code == 204
    assert http.head(location, headers=TUS).headers["Upload-Offset"] == "5"


def test_delete_terminates(app, bearer):
    """DELETE removes an unfinished upload; afterwards it is unknown."""
    http, auth = app.test_client(), bearer()
    location = tus_create(http, 10, "a", auth).headers["Location"]
    assert http.delete(location, headers={**TUS, **auth}).status_code == 204
    assert http.head(location, headers={**TUS, **auth}).status_code == 404


def test_photo_gps_stripped_and_served_inline(app, bearer):
    """A JPEG with GPS EXIF is re-encoded: the download has no EXIF and is the only copy kept."""
    http, auth = app.test_client(), bearer()
    file_id = tus_upload(http, files_kit.make_jpeg_with_gps(), "holiday.jpg", auth)
    info = ready(http, file_id, auth)
    assert (info["status"], info["kind"], info["mime"]) == ("ready", "image", "image/jpeg")
    download = http.get(f"/files/{file_id}", headers=auth)
    assert download.headers["Content-Disposition"].startswith("inline;")
    picture = Image.open(io.BytesIO(download.data))
    assert not picture.getexif() and not picture.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"SpyCam" not in download.data


@pytest.mark.parametrize(("data", "error"), [
    (files_kit.SVG_WITH_SCRIPT, "SVG pictures are not supported"),
    (files_kit.make_png_bomb(10000), "too large"),
    (files_kit.make_docx_bomb(200), "expands to far more"),
    (files_kit.make_encrypted_pdf(), "This PDF is password-protected."),
    (files_kit.make_pdf(3)[:300], "PDF"),
    (files_kit.make_pdf_bomb(200), "PDF"),
])
def test_hostile_files_fail_cleanly(app, bearer, data, error):
    """SVG with script, a PNG bomb, a DOCX zip bomb, an encrypted, a truncated PDF and a PDF bomb end as failed
    files with one sentence; nothing of them can be downloaded; the server goes on."""
    http, auth = app.test_client(), bearer()
    file_id = tus_upload(http, data, "image.png", auth)
    info = ready(http, file_id, auth)
    assert info["status"] == "failed" and error in info["error"]
    refused = http.get(f"/files/{file_id}", headers=auth)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "file_not_ready"
    assert http.get("/healthz").status_code == 200


def test_html_never_served_as_html_and_names_sanitized(app, bearer):
    """An HTML upload downloads as plain text attachment; a hostile name loses its path and controls."""
    http, auth = app.test_client(), bearer()
    file_id = tus_upload(http, b"<html><body><script>alert(1)</script><p>hi</p></body></html>",
                         "../../evil\r\n<x>.html", auth)
    info = ready(http, file_id, auth)
    assert info["name"] == "evil<x>.html" and info["mime"] == "text/html"
    download = http.get(f"/files/{file_id}", headers=auth)
    assert download.mimetype == "text/plain" and download.headers["Content-Disposition"].startswith("attachment")
    assert "\r" not in download.headers["Content-Disposition"]


def test_same_content_twice_is_ready_at_once(app, bearer):
    """The second upload of the same bytes shares the first's processed copy."""
    http, auth = app.test_client(), bearer()
    data = files_kit.make_docx()
    first = tus_upload(http, data, "one.docx", auth)
    assert ready(http, first, auth)["status"] == "ready"
    second = tus_upload(http, data, "two.docx", auth)
    info = ready(http, second, auth)
    assert (info["status"], info["name"]) == ("ready", "two.docx")
    assert http.get(f"/files/{second}", headers=auth).data == data


def test_partial_upload_survives_a_restart(make_app, socket_client, received):
    """Half an upload is in the database: a new app on it reports the offset and takes the rest."""
    first = make_app()
    from chatbot import socketio

    client = socketio.test_client(first)
    token = received(client).wait("session_id")["token"]
    auth = {"Authorization": f"Bearer {token}"}
    data = files_kit.make_pdf(2)
    location = tus_create(first.test_client(), len(data), "a.pdf", auth).headers["Location"]
    tus_patch(first.test_client(), location, 0, data[:500], auth)
    client.disconnect()
    second = make_app()
    http = second.test_client()
    offset = int(http.head(location, headers={**TUS, **auth}).headers["Upload-Offset"])
    assert offset == 500
    assert tus_patch(http, location, offset, data[offset:], auth).status_code == 204
    assert ready(http, location.rsplit("/", 1)[1], auth)["pages"] == 2


def test_accounts_cannot_reach_each_others_files(make_app):
    """In accounts mode the signed-in cookie (with the page's CSRF token) uploads; another account gets 404 on
    every verb, and a signed-out browser 401."""
    from tests.accounts_kit import CHEAP_ARGON2, Browser

    app = make_app(AUTH_MODE="accounts", SIGNUP="open", RATE_LIMIT_SIGNIN="1000/minute",
                   RATE_LIMIT_SIGNIN_PER_IP="1000/minute", **CHEAP_ARGON2)

    def signed_in(name: str) -> tuple[Browser, dict]:
        web = Browser(app.test_client())
        web.signup(name)
        page = web.get("/").get_data(as_text=True)
        return web, {"X-CSRFToken": page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]}

    alice, alice_csrf = signed_in("alice")
    bob, bob_csrf = signed_in("bob")
    file_id = tus_upload(alice.client, b"alice's private notes", "notes.txt", alice_csrf, pieces=1)
    ready(alice.client, file_id, {})
    location = f"/files/{file_id}"
    assert bob.client.head(location, headers=TUS).status_code == 404
    assert tus_patch(bob.client, location, 0, b"x", bob_csrf).status_code == 404
    assert bob.client.delete(location, headers={**TUS, **bob_csrf}).status_code == 404
    assert bob.client.get(f"{location}/info").status_code == 404
    assert bob.client.get(location).status_code == 404
    assert app.test_client().get(location).status_code == 401
    assert alice.client.get(location).data == b"alice's private notes"
