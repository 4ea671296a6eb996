"""Non-finite scores are never averaged silently (issue 20, bug 1): every cell of both protocols
counts the pairs it left out, and the printed table, summary.csv and the report show them.
PSNR +inf (an exact prediction) counts as PSNR_CAP (reports/statistics.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.core.records import read_scores
from bench.methods.base import Method
from bench.methods.registry import _FACTORIES
from bench.reports import protocols
from bench.reports.aggregate import bucket_means, summary_table
from bench.reports.statistics import PSNR_CAP, paired_comparison
from bench.run import main

BUCKETS = ("(0.1, 0.2]", "(0.2, 0.3]")
METRICS = ("psnr", "ssim", "l1", "mse", "ssim_release")


def generated_scores(seed: int, pairs: int = 20) -> pd.DataFrame:
    """Two methods × two buckets × `pairs` pairs with NaN, +inf and -inf placed at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for method in ("a", "b"):
        for bucket in BUCKETS:
            for p in range(pairs):
                for metric in METRICS:
                    value = float(rng.uniform(0.001, 40))
                    draw = rng.random()
                    if draw < 0.1:
                        value = math.nan
                    elif draw < 0.15:
                        value = math.inf
                    elif draw < 0.18:
                        value = -math.inf
                    rows.append((method, f"i{p}", f"m-{bucket}", bucket, metric, value))
    columns = ["method", "image_id", "mask_id", "bucket", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize("seed", range(5))
def test_every_per_image_cell_counts_what_it_left_out(seed):
    scores = generated_scores(seed)
    means = bucket_means(scores, intervals=True).set_index(["method", "metric", "bucket"])
    for (method, metric, bucket), group in scores.groupby(["method", "metric", "bucket"]):
        values = group.value.to_numpy()
        if metric == "psnr":
            values = np.where(values == np.inf, PSNR_CAP, values)
        kept = values[np.isfinite(values)]
        cell = means.loc[(method, metric, bucket)]
        assert cell["count"] + cell["nonfinite"] == len(group)  # never a silently smaller n
        assert cell["nonfinite"] == (~np.isfinite(values)).sum()
        assert cell["mean"] == pytest.approx(kept.mean()) if len(kept) else math.isnan(cell["mean"])


@pytest.mark.parametrize("seed", range(5))
def test_every_release_cell_counts_the_pairs_it_did_not_batch(seed):
    scores = generated_scores(seed)
    cells = protocols.release_means(scores, batch=4)
    wide = scores[scores.metric.isin(("mse", "ssim_release", "l1"))].pivot_table(
        index=["method", "bucket", "image_id"],
        columns="metric",
        values="value",
        aggfunc="first",
        dropna=False,
    )
    for row in cells.itertuples():
        pairs = wide.loc[(row.method, row.bucket)]
        bad = int((~np.isfinite(pairs.to_numpy()).all(axis=1)).sum())
        assert (row.count, row.nonfinite) == (len(pairs) - bad, bad)


def test_an_exact_prediction_is_worth_the_cap_not_nan():
    scores = pd.DataFrame(
        [("a", f"i{i}", "m", BUCKETS[0], "psnr", v) for i, v in enumerate([math.inf, 30.0])],
        columns=["method", "image_id", "mask_id", "bucket", "metric", "value"],
    )
    cell = bucket_means(scores).iloc[0]
    assert (cell["mean"], cell["count"], cell["nonfinite"]) == ((PSNR_CAP + 30) / 2, 2, 0)
    mse = scores.assign(metric="mse", value=[0.0, 0.0])
    batches = protocols.release_batch_values(
        pd.DataFrame({"mse": mse.value, "ssim_release": [1.0, 1.0], "l1": [0.0, 0.0]})
    )
    assert batches["psnr"].tolist() == [PSNR_CAP]


def test_paired_comparison_counts_pairs_left_out():
    scores = generated_scores(3)
    table = paired_comparison(scores, "a", metrics=("psnr",)).iloc[0]
    ours = scores[(scores.method == "a") & (scores.metric == "psnr")].value.replace(np.inf, PSNR_CAP)
    theirs = scores[(scores.method == "b") & (scores.metric == "psnr")].value.replace(np.inf, PSNR_CAP)
    bad = (~(np.isfinite(ours.to_numpy()) & np.isfinite(theirs.to_numpy()))).sum()
    assert (table["n"], table["nonfinite"]) == (len(ours) - bad, bad)


class SometimesNan(Method):
    """NaN on the images whose pixel sum is odd-ish, the image itself (PSNR +inf) on the rest."""

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        odd = (image.sum(dim=(1, 2, 3)) * 255).round() % 2 == 1
        return torch.where(odd[:, None, None, None], torch.full_like(image, math.nan), image)


def test_a_method_with_nan_pairs_is_shown_with_its_count_everywhere(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(_FACTORIES, "flaky", lambda device="cpu", checkpoint=None: SometimesNan(device))
    out, report = tmp_path / "run", tmp_path / "report" / "index.html"
    common = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--workers", "1"]
    assert main(["--methods", "flaky,telea", "--out", str(out), "--report", str(report), *common]) == 0
    scores = read_scores(out / "scores.csv")
    flaky = scores[(scores.method == "flaky") & (scores.metric == "ssim")]
    nan_pairs = int(flaky.value.isna().sum())
    assert 0 < nan_pairs < len(flaky)  # the generated images give both kinds
    summary = pd.read_csv(out / "summary.csv")
    cells = summary[
        (summary.method == "flaky") & (summary.protocol == "per-image") & (summary.metric == "ssim")
    ]
    assert cells.nonfinite.sum() == nan_pairs and (cells.n + cells.nonfinite).sum() == len(flaky)
    telea = summary[(summary.method == "telea") & (summary.metric != "lpips")]  # LPIPS: no weights here
    assert (telea.nonfinite == 0).all()
    printed = capsys.readouterr().out
    assert "non-finite]" in printed and summary_table(out).count("non-finite]") > 0
    assert "non-finite, not in the mean" in report.read_text()
