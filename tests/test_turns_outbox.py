"""The reply outbox (coalescing, seq order) and the pacer (flushes due text, applies remote stops)."""

from __future__ import annotations

import threading

from chatbot.turns.outbox import Pacer, ReplyOutbox


def recording_outbox(window: float):
    """An outbox whose deltas land in a list."""
    sent: list[tuple[int, str]] = []
    return ReplyOutbox(7, lambda seq, text: sent.append((seq, text)), window), sent


def test_outbox_sends_first_piece_at_once_then_coalesces():
    box, sent = recording_outbox(window=3600)
    for piece in ("Hel", "lo", " wor", "ld"):
        box.add(piece)
    assert sent == [(0, "Hel")]
    box.flush()
    assert sent == [(0, "Hel"), (1, "lo world")]


def test_outbox_with_zero_window_sends_every_piece():
    box, sent = recording_outbox(window=0)
    for piece in ("a", "b", "c"):
        box.add(piece)
    assert sent == [(0, "a"), (1, "b"), (2, "c")]


def test_outbox_flush_only_if_due_keeps_text_inside_the_window():
    box, sent = recording_outbox(window=3600)
    box.add("first")
    box.add("held")
    box.flush(only_if_due=True)
    assert sent == [(0, "first")]
    box.flush()
    box.flush()  # nothing buffered: no empty delta
    assert sent == [(0, "first"), (1, "held")]


def test_outbox_keeps_seq_order_across_threads():
    box, sent = recording_outbox(window=0)
    threads = [threading.Thread(target=lambda: [box.add("x") for _ in range(200)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [seq for seq, _ in sent] == list(range(800))


class FakeStream:
    """Records close()."""

    def __init__(self):
        """Not closed yet."""
        self.closed = threading.Event()

    def close(self):
        """Remember the call."""
        self.closed.set()


def threaded_pacer(stop_requested):
    """A pacer on real threads."""
    def start(fn):
        thread = threading.Thread(target=fn, daemon=True)
        thread.start()
        return thread

    import time

    return Pacer(start, time.sleep, stop_requested)


def test_pacer_flushes_text_left_waiting():
    box, sent = recording_outbox(window=0.01)
    flushed = threading.Event()
    box._send = lambda seq, text: (sent.append((seq, text)), flushed.set() if seq == 1 else None)
    pacer = threaded_pacer(lambda reply_id: False)
    box.add("first")
    box.add("waiting")  # inside the window: only the pacer can send it now
    pacer.watch(box, FakeStream())
    assert flushed.wait(5)
    pacer.forget(box.reply_id)
    assert sent == [(0, "first"), (1, "waiting")]


def test_pacer_closes_stream_on_remote_stop_request():
    box, _ = recording_outbox(window=0.01)
    stream = FakeStream()
    stop = threading.Event()
    pacer = threaded_pacer(lambda reply_id: stop.is_set() and reply_id == 7)
    pacer.watch(box, stream)
    stop.set()
    assert stream.closed.wait(5)
    pacer.forget(box.reply_id)


def test_pacer_survives_a_failing_check():
    box, sent = recording_outbox(window=0.01)
    calls = {"n": 0}
    stream = FakeStream()

    def flaky(reply_id):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("redis went away")
        return True

    pacer = threaded_pacer(flaky)
    pacer.watch(box, stream)
    assert stream.closed.wait(5)
    pacer.forget(box.reply_id)


def test_outbox_waits_for_the_reader_to_catch_up_within_two_windows():
    now = [0.0]
    sent: list[tuple[int, str]] = []
    box = ReplyOutbox(7, lambda seq, text: sent.append((seq, text)), window=0.03, clock=lambda: now[0])
    assert box.add("first") is True
    now[0] = 0.04  # the window has passed, but the read found data already buffered: keep gathering
    assert box.add("a", caught_up=False) is False
    assert box.add("b", caught_up=True) is True  # a read had to wait: send what we have
    now[0] = 0.05
    assert box.add("c", caught_up=False) is False
    now[0] = 0.11  # behind for two windows: send anyway
    assert box.add("d", caught_up=False) is True
    assert sent == [(0, "first"), (1, "ab"), (2, "cd")]
