"""The report's matplotlib plots (PNG), from stored scores, latencies and training logs."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from bench.core.vocabulary import METRIC_LABELS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def metric_by_bucket(means: pd.DataFrame, metric: str, path: Path) -> None:
    """Mean per bucket with its bootstrap interval, one line per method."""
    figure, axis = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for method, rows in means[means.metric == metric].groupby("method"):
        rows = rows.sort_values("bucket_order")
        if "ci_low" in rows:
            errors = [rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]
            axis.errorbar(rows["bucket"], rows["mean"], yerr=errors, marker="o", capsize=3, label=method)
        else:
            axis.plot(rows["bucket"], rows["mean"], marker="o", label=method)
    axis.set_xlabel("hole ratio bucket")
    axis.set_ylabel(METRIC_LABELS[metric])
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    _save(figure, path)


def latency(latency_table: pd.DataFrame, path: Path) -> None:
    """ms per image per method: box = interquartile range, line = median (log scale)."""
    methods = sorted(latency_table["method"].unique())
    figure, axis = plt.subplots(figsize=(5.5, 0.5 + 0.45 * len(methods)), dpi=110)
    axis.boxplot(
        [latency_table.loc[latency_table.method == m, "ms"] for m in methods],
        orientation="horizontal",
        tick_labels=methods,
        showfliers=False,
    )
    axis.set_xscale("log")
    axis.set_xlabel("ms per image (batch 1)")
    axis.grid(alpha=0.3, axis="x")
    _save(figure, path)


def training_curves(log: pd.DataFrame, title: str, path: Path) -> None:
    """Every logged loss term against the step (a moving average of 25 steps)."""
    terms = [c for c in log.columns if c not in ("step", "lr_g", "seconds")]
    figure, axis = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for term in terms:
        axis.plot(log["step"], log[term].rolling(25, min_periods=1).mean(), label=term)
    axis.set_yscale("symlog", linthresh=1e-3)
    axis.set_xlabel("step")
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    _save(figure, path)


def learning_curve(validation: dict, title: str, path: Path) -> None:
    """Validation PSNR per bucket against the step, Telea's PSNR on the same pairs dashed in the
    same colour: a model under its dashed line has not learned to beat the classical fill."""
    curve = pd.DataFrame(validation.get("curve") or [])
    telea = validation.get("telea") or {}
    figure, axis = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, (bucket, rows) in zip(colours, curve.groupby("bucket"), strict=False):
        axis.plot(rows["step"], rows["psnr"], marker=".", color=colour, label=f"{bucket}")
        if bucket in telea:
            axis.axhline(telea[bucket]["psnr"], color=colour, linestyle="--", linewidth=0.9)
    axis.set_xlabel("training step")
    axis.set_ylabel("validation PSNR (dB)")
    axis.set_title(f"{title} (dashed: Telea on the same pairs)", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, title="hole ratio", title_fontsize=7)
    _save(figure, path)
