"""Peak memory of one method call, recorded beside its latency (`peak_mb` in latency.csv).

CUDA: `torch.cuda.max_memory_allocated` above what was allocated before the call (the peak
counter is reset first). CPU: growth of the resident set, the kernel's high-water mark VmHWM
after the call minus VmRSS before it, with the mark reset through /proc/self/clear_refs ("5",
Linux ≥ 4.0); memory freed and reused inside the call is not counted twice. NaN where neither
is available (another OS, a locked /proc).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in {_STATUS}")


class PeakMemory:
    """`start()` before the call, `stop()` after it: the call's peak memory growth in MiB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._before = 0

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._before = torch.cuda.memory_allocated(self.device)
            return
        try:
            _CLEAR_REFS.write_text("5")
            self._before = _status_kib("VmRSS") * 1024
        except OSError:
            self._before = -1

    def stop(self) -> float:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self._before < 0:
            return math.nan
        else:
            peak = _status_kib("VmHWM") * 1024
        return max(0, peak - self._before) / 2**20
