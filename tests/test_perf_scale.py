"""bench.perf's scaling figures: the pairs they time and the projection arithmetic."""

from __future__ import annotations

import pytest

from bench.evaluation import perf_scale
from bench.evaluation.harness import Pair


def test_spread_takes_pairs_evenly_along_the_list():
    pairs = [Pair(i, m) for i in range(8) for m in range(8)]
    chosen = perf_scale.spread(pairs, 16)
    assert len(chosen) == 16 and {p.image_index for p in chosen} == set(range(8))
    assert {p.mask_index for p in chosen} == {0, 4}


def test_places_projection_counts_the_documented_pairs(monkeypatch):
    assert perf_scale.PROJECTED_PAIRINGS == {"cross": 200_000, "per-image (K=1)": 2_000}
    rates = {1: 2.0, 2: 3.0}

    def fake(name: str, workers: int, count: int) -> dict:
        return {
            "method": name,
            "workers": workers,
            "pairs_per_s": rates[workers],
            "harness_ms_per_pair": None,
        }

    monkeypatch.setattr(perf_scale, "harness_throughput", fake)
    monkeypatch.setattr(perf_scale, "available_cores", lambda: 2)
    one, two = perf_scale.scaling(("telea",))
    assert two["speedup"] == pytest.approx(1.5) and two["efficiency"] == pytest.approx(0.75)
    assert two["projected_places_hours"]["cross"] == pytest.approx(200_000 / 3.0 / 3600)
    assert "projected_places_hours" not in one
