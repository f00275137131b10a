"""The one exception of file processing: a file that cannot be used, with the one sentence people are told."""

from __future__ import annotations


class FileRejected(Exception):
    """The file cannot be used; `code` is the protocol's (file_unsupported, file_too_large), `message` its sentence."""

    def __init__(self, message: str, code: str = "file_unsupported"):
        """Keep the sentence (shown to people as it is) and the protocol code."""
        super().__init__(message)
        self.message = message
        self.code = code
