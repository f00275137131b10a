"""Safe file names: what a client calls its file is shown and offered as a download name, never used as a path."""

from __future__ import annotations

import re
import unicodedata

NAME_MAX = 200
DEFAULT_NAME = "file"
# Controls, and the format characters that reorder or hide text (bidi overrides make "exe.pdf" look like "fdp.exe").
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def sanitize_filename(name: object) -> str:
    """A displayable name: no path parts, no control or bidi characters, no leading dots, at most NAME_MAX
    characters (the extension kept), never empty."""
    if not isinstance(name, str):
        return DEFAULT_NAME
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("", name)
    name = " ".join(name.split()).strip(" .")
    name = name.replace('"', "'")
    if len(name) > NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[:NAME_MAX - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:NAME_MAX].rstrip(" .")
    return name or DEFAULT_NAME


def ascii_filename(name: str) -> str:
    """An ASCII stand-in for the old `filename=` parameter of Content-Disposition (the real one goes in
    `filename*`)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    folded = re.sub(r"[^A-Za-z0-9._ -]", "_", folded).strip(" .")
    return folded or DEFAULT_NAME
