"""The asyncio loop thread: results and errors come back, cancel() ends a running coroutine."""

import asyncio
import threading

import pytest

from chatbot.tools.bridge import LoopThread


@pytest.fixture
def thread():
    """A loop thread, stopped afterwards."""
    loop_thread = LoopThread()
    yield loop_thread
    loop_thread.stop()


def test_runs_on_its_own_thread_and_gives_results_and_errors(thread):
    async def where():
        return threading.get_ident(), asyncio.get_running_loop()

    ident, loop = thread.run(where)
    assert ident != threading.get_ident() and loop is thread.loop

    async def fail():
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        thread.run(fail)


def test_cancel_ends_a_running_coroutine(thread):
    started = threading.Event()

    async def forever():
        started.set()
        await asyncio.Event().wait()

    pending = thread.submit(forever)
    assert started.wait(5)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        pending.wait()
