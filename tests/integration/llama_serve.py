"""Start ``llama_cpp.server`` with llama.cpp's extra weight buffer types switched off.

Run by the llama virtualenv's interpreter (not imported by the tests). llama.cpp, built for
the machine's CPU, puts the weights in AMX buffers when the CPU advertises AMX; on this
project's sandboxed machines the first decode then crashes the server (SIGSEGV, no
traceback). ``use_extra_bufts = False`` keeps the weights in plain CPU buffers, which every
x86 CPU runs; llama-cpp-python 0.3.36 has the field but no server option for it.
"""

import runpy

import llama_cpp.llama_cpp as native

_default_params = native.llama_model_default_params


def _plain_cpu_params():  # type: ignore[no-untyped-def]
    params = _default_params()
    params.use_extra_bufts = False
    return params


native.llama_model_default_params = _plain_cpu_params
runpy.run_module("llama_cpp.server", run_name="__main__")
