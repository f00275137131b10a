"""Run a blocking call in a native OS thread without blocking the event loop (eventlet, gevent or plain threads).

Under eventlet or gevent monkey-patching, code that waits inside C (a llama.cpp decode step, a database driver)
holds the whole loop: every socket stalls. `run_native` hands such a call to the framework's own pool of real
threads (eventlet's tpool, gevent's hub threadpool), whose wake-up the loop waits on cooperatively; without
monkey-patching the caller already is an OS thread and the call runs inline. Framework-free: no Flask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def green_mode() -> str | None:
    """Which green-thread framework has patched `threading` in this process: "eventlet", "gevent" or None."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("thread"):
            return "eventlet"
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            return "gevent"
    return None


def run_native(function: Callable[..., T], *args) -> T:
    """Call `function(*args)` in a native thread, letting other green threads run meanwhile; return its result.

    Exceptions propagate to the caller. Calls from one caller run one after another (never two at once), though
    not necessarily in the same OS thread.
    """
    mode = green_mode()
    if mode == "eventlet":
        from eventlet import tpool

        return tpool.execute(function, *args)
    if mode == "gevent":
        import gevent

        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def _native_thread_module():
    """The `_thread` functions as the OS provides them, whatever monkey-patching has replaced."""
    mode = green_mode()
    if mode == "eventlet":
        from eventlet import patcher

        return patcher.original("_thread")
    if mode == "gevent":
        import types

        from gevent import monkey

        names = ("start_new_thread", "allocate_lock")
        return types.SimpleNamespace(**dict(zip(names, monkey.get_original("_thread", names), strict=True)))
    import _thread

    return _thread


def start_native_thread(function: Callable[..., object], *args) -> None:
    """Run `function(*args)` in a new OS thread (never a green one); it must not touch green primitives."""
    _native_thread_module().start_new_thread(function, args)


class Doorbell:
    """Wakes one waiter from another OS thread: `ring()` from the native side, `wait()` through `run_native`.

    A raw (unpatched) lock held while there is no news; ring() releases it, wait() takes it back. Rings while
    nobody waits fold into one, so the waiter drains everything new after each wake-up.
    """

    def __init__(self) -> None:
        """Start with no news."""
        self._lock = _native_thread_module().allocate_lock()
        self._lock.acquire()

    def ring(self) -> None:
        """Say there is news (from any OS thread; never blocks)."""
        try:
            self._lock.release()
        except RuntimeError:
            pass  # already rung and not yet heard

    def wait(self) -> None:
        """Block this OS thread until the next ring (call it through `run_native` from a green thread)."""
        self._lock.acquire()
