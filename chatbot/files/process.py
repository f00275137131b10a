"""Analyse an upload in a child process with hard limits on time and memory, without blocking the event loop.

A thread cannot be stopped, so a PDF that takes an hour or a picture that needs gigabytes would hold a native
thread (and memory) of the server for good. A child process can be: it limits its own memory and CPU time, and
is killed at the wall-clock timeout. `subprocess` under eventlet or gevent is their cooperative version once the
app has monkey-patched (app.py), so waiting for the child lets every other green thread run; under plain threads
it blocks only the calling thread.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from .analyze import Analysis, decode_result
from .errors import FileRejected

WORKER = Path(__file__).with_name("worker.py")
MEMORY_MB = 1024
CPU_SECONDS = 60
TIMEOUT_SECONDS = 90.0
log = logging.getLogger("chatbot.files")

TOO_SLOW = "This file took too long to read: it was given up."
TOO_BIG = "This file needs too much memory or time to read: it was given up."


def analyze_bounded(data: bytes, *, memory_mb: int = MEMORY_MB, cpu_seconds: int = CPU_SECONDS,
                    timeout: float = TIMEOUT_SECONDS) -> Analysis:
    """Analyse `data` in the worker process; FileRejected for an unusable file or one that hits a limit."""
    try:
        done = subprocess.run([sys.executable, "-I", str(WORKER), str(memory_mb), str(cpu_seconds)], input=data,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FileRejected(TOO_SLOW) from None
    if done.returncode != 0 or not done.stdout:
        # Killed by its CPU limit (SIGXCPU), or out of memory where even the error could not be written.
        log.warning("file worker exit=%s stderr=%r", done.returncode, done.stderr[-500:])
        raise FileRejected(TOO_BIG, "file_too_large")
    return decode_result(done.stdout)
