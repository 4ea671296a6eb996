"""Rows of the report's tables, computed from stored scores (no rendering here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.core.vocabulary import (
    BUCKETS,
    HIGHER_IS_BETTER,
    METRIC_LABELS,
    TABLE_METRICS,
    bucket_label,
    parse_instance,
)
from bench.reports import paper
from bench.reports.statistics import paired_comparison

METRIC_FORMATS = {"psnr": "{:.2f}", "ssim": "{:.3f}", "l1": "{:.2f}", "lpips": "{:.3f}"}
TABLE2_METRICS = ("psnr", "ssim")


@dataclass
class Cell:
    ours: str
    interval: str
    n: int
    paper: str
    delta: str
    best: bool
    nonfinite: int = 0  # pairs not in the mean (NaN or ±inf; PSNR +inf counts as PSNR_CAP)


def _format(metric: str, value: float | None) -> str:
    return METRIC_FORMATS[metric].format(value) if value is not None and math.isfinite(value) else "–"


def _cell(metric: str, row: pd.Series | None, reference: float | None, best: bool) -> Cell:
    value = float(row["mean"]) if row is not None else None
    interval = ""
    if row is not None and "ci_low" in row and math.isfinite(row["ci_low"]):
        interval = f"[{_format(metric, row['ci_low'])}, {_format(metric, row['ci_high'])}]"
    return Cell(
        ours=_format(metric, value),
        interval=interval,
        n=int(row["count"]) if row is not None else 0,
        paper=_format(metric, reference) if reference is not None else "",
        delta=METRIC_FORMATS[metric].replace("{:", "{:+").format(value - reference)
        if value is not None and reference is not None
        else "",
        best=best,
        nonfinite=int(row["nonfinite"]) if row is not None and "nonfinite" in row else 0,
    )


def _best(subset: pd.DataFrame, metric: str) -> str | None:
    if subset.empty:
        return None
    means = subset.set_index("method")["mean"]
    return str(means.idxmax() if HIGHER_IS_BETTER[metric] else means.idxmin())


def table1_rows(means: pd.DataFrame, method_names: list[str]) -> list[dict[str, Any]]:
    """The Table 1 mirror: (metric, bucket) rows, one Cell per method, paper values beside."""
    rows = []
    for metric in TABLE_METRICS:
        for bucket in map(bucket_label, BUCKETS):
            subset = means[
                (means.metric == metric) & (means.bucket == bucket) & means.method.isin(method_names)
            ]
            best = _best(subset, metric)
            indexed = subset.set_index("method")
            cells = [
                _cell(
                    metric,
                    indexed.loc[m] if m in indexed.index else None,
                    paper.table1_value(m, metric, bucket),
                    m == best,
                )
                for m in method_names
            ]
            rows.append({"metric": METRIC_LABELS[metric], "bucket": bucket, "cells": cells})
    return rows


def table2_variants(method_names: list[str]) -> list[str]:
    """Instances named lbam@<Table 2 variant>, in the paper's row order."""
    order = list(paper.table2()["variant"].drop_duplicates())
    instances = [(parse_instance(m), m) for m in method_names]
    present = {label: m for (base, label), m in instances if base == "lbam" and label}
    return [present[v] for v in order if v in present]


def table2_rows(means: pd.DataFrame, instances: list[str]) -> list[dict[str, Any]]:
    """The Table 2 mirror: one row per variant, (PSNR, SSIM) × bucket cells, paper values beside."""
    reference = paper.table2().set_index(["variant", "bucket"])
    rows = []
    for method in instances:
        variant = parse_instance(method)[1]
        cells = []
        for bucket in map(bucket_label, BUCKETS):
            for metric in TABLE2_METRICS:
                subset = means[
                    (means.metric == metric) & (means.bucket == bucket) & means.method.isin(instances)
                ]
                indexed = subset.set_index("method")
                value = (
                    reference.loc[(variant, bucket), metric] if (variant, bucket) in reference.index else None
                )
                cells.append(
                    _cell(
                        metric,
                        indexed.loc[method] if method in indexed.index else None,
                        float(value) if value is not None else None,
                        method == _best(subset, metric),
                    )
                )
        rows.append({"variant": variant, "method": method, "cells": cells})
    return rows


def paired_rows(scores: pd.DataFrame, method_names: list[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """LBAM (the `lbam` instance, else `lbam@full`) against every other method, per metric."""
    reference = next((m for m in ("lbam", "lbam@full") if m in method_names), None)
    if reference is None:
        return None, []
    table = paired_comparison(scores[scores.method.isin(method_names)], reference)
    rows = []
    for record in table.to_dict("records"):
        fmt = "{:+.2f}" if record["metric"] == "psnr" else "{:+.4f}"
        rows.append(
            {
                "metric": METRIC_LABELS[record["metric"]],
                "method": record["method"],
                "difference": fmt.format(record["mean_difference"]),
                "interval": f"[{fmt.format(record['ci_low'])}, {fmt.format(record['ci_high'])}]",
                "wins": f"{record['wins']:.0%}" if math.isfinite(record["wins"]) else "–",
                "n": record["n"],
                "nonfinite": int(record.get("nonfinite", 0)),
            }
        )
    return reference, rows


PROTOCOL_DESCRIPTIONS = {
    "per-image": "the mean over pairs of per-image PSNR, SSIM (scikit-image's: Gaussian 11, σ 1.5, "
    "reflect padding, border cropped) and mean ℓ1",
    "release": "the LBAM release's test script: consecutive batches of 16 pairs per bucket "
    "(image-major), PSNR of the MSE pooled over a batch, pytorch_ssim on ×255 images (zero padding, "
    "constants of range 1), batch-mean ℓ1; the mean over batches",
}


def sensitivity_table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The protocol-sensitivity panel's rows, formatted: per-image, release, release − per-image."""
    formatted = []
    for row in rows:
        metric = row["metric"]
        formatted.append(
            {
                "metric": METRIC_LABELS[metric],
                "bucket": row["bucket"],
                "method": row["method"],
                "per_image": _format(metric, row["per_image"]),
                "release": _format(metric, row["release"]),
                "shift": METRIC_FORMATS[metric].replace("{:", "{:+").format(row["shift"])
                if math.isfinite(row["shift"])
                else "–",
            }
        )
    return formatted
