from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.reports.aggregate import bucket_means
from bench.reports.statistics import bootstrap_interval, paired_comparison
from bench.reports.tables import table2_rows, table2_variants


def test_bootstrap_interval_properties():
    values = np.random.default_rng(0).normal(10, 2, 400)
    low, high = bootstrap_interval(values, seed=1)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_interval(values, seed=1)
    # about ±1.96·σ/√n around the mean
    assert high - low == pytest.approx(2 * 1.96 * values.std() / math.sqrt(len(values)), rel=0.15)
    narrow = bootstrap_interval(np.random.default_rng(0).normal(10, 2, 4000), seed=1)
    assert narrow[1] - narrow[0] < high - low
    assert bootstrap_interval(np.full(10, 3.0)) == (3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_interval(np.array([1.0])))


def scores_frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"method": m, "image_id": i, "mask_id": k, "metric": "psnr", "value": v, "bucket": "(0.1, 0.2]"}
            for m, i, k, v in rows
        ]
    )


def test_paired_comparison_by_hand():
    rows = [("lbam", f"im{i}", "m0", v) for i, v in enumerate([30.0, 28.0, 26.0, 20.0])]
    rows += [("telea", f"im{i}", "m0", v) for i, v in enumerate([29.0, 27.0, 25.0, 22.0])]
    rows += [("telea", "im9", "m0", 99.0)]  # unpaired: ignored
    table = paired_comparison(scores_frame(rows), "lbam", metrics=("psnr",))
    record = table.iloc[0]
    assert record["method"] == "telea" and record["n"] == 4
    assert record["mean_difference"] == pytest.approx((1 + 1 + 1 - 2) / 4)
    assert record["wins"] == pytest.approx(0.75)
    assert record["ci_low"] <= record["mean_difference"] <= record["ci_high"]


def test_table2_rows_follow_the_paper_order_and_values():
    rows = [(m, "im0", "m0", v) for m, v in (("lbam@full", 28.0), ("lbam@forward", 27.0), ("telea", 1.0))]
    means = bucket_means(scores_frame(rows))
    instances = table2_variants(["telea", "lbam@full", "lbam@forward"])
    assert instances == ["lbam@forward", "lbam@full"]  # the paper lists forward before full
    table = table2_rows(means, instances)
    full = table[1]["cells"][0]  # (0.1, 0.2] PSNR of full
    assert full.ours == "28.00" and full.paper == "28.73" and full.delta == "-0.73" and full.best
