"""Seeded bootstrap intervals and paired comparisons over stored per-image scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

RESAMPLES = 2000
LEVEL = 0.95
# What an exact prediction (MSE 0, PSNR +inf) is worth in a mean: 100 dB, the value of the
# `if mse == 0: return 100` idiom of the inpainting and super-resolution scripts papers are
# scored with. Any other non-finite value (NaN, ±inf elsewhere) is never averaged: it is counted
# (`nonfinite`) and shown beside the cell (docs/evaluation_protocols.md).
PSNR_CAP = 100.0


def capped(metric: str, values: np.ndarray) -> np.ndarray:
    """`values` of `metric` as float64 with PSNR's +inf replaced by PSNR_CAP; other values unchanged."""
    values = np.asarray(values, dtype=np.float64)
    if metric == "psnr":
        values = np.where(values == np.inf, PSNR_CAP, values)
    return values


def with_capped_values(scores: pd.DataFrame) -> pd.DataFrame:
    """scores (columns metric, value) with PSNR's +inf capped and a boolean `finite` column."""
    values = scores["value"].to_numpy(dtype=np.float64)
    is_psnr = (scores["metric"] == "psnr").to_numpy()
    values = np.where(is_psnr & (values == np.inf), PSNR_CAP, values)
    return scores.assign(value=values, finite=np.isfinite(values))


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
    interval and the share of pairs where the reference is better, per metric. PSNR's +inf is
    capped (PSNR_CAP); pairs where either value is otherwise non-finite are counted (`nonfinite`),
    never silently left out."""
    rows = []
    scores = with_capped_values(scores)
    key = ["image_id", "mask_id"]
    for metric in metrics:
        subset = scores[scores.metric == metric]
        ours = subset[subset.method == reference].set_index(key)["value"]
        for method in sorted(set(subset.method) - {reference}):
            theirs = subset[subset.method == method].set_index(key)["value"]
            joined = pd.concat([ours, theirs], axis=1, keys=["ours", "theirs"], join="inner")
            finite = np.isfinite(joined).all(axis=1)
            nonfinite, joined = int((~finite).sum()), joined[finite]
            if joined.empty:
                rows.append(
                    {
                        "metric": metric,
                        "method": method,
                        "mean_difference": float("nan"),
                        "ci_low": float("nan"),
                        "ci_high": float("nan"),
                        "wins": float("nan"),
                        "n": 0,
                        "nonfinite": nonfinite,
                    }
                )
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
                    "nonfinite": nonfinite,
                }
            )
    return pd.DataFrame(rows)
