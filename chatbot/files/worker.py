"""The child process that analyses one upload: the bytes on stdin, the result on stdout (see analyze.py).

Run as a script (`python chatbot/files/worker.py MEMORY_MB CPU_SECONDS`), not `-m`, so it imports this folder
only: neither Flask nor the app's settings, fast to start. It limits its own address space and CPU time before
reading anything, so a hostile file that gets past the readers' own checks kills this process, not the server.
"""

from __future__ import annotations

import importlib
import importlib.util
import resource
import sys
from pathlib import Path


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    """Hard ceilings for this process: address space and CPU seconds."""
    memory = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))


def _files_package():
    """This folder imported as a package of its own (its modules use relative imports)."""
    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("chatbot_files_worker", here / "__init__.py",
                                                  submodule_search_locations=[str(here)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    return spec.name


def main(argv: list[str]) -> int:
    """Analyse stdin's bytes within the limits in argv and write the answer to stdout."""
    _limit(int(argv[0]), int(argv[1]))
    name = _files_package()
    analyze = importlib.import_module(f"{name}.analyze")
    errors = importlib.import_module(f"{name}.errors")
    data = sys.stdin.buffer.read()
    try:
        result, error = analyze.analyze(data), None
    except errors.FileRejected as exc:
        result, error = None, exc
    except MemoryError:
        result, error = None, errors.FileRejected("This file needs too much memory to read.", "file_too_large")
    except RecursionError:
        result, error = None, errors.FileRejected("This file is nested too deeply to read.")
    sys.stdout.buffer.write(analyze.encode_result(result, error))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
