"""bench.core.process: glibc keeps freed memory (read back from glibc's own mallinfo2), denormals
flush to zero on every thread, the opt-outs and other systems keep the defaults, each decided once
per process, and a resumed training keeps its checkpoint's denormal mode."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core import process, tensors
from bench.training.checks import changed_denormals

ROOT = Path(__file__).resolve().parents[1]

# In a fresh interpreter: a 64 MiB tensor (above glibc's largest dynamic mmap threshold, 32 MiB)
# made and freed; glibc's own accounting says where it lived and whether its memory was kept.
PROBE = """
import ctypes, json, torch
from bench.core.process import keep_freed_memory

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Mallinfo2
described = keep_freed_memory()
before = mallinfo2()
tensor = torch.ones(64 << 20, dtype=torch.uint8)
during = mallinfo2()
del tensor
after = mallinfo2()
print(json.dumps({
    "described": described,
    "mmapped": during.hblkhd - before.hblkhd,
    "heap_grew": during.arena - before.arena,
    "free_in_heap_after": after.fordblks,
}))
"""
MIB = 1 << 20
glibc_only = pytest.mark.skipif(
    process.glibc_version() is None or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="glibc ≥ 2.33 (mallinfo2) only",
)


def probe(**env: str) -> dict:
    return run_probe(PROBE, **env)


def run_probe(script: str, *arguments: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("INPAINT_BENCH_", "MALLOC_"))}
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@glibc_only
def test_large_tensors_come_from_the_heap_and_their_memory_is_kept():
    kept = probe()
    assert kept["described"] == process.KEEPING
    assert kept["mmapped"] == 0  # not an mmap of its own …
    assert kept["heap_grew"] >= 64 * MIB  # … but heap memory …
    assert kept["free_in_heap_after"] >= 64 * MIB  # … that stays free for the next tensor


@glibc_only
def test_the_opt_out_keeps_glibcs_defaults():
    default = probe(**{process.MALLOC_OPT_OUT: "default"})
    assert default["described"] == f"system malloc, its defaults ({process.MALLOC_OPT_OUT}=default)"
    assert default["mmapped"] >= 64 * MIB  # glibc's default: an mmap, unmapped again on free
    assert default["free_in_heap_after"] < 64 * MIB


class FakeLibc:
    def __init__(self, accepts: bool = True) -> None:
        self.calls: list[tuple[int, int]] = []
        self.accepts = accepts

    @property
    def mallopt(self):
        def mallopt(option: int, value: int) -> int:
            self.calls.append((option, value))
            return int(self.accepts)

        return mallopt


@pytest.fixture
def fake_libc(monkeypatch) -> FakeLibc:
    libc = FakeLibc()
    monkeypatch.setattr(process, "_applied", None)
    monkeypatch.setattr(process, "glibc_version", lambda: "glibc 2.36")
    monkeypatch.setattr(process.ctypes, "CDLL", lambda name: libc)
    monkeypatch.delenv(process.MALLOC_OPT_OUT, raising=False)
    return libc


def test_thresholds_are_set_once_and_the_first_decision_is_what_is_recorded(fake_libc, monkeypatch):
    assert process.keep_freed_memory() == process.KEEPING
    assert fake_libc.calls == [(-3, 1 << 30), (-1, 2**31 - 1)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    monkeypatch.setenv(process.MALLOC_OPT_OUT, "default")  # too late: mallopt cannot be undone
    assert process.keep_freed_memory() == process.KEEPING
    assert len(fake_libc.calls) == 2


@pytest.mark.parametrize(
    ("setting", "glibc", "accepts", "expected"),
    [
        ("default", "glibc 2.36", True, "system malloc, its defaults (INPAINT_BENCH_MALLOC=default)"),
        (" Default ", "glibc 2.36", True, "system malloc, its defaults (INPAINT_BENCH_MALLOC=default)"),
        ("", None, True, "system malloc, its defaults (not glibc)"),
        ("", "glibc 2.36", False, "glibc malloc, its defaults (mallopt refused the thresholds)"),
    ],
)
def test_other_cases_say_what_the_process_uses(fake_libc, monkeypatch, setting, glibc, accepts, expected):
    monkeypatch.setenv(process.MALLOC_OPT_OUT, setting)
    monkeypatch.setattr(process, "glibc_version", lambda: glibc)
    fake_libc.accepts = accepts
    assert process.keep_freed_memory() == expected
    assert fake_libc.calls == ([] if setting.strip() or glibc is None else [(-3, 1 << 30)])


# In a fresh interpreter with two threads (the pool started before the setting, or not): values
# below float32's smallest normal number, made by products and by exp(), over enough elements that
# both threads of the OpenMP pool take a share.
DENORMAL_PROBE = """
import json, sys, torch
torch.set_num_threads(2)
if sys.argv[1] == "late":
    torch.ones(1 << 22).mul_(2)  # the pool's threads exist before the setting, as in a library caller
