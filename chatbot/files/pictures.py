"""Pictures: decoded with Pillow under a pixel limit, re-encoded so that nothing of the upload but its pixels is
kept (EXIF with camera and GPS, comments, trailing data), scaled so the longer side fits."""

from __future__ import annotations

import io
from dataclasses import dataclass

from .errors import FileRejected

MAX_PIXELS = 40_000_000  # a decompression bomb declares far more pixels than its bytes could honestly hold
MAX_SIDE = 2048  # the longer side after scaling: enough for vision models, far below their limits
JPEG_QUALITY = 85
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
BROKEN = "This picture could not be read: it may be damaged or truncated."


@dataclass(frozen=True)
class Picture:
    """A re-encoded picture: its bytes, MIME type (JPEG, or PNG when it has transparency) and size in pixels."""

    data: bytes
    mime: str
    width: int
    height: int


def reencode(data: bytes, mime: str) -> Picture:
    """Decode `data` (whose sniffed type is `mime`), first frame only, and encode it anew without metadata."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own check, at twice this, raises DecompressionBombError
    try:
        with Image.open(io.BytesIO(data), formats=[FORMATS[mime]]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:  # checked from the header, before a single pixel is decoded
                raise FileRejected(f"This picture is too large: {width}×{height} pixels (at most "
                                   f"{MAX_PIXELS // 1_000_000} million).", "file_too_large")
            image.seek(0)
            image.load()
            # The orientation lives in EXIF, which is about to go: turn the pixels instead.
            frame = ImageOps.exif_transpose(image)
            alpha = frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info)
            frame = frame.convert("RGBA" if alpha else "RGB")
    except FileRejected:
        raise
    except Image.DecompressionBombError:
        raise FileRejected("This picture is too large to open safely.", "file_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, TypeError):
        raise FileRejected(BROKEN) from None
    frame.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # No exif=, icc_profile= or comment: the new file carries pixels only.
    if alpha:
        frame.save(out, "PNG", optimize=True)
        mime = "image/png"
    else:
        frame.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        mime = "image/jpeg"
    return Picture(out.getvalue(), mime, frame.width, frame.height)
