"""llama.cpp model parameters that llama-cpp-python's `Llama()` does not take, and when the local provider sets them.
Framework-free."""

from __future__ import annotations

import threading
from contextlib import contextmanager

_params_lock = threading.Lock()


def amx_advertised(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU claims Intel AMX (the flags in Linux's /proc/cpuinfo).

    A llama.cpp built for such a CPU multiplies in AMX tiles; virtual machines often advertise AMX without letting
    a process use it, and the first prompt then dies on a general protection fault (`ldtilecfg` in
    ggml_backend_amx_mul_mat, seen on 2-core VMs here). Without the extra weight buffers llama.cpp uses its plain
    kernels: for SmolLM2's Q4_1 weights nothing else is given up (CPU repacking covers other formats).
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as info:
            return any(line.startswith("flags") and " amx_tile" in line for line in info)
    except OSError:
        return False


@contextmanager
def model_params(**fields):
    """Set llama.cpp model parameters that llama-cpp-python's Llama() does not take, for the Llama() built inside."""
    import llama_cpp.llama as module

    original = module.llama_cpp.llama_model_default_params

    def params():
        """llama.cpp's defaults with `fields` set."""
        result = original()
        for name, value in fields.items():
            setattr(result, name, value)
        return result

    with _params_lock:
        module.llama_cpp.llama_model_default_params = params
        try:
            yield
        finally:
            module.llama_cpp.llama_model_default_params = original
