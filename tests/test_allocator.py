"""bench.core.allocator: glibc keeps freed memory (read back from glibc's own mallinfo2), the
opt-out and other C libraries keep the defaults, and the decision is made once per process."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core import allocator

ROOT = Path(__file__).resolve().parents[1]

# In a fresh interpreter: a 64 MiB tensor (above glibc's largest dynamic mmap threshold, 32 MiB)
# made and freed; glibc's own accounting says where it lived and whether its memory was kept.
PROBE = """
import ctypes, json, torch
from bench.core.allocator import keep_freed_memory

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
    allocator.glibc_version() is None or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="glibc ≥ 2.33 (mallinfo2) only",
)


def probe(**env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != allocator.OPT_OUT and "MALLOC" not in k}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
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
    assert kept["described"] == allocator.KEEPING
    assert kept["mmapped"] == 0  # not an mmap of its own …
    assert kept["heap_grew"] >= 64 * MIB  # … but heap memory …
    assert kept["free_in_heap_after"] >= 64 * MIB  # … that stays free for the next tensor


@glibc_only
def test_the_opt_out_keeps_glibcs_defaults():
    default = probe(**{allocator.OPT_OUT: "default"})
    assert default["described"] == f"system malloc, its defaults ({allocator.OPT_OUT}=default)"
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
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator, "glibc_version", lambda: "glibc 2.36")
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc)
    monkeypatch.delenv(allocator.OPT_OUT, raising=False)
    return libc


def test_thresholds_are_set_once_and_the_first_decision_is_what_is_recorded(fake_libc, monkeypatch):
    assert allocator.keep_freed_memory() == allocator.KEEPING
    assert fake_libc.calls == [(-3, 1 << 30), (-1, 2**31 - 1)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    monkeypatch.setenv(allocator.OPT_OUT, "default")  # too late: mallopt cannot be undone
    assert allocator.keep_freed_memory() == allocator.KEEPING
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
    monkeypatch.setenv(allocator.OPT_OUT, setting)
    monkeypatch.setattr(allocator, "glibc_version", lambda: glibc)
    fake_libc.accepts = accepts
    assert allocator.keep_freed_memory() == expected
    assert fake_libc.calls == ([] if setting.strip() or glibc is None else [(-3, 1 << 30)])
