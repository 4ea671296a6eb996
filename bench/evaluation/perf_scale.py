"""bench.perf's evaluation-throughput figures: pairs/s of the whole harness (loading, the method,
compositing, scoring, records) at 1, 2 and every worker; scaling efficiency; the harness's own
time per pair; and the projected wall time of the Places Table 1 protocol."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench import methods
from bench.datasets.demo import load_demo
from bench.datasets.masks import bucketed_mask_set
from bench.evaluation.harness import Pair, all_pairs, evaluate_method
from bench.evaluation.metrics import MetricProtocol
from bench.evaluation.parallel import available_cores

# Places, as the paper evaluates it: 10 categories × 50 test images, 100 masks per bucket.
PLACES_IMAGES, PLACES_MASKS_PER_BUCKET = 500, 100
PROJECTED_PAIRINGS = {
    "cross": PLACES_IMAGES * 4 * PLACES_MASKS_PER_BUCKET,  # 200,000 pairs
    "per-image (K=1)": PLACES_IMAGES * 4,  # 2,000 pairs
}


def spread(pairs: list[Pair], count: int) -> list[Pair]:
    """`count` pairs taken evenly along the image-major list (every image, every bucket)."""
    step = max(1, len(pairs) // count)
    return pairs[::step][:count]


def harness_throughput(name: str, workers: int, count: int) -> dict[str, Any]:
    """Wall time of evaluate_method on `count` demo pairs (256², free-form masks)."""
    test_set, mask_set = load_demo(256), bucketed_mask_set("free_form", 2, 0, 256)
    pairs = spread(all_pairs(test_set, mask_set), count)
    method = methods.create(name)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        evaluate_method(
            method,
            test_set,
            mask_set,
            Path(folder),
            MetricProtocol(),
            progress=False,
            pairs=pairs,
            workers=workers,
        )
        seconds = time.perf_counter() - start
        method_ms = float(pd.read_csv(Path(folder) / "latency.csv")["ms"].mean())
    return {
        "method": name,
        "workers": workers,
        "pairs": len(pairs),
        "seconds": seconds,
        "pairs_per_s": len(pairs) / seconds,
        "method_ms_mean": method_ms,
        # one process: everything but the timed call is the harness's share of a pair
        "harness_ms_per_pair": seconds * 1000 / len(pairs) - method_ms if workers == 1 else None,
    }


def scaling(names: tuple[str, ...] = ("telea", "ns", "patchmatch"), count: int = 32) -> list[dict[str, Any]]:
    rows = []
    levels = sorted({1, 2, available_cores()})
    for name in names:
        one = None
        for workers in levels:
            row = harness_throughput(name, workers, count)
            one = one or row["pairs_per_s"]
            row["speedup"] = row["pairs_per_s"] / one
            row["efficiency"] = row["speedup"] / workers
            if workers == levels[-1]:
                row["projected_places_hours"] = {
                    pairing: pairs / row["pairs_per_s"] / 3600
                    for pairing, pairs in PROJECTED_PAIRINGS.items()
                }
            rows.append(row)
    return rows


def print_scaling(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        line = (
            f"{row['method']:>10} × {row['workers']} workers: {row['pairs_per_s']:6.2f} pairs/s "
            f"({row['speedup']:.2f}x one worker, efficiency {row['efficiency']:.0%})"
        )
        if row["harness_ms_per_pair"] is not None:
            share = row["harness_ms_per_pair"] / row["method_ms_mean"]
            harness = f"harness {row['harness_ms_per_pair']:.1f} ms/pair ({share:.0%})"
            line += f"; method {row['method_ms_mean']:.1f} ms, {harness}"
        print(line)
        for pairing, hours in row.get("projected_places_hours", {}).items():
            print(f"{'':>14} Places Table 1 ({pairing}): {hours:.2f} h projected")
