"""The reply outbox (coalescing, seq order) and the pacer (flushes due text, applies remote stops)."""

from __future__ import annotations

import threading

from chatbot.streaming import Pacer, ReplyOutbox


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


def threaded_pacer(window: float, stop_requested):
    """A pacer on real threads."""
    def start(fn):
        thread = threading.Thread(target=fn, daemon=True)
        thread.start()
        return thread

    import time

    return Pacer(start, time.sleep, window, stop_requested)


def test_pacer_flushes_text_left_waiting():
    box, sent = recording_outbox(window=0.01)
    flushed = threading.Event()
    box._send = lambda seq, text: (sent.append((seq, text)), flushed.set() if seq == 1 else None)
    pacer = threaded_pacer(0.01, lambda reply_id: False)
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
    pacer = threaded_pacer(0.01, lambda reply_id: stop.is_set() and reply_id == 7)
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

    pacer = threaded_pacer(0.01, flaky)
    pacer.watch(box, stream)
    assert stream.closed.wait(5)
    pacer.forget(box.reply_id)
