"""A small model's habit of writing a transcript instead of answering: a reply that opens with a speaker's label
("Sender: Alex", "Liam: A friendly and helpful AI assistant.") and goes on with more speakers' lines.

`RolePlayGuard` filters a reply's text as it streams: it drops such an opening label, and once a reply has opened
with one, ends it at the next line that starts with a label. A reply that opens normally is passed through as it
comes (only its first few characters wait until they cannot be a label). Framework-free.
"""

from __future__ import annotations

import re

# A speaker's label: one or two capitalised words, a colon, then text on the same line.
LABEL = re.compile(r"[A-Z][A-Za-z]{1,20}(?: [A-Z][A-Za-z]{1,20})?:[ \t]+")
# What may still become a label once more text arrives.
LABEL_PREFIX = re.compile(r"[A-Z][A-Za-z]{0,20}(?: (?:[A-Z][A-Za-z]{0,20})?)?(?::[ \t]*)?")


def _undecided(line: str) -> bool:
    """Whether the start of a line may still turn out to be a label (it is one, or could become one)."""
    return LABEL_PREFIX.fullmatch(line) is not None and LABEL.fullmatch(line) is None


class RolePlayGuard:
    """Feed it a reply's text piece by piece; it returns what to send. `ended` says the reply should stop here."""

    def __init__(self) -> None:
        """Start at the reply's first line."""
        self.ended = False
        self.transcript = False  # the reply opened with a label
        self._first = True  # still deciding whether the reply opens with a label
        self._held = ""  # text not yet sent: the start of a line being decided (with its newline)

    def feed(self, text: str) -> str:
        """Take the next piece of the reply; return the part that can be sent now."""
        if self.ended:
            return ""
        self._held += text
        if self._first:
            body = self._held.lstrip()
            line = body.split("\n", 1)[0]
            label = LABEL.match(line)
            if label:
                self._first, self.transcript = False, True
                self._held = body[label.end():]
            elif not body or "\n" not in body and _undecided(line):
                return ""
            else:
                self._first = False
        if not self.transcript:
            sent, self._held = self._held, ""
            return sent
        return self._next_lines()

    def _next_lines(self) -> str:
        """In a transcript: send up to a line start not yet decided; end the reply at a line opening with a label."""
        sent = ""
        while True:
            newline = self._held.find("\n")
            if newline == -1:
                sent, self._held = sent + self._held, ""
                return sent
            sent += self._held[:newline]
            rest = self._held[newline:]
            start = rest.lstrip()
            line = start.split("\n", 1)[0]
            if LABEL.match(line):
                self.ended, self._held = True, ""
                return sent
            if "\n" not in start and (not start or _undecided(line)):
                self._held = rest  # the newline waits with the start of its line
                return sent
            sent += rest[:len(rest) - len(start)] + line
            self._held = start[len(line):]

    def flush(self) -> str:
        """The reply ended upstream: whatever was held back (a transcript's trailing newlines dropped)."""
        held, self._held = self._held, ""
        if self.ended:
            return ""
        return held.rstrip() if self.transcript else held
