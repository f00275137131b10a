"""Pictures: re-encoded without EXIF/GPS, first GIF frame, scaled, bombs and broken files refused."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from chatbot.files.errors import FileRejected
from chatbot.files.pictures import MAX_SIDE, reencode
from tests import files_kit


def test_jpeg_gps_exif_is_gone():
    """The camera and GPS position in the upload are not in the re-encoded copy."""
    original = files_kit.make_jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test file has GPS
    picture = reencode(original, "image/jpeg")
    assert picture.mime == "image/jpeg"
    again = Image.open(io.BytesIO(picture.data))
    assert not again.getexif() and not again.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"SpyCam" not in picture.data and b"Exif" not in picture.data


def test_png_exif_gone_and_transparency_kept():
    """A PNG's eXIf chunk goes; a transparent PNG stays PNG, an opaque one becomes JPEG."""
    picture = reencode(files_kit.make_png(exif_gps=True), "image/png")
    assert picture.mime == "image/jpeg" and b"eXIf" not in picture.data
    transparent = reencode(files_kit.make_png(mode="RGBA"), "image/png")
    assert transparent.mime == "image/png" and Image.open(io.BytesIO(transparent.data)).mode == "RGBA"


def test_gif_first_frame_and_webp():
    """An animated GIF becomes its first frame; WebP is read."""
    picture = reencode(files_kit.make_gif(), "image/gif")
    assert Image.open(io.BytesIO(picture.data)).convert("RGB").getpixel((5, 5))[0] > 200  # red, not blue
    assert reencode(files_kit.make_webp(), "image/webp").width == 30


def test_scaled_to_max_side():
    """A large picture is scaled so its longer side is MAX_SIDE, proportions kept."""
    picture = reencode(files_kit.make_png(size=(4000, 1000)), "image/png")
    assert (picture.width, picture.height) == (MAX_SIDE, MAX_SIDE // 4)


def test_png_bomb_refused():
    """100 million declared pixels in a few hundred kilobytes: refused from the header."""
    bomb = files_kit.make_png_bomb(10000)
    assert len(bomb) < 1_000_000
    with pytest.raises(FileRejected) as caught:
        reencode(bomb, "image/png")
    assert caught.value.code == "file_too_large"


@pytest.mark.parametrize("make", [files_kit.make_jpeg_with_gps, files_kit.make_png])
def test_truncated_or_lying_pictures_fail_cleanly(make):
    """Half a picture, or a picture whose bytes are another format than sniffed, is refused cleanly."""
    data = make()
    with pytest.raises(FileRejected):
        reencode(data[: len(data) // 3], "image/png" if data.startswith(b"\x89PNG") else "image/jpeg")
    with pytest.raises(FileRejected):
        reencode(data, "image/gif")
