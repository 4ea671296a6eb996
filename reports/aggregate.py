"""Aggregates of stored scores: per method × metric × bucket means, latency statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.records import read_scores
from bench.core.vocabulary import BUCKET_ORDER, METRIC_LABELS, TABLE_METRICS
from bench.reports.statistics import PSNR_CAP, bootstrap_interval, with_capped_values


def bucket_means(scores: pd.DataFrame, intervals: bool = False, seed: int = 0) -> pd.DataFrame:
    """Mean and count per (method, metric, bucket), buckets in ascending hole ratio; with
    `intervals`, the seeded 95 % bootstrap interval of each mean (ci_low, ci_high).

    PSNR's +inf (an exact prediction) counts as PSNR_CAP; any other non-finite value is left out of
    the mean and counted in `nonfinite`, so `count + nonfinite` is always every stored pair."""
    columns = ["method", "metric", "bucket", "mean", "count", "nonfinite", "bucket_order"]
    if scores.empty:
        return pd.DataFrame(columns=columns + (["ci_low", "ci_high"] if intervals else []))
    scores = with_capped_values(scores)
    scores = scores.assign(kept=scores["value"].where(scores["finite"]), bad=~scores["finite"])
    groups = scores.groupby(["method", "metric", "bucket"])
    table = groups.agg(mean=("kept", "mean"), count=("kept", "count"), nonfinite=("bad", "sum"))
    table = table.reset_index()
    if intervals:
        bounds = [bootstrap_interval(v.dropna().to_numpy(), seed) for _, v in groups["kept"]]
        table["ci_low"] = [b[0] for b in bounds]
        table["ci_high"] = [b[1] for b in bounds]
    table["nonfinite"] = table["nonfinite"].astype(int)
    table["bucket_order"] = table["bucket"].map(BUCKET_ORDER)
    return table.sort_values(["metric", "bucket_order", "method"]).reset_index(drop=True)


def latency_stats(latency: pd.DataFrame) -> pd.DataFrame:
    """Median and interquartile range of ms per image, per method; the largest peak memory growth
    of a call (MiB, NaN for records made before it was measured)."""
    grouped = latency.groupby("method")["ms"]
    peak = latency.reindex(columns=["method", "peak_mb"]).groupby("method")["peak_mb"]
    return pd.DataFrame(
        {
            "median_ms": grouped.median(),
            "q25_ms": grouped.quantile(0.25),
            "q75_ms": grouped.quantile(0.75),
            "n": grouped.count(),
            "peak_mb": pd.to_numeric(peak.max(), errors="coerce"),
        }
    ).reset_index()


def summary_table(run_dir: Path, protocol: str = "per-image") -> str:
    """The Table 1 layout as text under `protocol`: metric × bucket rows, one column per method."""
    from bench.reports.protocols import protocol_means, run_order  # that module builds on this one

    scores = read_scores(run_dir / "scores.csv")
    means = protocol_means(scores, protocol, run_order(run_dir, scores))
    means = means[means["metric"].isin(TABLE_METRICS)]
    if means.empty:
        return "no scores stored"
    means = means.assign(
        cell=[cell_text(m, k) for m, k in zip(means["mean"], means["nonfinite"], strict=True)]
    )
    wide = means.pivot_table(
        index=["metric", "bucket_order", "bucket"], columns="method", values="cell", aggfunc="first"
    )
    wide = wide.reindex(sorted(wide.index, key=lambda k: (TABLE_METRICS.index(k[0]), k[1])))
    wide.index = [f"{METRIC_LABELS[m]} {b}" for m, _, b in wide.index]
    wide.columns.name = None
    note = ""
    if means["nonfinite"].sum():
        note = (
            "\n[k non-finite]: k pairs of that cell scored NaN or ±inf and are not in its mean "
            f"(PSNR +inf, an exact prediction, counts as {PSNR_CAP:g} dB)"
        )
    return wide.fillna("").to_string() + note


def cell_text(mean: float, nonfinite: int) -> str:
    """A printed cell: the mean to 3 decimals, then `[k non-finite]` when pairs were left out."""
    text = f"{mean:.3f}" if np.isfinite(mean) else "–"
    return f"{text} [{nonfinite} non-finite]" if nonfinite else text
