"""Helpers shared by the benchmarks: child processes on loopback, /proc CPU readings, statistics, tables."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The benchmarks run as plain scripts (`python bench/stream_bench.py`); the repo root holds chatbot/ and tests/.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def rss_kb(pid: int) -> int:
    """Resident set size of a process in KiB (VmRSS from /proc/<pid>/status), 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this (the benchmark's) process."""
    times = os.times()
    return times.user + times.system


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return percentile(values, 50)


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile by linear interpolation between closest ranks, NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table, numbers right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(_looks_numeric(row[i]) for row in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = (v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if n else "-" * (w + 2) for w, n in zip(widths, numeric, strict=True))
    rule += "|"
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def _looks_numeric(text: str) -> bool:
    """Tell whether a cell holds a number (so it is right-aligned)."""
    return re.fullmatch(r"[-+]?[0-9.,]+( ?[%a-zµ]+)?|n/a|nan", text) is not None


def fmt(value: float, digits: int = 1) -> str:
    """A number with `digits` decimals, or n/a."""
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


class Child:
    """A child process on loopback, its output in a log file, stopped politely then forcefully."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path):
        """Start the process now."""
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match:
        """Wait until the log matches `pattern` (polling a file the child writes; bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log())
            if found:
                return found
            self.check_alive()
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} printed no {pattern!r} within {timeout} s:\n{self.log()[-3000:]}")

    def wait_http_ok(self, url: str, timeout: float) -> None:
        """Wait until `url` answers 200 (the process polls nothing itself, so we poll it, bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout} s:\n{self.log()[-3000:]}")

    def check_alive(self) -> None:
        """Raise with the log if the process has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_watchdog(seconds: float, children: list[Child], workdir: Path | None = None) -> threading.Timer:
    """Kill the children, remove `workdir` and exit with status 3 if the benchmark still runs after `seconds`."""

    def expire() -> None:
        print(f"\nbenchmark exceeded its {seconds:.0f} s budget; stopping", file=sys.stderr, flush=True)
        for child in children:
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait(10)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def cpu_pressure_seconds() -> float | None:
    """Seconds in which some runnable task waited for a CPU, machine-wide (Linux PSI), or None if unavailable."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    total = re.search(r"total=(\d+)", line)
    return int(total.group(1)) / 1e6 if total else None


def cpu_pressure_avg10() -> float | None:
    """Machine-wide share (%) of the last 10 s in which some task waited for a CPU, or None if unavailable."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    found = re.search(r"avg10=([0-9.]+)", line)
    return float(found.group(1)) if found else None


def wait_until_quiet(max_wait: float, threshold: float) -> float | None:
    """Wait up to `max_wait` s for CPU pressure (avg10) under `threshold` %; returns the last reading."""
    deadline = time.monotonic() + max_wait
    reading = cpu_pressure_avg10()
    while reading is not None and reading >= threshold and time.monotonic() < deadline:
        time.sleep(1.0)  # PSI has no change notification; its avg10 moves over seconds anyway
        reading = cpu_pressure_avg10()
    return reading


def code_version() -> str:
    """The commit the benchmark ran against, and whether the server code had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        # --no-optional-locks: a status read must not rewrite the index other people's git commands use.
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--", "app.py", "chatbot"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in app.py/chatbot' if dirty else ''}"


def machine_lines() -> list[str]:
    """Machine, date and code, one fact a line, for the top of a benchmark report."""
    model = "unknown CPU"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    except OSError:
        pass
    try:
        memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        memory_text = f", {int(memory.group(1)) / 1024 / 1024:.1f} GiB RAM" if memory else ""
    except OSError:
        memory_text = ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"Machine: {os.cpu_count()} cores ({model}){memory_text}; load average at start {load}",
        f"Python: {sys.version.split()[0]} on {os.uname().sysname} {os.uname().release}",
        f"Code: {code_version()}",
    ]
