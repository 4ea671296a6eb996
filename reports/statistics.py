"""Seeded bootstrap intervals and paired comparisons over stored per-image scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

RESAMPLES = 2000
LEVEL = 0.95


def bootstrap_interval(values: np.ndarray, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval (Efron 1979) of the mean; NaN for fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_comparison(
    scores: pd.DataFrame, reference: str, metrics: tuple[str, ...] = ("psnr", "ssim"), seed: int = 0
) -> pd.DataFrame:
    """For each other method: mean per-pair difference (reference − other) with its bootstrap
    interval and the share of pairs where the reference is better, per metric."""
    rows = []
    key = ["image_id", "mask_id"]
    for metric in metrics:
        subset = scores[scores.metric == metric]
        ours = subset[subset.method == reference].set_index(key)["value"]
        for method in sorted(set(subset.method) - {reference}):
            theirs = subset[subset.method == method].set_index(key)["value"]
            joined = pd.concat([ours, theirs], axis=1, keys=["ours", "theirs"], join="inner")
            joined = joined[np.isfinite(joined).all(axis=1)]
            if joined.empty:
                continue
            difference = (joined["ours"] - joined["theirs"]).to_numpy()
            low, high = bootstrap_interval(difference, seed)
            rows.append(
                {
                    "metric": metric,
                    "method": method,
                    "mean_difference": float(difference.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "wins": float((difference > 0).mean()),
                    "n": len(difference),
                }
            )
    return pd.DataFrame(rows)
