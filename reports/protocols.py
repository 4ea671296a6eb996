"""Evaluation protocols: how stored per-pair values become a Table 1 cell (docs/evaluation_protocols.md).

The LBAM paper states no protocol. Two are offered, both computed from the same stored records:
- `per-image` (default): the mean over pairs of per-image PSNR, SSIM (scikit-image's), ℓ1 and LPIPS;
- `release`: the official release's test script (test_random_batch.py): the pairs of a bucket in
  image-major order are cut into consecutive batches of RELEASE_BATCH; per batch PSNR is
  10·log10(1 / MSE pooled over the batch), SSIM the mean of pytorch_ssim's map on ×255 images
  (`ssim_release`), ℓ1 the batch mean; the cell is the mean over batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.files import atomic_write_text
from bench.core.records import read_scores
from bench.core.run_json import read_run_json
from bench.core.vocabulary import BUCKET_ORDER, PROTOCOLS, TABLE_METRICS
from bench.reports.aggregate import bucket_means
from bench.reports.statistics import bootstrap_interval, capped

RELEASE_BATCH = 16  # test_random_batch.py's --batchSize default
# n: the pairs in the value; nonfinite: the pairs left out because a value was NaN or ±inf
# (PSNR +inf counts as PSNR_CAP instead, reports/statistics.py)
SUMMARY_COLUMNS = ("method", "bucket", "metric", "protocol", "value", "n", "nonfinite", "ci_low", "ci_high")
MEANS_COLUMNS = [
    "method",
    "metric",
    "bucket",
    "mean",
    "count",
    "nonfinite",
    "ci_low",
    "ci_high",
    "bucket_order",
]


def pair_order(
    scores: pd.DataFrame, image_ids: Sequence[str] = (), mask_ids: Sequence[str] = ()
) -> pd.Series:
    """A sort key per row: image-major (image position, mask position) as the harness pairs them;
    ids missing from the given orders (old run folders) keep the order they appear in."""
    keys = list(zip(scores.image_id, scores.mask_id, strict=True))
    image_rank = {image: i for i, image in enumerate(image_ids)}
    mask_rank = {mask: i for i, mask in enumerate(mask_ids)}
    if all(i in image_rank and m in mask_rank for i, m in keys):
        ranks = [image_rank[i] * len(mask_rank) + mask_rank[m] for i, m in keys]
    else:
        appearance = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        ranks = [appearance[key] for key in keys]
    return pd.Series(ranks, index=scores.index)


def release_batch_values(pairs: pd.DataFrame, batch: int = RELEASE_BATCH) -> dict[str, np.ndarray]:
    """Per consecutive batch of `pairs` (one row per pair, in evaluation order, columns mse,
    ssim_release, l1): the release script's PSNR, SSIM and ℓ1 of that batch."""
    starts = range(0, len(pairs), batch)
    chunks = [pairs.iloc[start : start + batch] for start in starts]
    with np.errstate(divide="ignore"):
        psnr = np.array([10 * np.log10(1 / chunk["mse"].mean()) for chunk in chunks])
        return {
            "psnr": capped("psnr", psnr),  # a batch of exact predictions: PSNR_CAP
            "ssim": np.array([chunk["ssim_release"].mean() for chunk in chunks]),
            "l1": np.array([chunk["l1"].mean() for chunk in chunks]),
        }