from bench.core.tensors import flush_denormals
described = flush_denormals()
count = 1 << 22
products = torch.full((count,), 1e-20) * torch.full((count,), 1e-20)  # 1e-40: a denormal
underflow = torch.exp(torch.full((count,), -90.0))  # 8.2e-40
print(json.dumps({
    "described": described,
    "products": int(products.count_nonzero()),
    "exp": int(underflow.count_nonzero()),
    "count": count,
}))
"""


def test_denormals_flush_to_zero_on_every_thread():
    flushed = run_probe(DENORMAL_PROBE, "early")
    assert flushed["described"] == tensors.FLUSHED
    assert flushed["products"] == flushed["exp"] == 0


def test_threads_started_before_the_setting_keep_denormals_on_all_threads():
    late = run_probe(DENORMAL_PROBE, "late")
    assert late["described"] == "kept (the process's compute threads had started before they could be set)"
    assert late["products"] == late["exp"] == late["count"]  # not half flushed: all threads alike


def test_the_denormal_opt_out_keeps_them():
    kept = run_probe(DENORMAL_PROBE, "early", INPAINT_BENCH_DENORMALS="keep")
    assert kept["described"] == "kept (INPAINT_BENCH_DENORMALS=keep)"
    assert kept["products"] == kept["exp"] == kept["count"]


def test_the_denormal_mode_is_decided_once_and_a_cpu_without_it_says_so(monkeypatch):
    calls = []
    monkeypatch.setattr(tensors, "_denormals", None)
    monkeypatch.delenv(tensors.DENORMALS_OPT_OUT, raising=False)
    monkeypatch.setattr("torch.set_flush_denormal", lambda on: calls.append(on) or False)
    assert tensors.flush_denormals() == "kept (this CPU has no flush-to-zero mode)"
    monkeypatch.setenv(tensors.DENORMALS_OPT_OUT, "keep")
    assert tensors.flush_denormals() == "kept (this CPU has no flush-to-zero mode)"
    assert calls == [True]


@pytest.mark.parametrize(
    ("stored", "current", "expected"),
    [
        ({"denormals": tensors.FLUSHED}, {"denormals": tensors.FLUSHED}, []),
        ({"denormals": "kept (INPAINT_BENCH_DENORMALS=keep)"}, {"denormals": "kept (x)"}, []),
        (None, {"denormals": "kept (x)"}, []),  # checkpoints from before the record: kept
        (
            None,
            {"denormals": tensors.FLUSHED},
            [f"denormals kept → {tensors.FLUSHED} (INPAINT_BENCH_DENORMALS=keep resumes it)"],
        ),
        (
            {"denormals": tensors.FLUSHED},
            {"denormals": "kept (x)"},
            ["denormals flushed → kept (x) (unset INPAINT_BENCH_DENORMALS)"],
        ),
    ],
)
def test_a_resumed_training_keeps_its_checkpoints_denormal_mode(stored, current, expected):
    assert changed_denormals(stored, current) == expected
