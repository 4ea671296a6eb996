"""Process-wide CPU settings that bench.evaluate / bench.run, the Trainer (bench.fit / bench.train) and
bench.perf apply once, before they compute, and record (docs/performance.md):

- glibc's malloc keeps freed memory for reuse (`keep_freed_memory`). PyTorch's CPU allocator asks
  malloc for every tensor. glibc serves a request above its mmap threshold (128 KiB at start, raised
  by frees up to 32 MiB) with a fresh mmap and unmaps it on free, and gives freed memory at the
  heap's top back to the kernel above 128 KiB: a step that makes the same large tensors again then
  writes to new pages, one page fault each (≈ 150,000 per PConv cpu-profile training step on the
  2-core machine). With both thresholds raised, freed memory stays in the heap and the next step
  reuses it: the same numbers, fewer faults. Freed memory up to the trim threshold stays with the
  process instead of going back to the system. `INPAINT_BENCH_MALLOC=default` keeps glibc's behaviour.
- denormal floats flush to zero (`bench.core.tensors.flush_denormals`: the CPU's FTZ and DAZ modes,
  through torch.set_flush_denormal). LBAM's Gaussian attention (Eq. 9) underflows exp() below float32's
  smallest normal number (1.2e-38) in trained networks, and x86 cores compute with such numbers
  through slow microcode: the cpu profile's LBAM step went from 0.35 s to 0.64–1.15 s from step 58 on.
  Flushed, they are zero; `INPAINT_BENCH_DENORMALS=keep` keeps them.
"""

from __future__ import annotations

import ctypes
import os

from bench.core.tensors import flush_denormals

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 1 << 30  # requests below 1 GiB come from the heap
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt's int takes: ≈ 2 GiB kept before trimming
MALLOC_OPT_OUT = "INPAINT_BENCH_MALLOC"
KEEPING = "glibc malloc keeps freed memory (mmap threshold 1 GiB, trim threshold 2 GiB)"

_applied: str | None = None  # what this process uses, once decided: mallopt cannot be undone


def glibc_version() -> str | None:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):  # not a POSIX system that knows the name
        return None
    return version if version and version.startswith("glibc") else None


def keep_freed_memory() -> str:
    """Raise glibc's mmap and trim thresholds (once per process; its children inherit them) unless
    INPAINT_BENCH_MALLOC=default; returns what the process's allocator does, for the records."""
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get(MALLOC_OPT_OUT, "").strip().lower() == "default":
        _applied = f"system malloc, its defaults ({MALLOC_OPT_OUT}=default)"
    elif glibc_version() is None:
        _applied = "system malloc, its defaults (not glibc)"
    else:
        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD):
            _applied = KEEPING
        else:
            _applied = "glibc malloc, its defaults (mallopt refused the thresholds)"
    return _applied


def prepare_process() -> dict[str, str]:
    """Both settings, applied if not yet; what run.json, checkpoints and perf.json record as `process`."""
    return {"allocator": keep_freed_memory(), "denormals": flush_denormals()}
