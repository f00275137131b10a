"""An asyncio loop in its own native thread, and a way for green (eventlet/gevent) or plain threads to await it.

The `mcp` SDK is asyncio (anyio). Under monkey-patching the green loop must never wait inside C, so the asyncio
loop runs in a native thread with a selector over the OS's epoll, and a caller waits for a result by reading one
byte from a socket pair: a green socket under eventlet/gevent (other green threads run meanwhile, and no pool thread
is held however long a tool takes), a plain one otherwise. The loop thread writes that byte with a raw `os.write`.
No `concurrent.futures` or patched locks cross the thread boundary.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import select
import selectors
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from ..offload import green_mode, start_native_thread


def _original_epoll() -> type:
    """The OS's `select.epoll` class (gevent removes it from the patched module, eventlet replaces the module)."""
    mode = green_mode()
    if mode == "eventlet":
        from eventlet import patcher

        return patcher.original("select").epoll
    if mode == "gevent":
        from gevent import monkey

        return monkey.get_original("select", "epoll")
    import select

    return select.epoll


class _NativeEpollSelector(selectors._PollLikeSelector):
    """The standard library's EpollSelector over the OS's epoll (patched `selectors` modules drop that class)."""

    _EVENT_READ = select.EPOLLIN
    _EVENT_WRITE = select.EPOLLOUT

    def __init__(self) -> None:
        """Open an epoll object from the unpatched class."""
        self._selector_cls = _original_epoll()
        super().__init__()

    def fileno(self) -> int:
        """The epoll object's descriptor."""
        return self._selector.fileno()

    def select(self, timeout: float | None = None) -> list:
        """Wait for readiness in C (this thread is native: nothing green waits on it)."""
        timeout = -1 if timeout is None else (0 if timeout <= 0 else math.ceil(timeout * 1e3) * 1e-3)
        ready = []
        try:
            fd_events = self._selector.poll(timeout, max(len(self._fd_to_key), 1))
        except InterruptedError:
            return ready
        for fd, event in fd_events:
            events = (selectors.EVENT_WRITE if event & ~select.EPOLLIN else 0) | (
                selectors.EVENT_READ if event & ~select.EPOLLOUT else 0
            )
            key = self._fd_to_key.get(fd)
            if key:
                ready.append((key, events & key.events))
        return ready

    def close(self) -> None:
        """Close the epoll object."""
        self._selector.close()
        super().close()


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the loop's executor jobs (getaddrinfo) inline in the loop thread: no (green) worker threads start."""

    def submit(self, function: Callable, /, *args, **kwargs) -> concurrent.futures.Future:
        """Run now; hand back a finished future."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)
        return future


class Pending:
    """One coroutine running on the loop: `wait()` for its result from any thread, `cancel()` it from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start unanswered, with the socket pair the answer wakes the waiter through."""
        self._loop = loop
        self._reader, self._writer = socket.socketpair()
        self._task: asyncio.Task | None = None
        self._cancelled = False
        self._result: Any = None
        self._error: BaseException | None = None

    def _start(self, factory: Callable[[], Awaitable[Any]]) -> None:
        """In the loop thread: run the coroutine as a task (unless cancelled before it started)."""
        if self._cancelled:
            self._settle(None, asyncio.CancelledError())
            return
        self._task = self._loop.create_task(self._run(factory))

    async def _run(self, factory: Callable[[], Awaitable[Any]]) -> None:
        """Await the coroutine and keep what it gave."""
        try:
            self._settle(await factory(), None)
        except BaseException as exc:  # noqa: BLE001 - the waiter re-raises it
            self._settle(None, exc)

    def _settle(self, result: Any, error: BaseException | None) -> None:
        """Record the outcome and wake the waiter (a raw write: this is the loop's native thread)."""
        self._result, self._error = result, error
        os.write(self._writer.fileno(), b"!")

    def wait(self) -> Any:
        """Wait (cooperatively under green threads) until the coroutine ends; its result, or its error raised."""
        try:
            # Exactly one byte comes, written after the outcome is set: once it is read, the writer is done with it.
            while not self._reader.recv(1):
                pass
        finally:
            self._reader.close()
            self._writer.close()
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        """Cancel the coroutine (idempotent; safe from any thread); `wait()` then raises CancelledError."""
        self._cancelled = True
        self._loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        """In the loop thread: cancel the task if it runs."""
        if self._task is not None and not self._task.done():
            self._task.cancel()


class LoopThread:
    """One asyncio loop in one native thread per process, started on first use (again after a fork)."""

    def __init__(self) -> None:
        """Nothing runs until the first submit."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started if needed."""
        if self._loop is None or self._pid != os.getpid():
            self._loop = asyncio.SelectorEventLoop(_NativeEpollSelector())
            self._loop.set_default_executor(_InlineExecutor(max_workers=1))
            self._pid = os.getpid()
            start_native_thread(self._serve, self._loop)
        return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        """The thread's body: run the loop until stop()."""
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def submit(self, factory: Callable[[], Awaitable[Any]]) -> Pending:
        """Run `factory()` on the loop; the returned Pending waits for or cancels it."""
        loop = self.loop
        pending = Pending(loop)
        loop.call_soon_threadsafe(pending._start, factory)
        return pending

    def run(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        """Submit and wait: the coroutine's result (or its error raised here)."""
        return self.submit(factory).wait()

    def stop(self) -> None:
        """Stop the loop (tests, shutdown); a later submit starts a new one."""
        if self._loop is not None and self._pid == os.getpid():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None
