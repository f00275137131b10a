"""Tests for chatbot.providers.llama_params: model parameters set for the Llama() built inside, and AMX left off
where the CPU claims it."""

from __future__ import annotations

import pytest


def test_model_params_reach_the_llama_built_inside(local_model):
    import llama_cpp.llama_cpp as native  # what llama_cpp.Llama() reads its model parameters from

    from chatbot.providers.llama_params import model_params

    original = native.llama_model_default_params
    assert original().use_extra_bufts is True  # llama.cpp's default: AMX and repacked weights when it can
    with model_params(use_extra_bufts=False):
        assert native.llama_model_default_params().use_extra_bufts is False
    assert native.llama_model_default_params is original


@pytest.mark.parametrize(("flags", "advertised"), [("fpu sse2 avx2 amx_bf16 amx_tile amx_int8", True),
                                                   ("fpu sse2 avx2 avx512f", False)])
def test_amx_is_off_where_the_cpu_claims_it(tmp_path, flags, advertised):
    from chatbot.providers.llama_params import amx_advertised

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert amx_advertised(str(info)) is advertised
    assert amx_advertised(str(tmp_path / "missing")) is False
