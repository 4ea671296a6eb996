"""Aggregates of stored scores: per method × metric × bucket means, latency statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.records import read_scores
from bench.core.vocabulary import BUCKET_ORDER, METRIC_LABELS, TABLE_METRICS
from bench.reports.statistics import bootstrap_interval


def bucket_means(scores: pd.DataFrame, intervals: bool = False, seed: int = 0) -> pd.DataFrame:
    """Mean and count per (method, metric, bucket), buckets in ascending hole ratio; with
    `intervals`, the seeded 95 % bootstrap interval of each mean (ci_low, ci_high)."""
    finite = scores[np.isfinite(scores["value"])]
    if finite.empty:
        columns = ["method", "metric", "bucket", "mean", "count", "bucket_order"]
        return pd.DataFrame(columns=columns + (["ci_low", "ci_high"] if intervals else []))
    groups = finite.groupby(["method", "metric", "bucket"])["value"]
    table = groups.agg(["mean", "count"]).reset_index()
    if intervals:
        bounds = groups.apply(lambda v: bootstrap_interval(v.to_numpy(), seed)).reset_index(drop=True)
        table["ci_low"] = [b[0] for b in bounds]
        table["ci_high"] = [b[1] for b in bounds]
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
    wide = means.pivot_table(index=["metric", "bucket_order", "bucket"], columns="method", values="mean")
    wide = wide.reindex(sorted(wide.index, key=lambda k: (TABLE_METRICS.index(k[0]), k[1])))
    wide.index = [f"{METRIC_LABELS[m]} {b}" for m, _, b in wide.index]
    return wide.to_string(float_format=lambda v: f"{v:.3f}")
