"""Tests for chatbot.providers.roleplay: a reply written as a transcript loses its speaker's label and ends where
the next speaker's line begins; any other reply passes untouched, however it is cut into pieces."""

from __future__ import annotations

import pytest

from chatbot.providers.roleplay import RolePlayGuard


def guarded(text: str, piece: int) -> tuple[str, bool]:
    """Feed `text` in pieces of `piece` characters, as a stream would: (what was sent, whether it ended early)."""
    guard, sent = RolePlayGuard(), []
    for start in range(0, len(text), piece):
        sent.append(guard.feed(text[start:start + piece]))
        if guard.ended:
            break
    return "".join(sent) + guard.flush(), guard.ended


@pytest.mark.parametrize("piece", [1, 2, 5, 1000])
@pytest.mark.parametrize(("text", "expected", "ended"), [
    ("Sender: Alex\nSentiment: Friendly\nType: ChatbotWS", "Alex", True),
    ("Liam: A friendly and helpful AI assistant.", "A friendly and helpful AI assistant.", False),
    ("Liam Smith: Hi!\n\n- one\n- two\nEmma: And you?", "Hi!\n\n- one\n- two", True),
    ("Liam: Hi!\n\n", "Hi!", False),
])
def test_a_transcript_loses_its_label_and_ends_at_the_next_speaker(text, expected, ended, piece):
    assert guarded(text, piece) == (expected, ended)


@pytest.mark.parametrize("piece", [1, 3, 1000])
@pytest.mark.parametrize("text", [
    "Hello there, friend!",
    "Yes",
    "  Hi!\n\nHow are you?",
    "The three colors are:\n\nRed: warm\nBlue: cool",
    "I'm fine.\nNote: this line stays.",
    "Paris is the capital of France.",
    "Dr. Smith: not a label (a full stop in the name)",
    "```python\nprint('hi')\n```",
])
def test_other_replies_pass_untouched(text, piece):
    assert guarded(text, piece) == (text, False)


def test_only_the_first_words_wait():
    guard = RolePlayGuard()
    assert guard.feed("Liam") == ""  # may still be a label
    assert guard.feed(" ") == ""  # so may "Liam Smith:"
    assert guard.feed("is") == "Liam is"  # a lowercase word: not a label, sent at once
    assert guard.feed(" here.") == " here."