def release_means(
    scores: pd.DataFrame, order: pd.Series | None = None, seed: int = 0, batch: int = RELEASE_BATCH
) -> pd.DataFrame:
    """The `release` protocol's cells, in bucket_means' layout (count: pairs; the interval: a
    bootstrap over the batch values, NaN below two batches). A pair with a non-finite mse,
    ssim_release or ℓ1 is counted in `nonfinite` and not batched (the release script would turn its
    whole batch into NaN)."""
    needed = ("mse", "ssim_release", "l1")
    wanted = scores[scores.metric.isin(needed)]
    if set(wanted.metric) != set(needed):  # run folders from before the release protocol
        return pd.DataFrame(columns=MEANS_COLUMNS)
    order = pair_order(scores) if order is None else order
    keys = ["method", "bucket", "rank", "metric"]
    wanted = wanted.assign(rank=order.loc[wanted.index]).drop_duplicates(subset=keys)
    wide = wanted.set_index(keys)["value"].astype(float).unstack("metric")  # NaN rows stay
    rows = []
    for (method, bucket), pairs in wide.groupby(level=["method", "bucket"], sort=False):
        pairs = pairs.sort_index(level="rank")
        finite = np.isfinite(pairs[list(needed)]).all(axis=1)
        nonfinite, pairs = int((~finite).sum()), pairs[finite]
        for metric, values in release_batch_values(pairs, batch).items():
            low, high = bootstrap_interval(values, seed)
            value = float(values.mean()) if len(values) else float("nan")
            rows.append(
                [method, metric, bucket, value, len(pairs), nonfinite, low, high, BUCKET_ORDER.get(bucket)]
            )
    table = pd.DataFrame(rows, columns=MEANS_COLUMNS)
    return table.sort_values(["metric", "bucket_order", "method"]).reset_index(drop=True)


def protocol_means(
    scores: pd.DataFrame, protocol: str, order: pd.Series | None = None, seed: int = 0
) -> pd.DataFrame:
    """Table cells (method, metric, bucket, mean, count, ci_low, ci_high) under `protocol`."""
    if protocol == "per-image":
        return bucket_means(scores[~scores.metric.isin(("mse", "ssim_release"))], intervals=True, seed=seed)
    if protocol == "release":
        return release_means(scores, order, seed)
    raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")


def run_order(run_dir: Path, scores: pd.DataFrame) -> pd.Series:
    """pair_order with the image and mask orders stored in run.json."""
    provenance = read_run_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    image_ids = provenance.get("dataset", {}).get("image_ids", [])
    mask_ids = provenance.get("mask_set", {}).get("mask_ids", [])
    return pair_order(scores, image_ids, mask_ids)


def summary_frame(scores: pd.DataFrame, order: pd.Series | None = None, seed: int = 0) -> pd.DataFrame:
    """summary.csv's rows: every (method, bucket, metric) under every protocol."""
    frames = []
    for protocol in PROTOCOLS:
        means = protocol_means(scores, protocol, order, seed)
        if means.empty:
            continue
        frames.append(
            means.rename(columns={"mean": "value", "count": "n"}).assign(protocol=protocol)[
                list(SUMMARY_COLUMNS) + ["bucket_order"]
            ]
        )
    if not frames:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values(["metric", "bucket_order", "method", "protocol"], kind="stable")
    return table[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def write_summary(run_dir: Path, seed: int = 0) -> Path:
    """run_dir/summary.csv from the stored scores."""
    scores = read_scores(run_dir / "scores.csv")
    path = run_dir / "summary.csv"
    atomic_write_text(path, summary_frame(scores, run_order(run_dir, scores), seed).to_csv(index=False))
    return path


def sensitivity_rows(
    per_image: pd.DataFrame, release: pd.DataFrame, methods: list[str]
) -> list[dict[str, Any]]:
    """How far each Table 1 cell moves from `per-image` to `release`: (metric, bucket, method,
    per-image value, release value, release − per-image)."""
    keys = ["method", "metric", "bucket"]
    joined = per_image.merge(release, on=keys, suffixes=("_per_image", "_release"))
    joined = joined[joined.metric.isin(TABLE_METRICS) & joined.method.isin(methods)]
    joined = joined.assign(
        metric_order=joined.metric.map(TABLE_METRICS.index),
        bucket_order=joined.bucket.map(BUCKET_ORDER),
        method_order=joined.method.map(methods.index),
    ).sort_values(["metric_order", "bucket_order", "method_order"])
    return [
        {
            "metric": row.metric,
            "bucket": row.bucket,
            "method": row.method,
            "per_image": float(row.mean_per_image),
            "release": float(row.mean_release),
            "shift": float(row.mean_release - row.mean_per_image),
        }
        for row in joined.itertuples()
    ]
