"""`python -m bench.run --timing`: where a run's wall time goes, printed at its end.

Phases of the run (imports, inputs, each method's scoring, figures, summary, report) in wall seconds,
and per method the per-pair phases measured around each pair where it is scored (in its worker
process when there are workers, so they add up the workers' time): loading the pair's tensors, the
method's call, the metrics, the record rows (and sample PNGs), and the parent's record writes. The
harness's share is everything but the method's call, over the method's call.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PAIR_PHASES = ("load", "method", "metrics", "records", "write")


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process started (Linux: /proc; 10 ms ticks), else None."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _zeros() -> defaultdict[str, float]:
    return defaultdict(float)


@dataclass
class Timing:
    """Seconds per run phase (in order) and per method per-pair phase, with the pair counts."""

    run: dict[str, float] = field(default_factory=dict)
    pairs: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(_zeros))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.run[name] = self.run.get(name, 0.0) + time.perf_counter() - start

    def add_pairs(self, method: str, count: int, phases: dict[str, float]) -> None:
        row = self.pairs[method]
        row["pairs"] += count
        for name, seconds in phases.items():
            row[name] += seconds

    def lines(self) -> list[str]:
        total = sum(self.run.values())
        out = [f"timing (wall s): {total:.2f} in all"]
        for name, seconds in self.run.items():
            out.append(f"  {name:<30} {seconds:7.2f} s  {seconds / total:6.1%}")
        for method, row in self.pairs.items():
            n = max(1.0, row["pairs"])
            per_pair = "  ".join(f"{name} {row[name] / n * 1000:.1f}" for name in PAIR_PHASES)
            harness = sum(row[name] for name in PAIR_PHASES if name != "method")
            share = harness / row["method"] if row["method"] else float("nan")
            out.append(
                f"  {method:<10} {int(row['pairs'])} pairs, ms per pair: {per_pair}; "
                f"harness / method {share:.1%}"
            )
        return out

    def print(self) -> None:
        print("\n".join(self.lines()), file=sys.stderr)
