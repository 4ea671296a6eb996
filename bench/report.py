"""Render reports/index.html from a stored run (scores.csv, latency.csv, run.json, samples/).

`python -m bench.report runs/<id> [--out reports/index.html]` re-renders from the records.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import pandas as pd

from bench import paper
from bench.records import LATENCY_COLUMNS, read_json, read_scores
from bench.summary import HIGHER_IS_BETTER, METRIC_LABELS, TABLE_METRICS, bucket_means, latency_stats
from datasets.masks import BUCKET_ORDER, BUCKETS, bucket_label

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRIC_FORMATS = {"psnr": "{:.2f}", "ssim": "{:.3f}", "l1": "{:.2f}", "lpips": "{:.3f}"}


@dataclass
class Cell:
    ours: str
    n: int
    paper: str
    delta: str
    best: bool


def table1_rows(means: pd.DataFrame, method_names: list[str]) -> list[dict[str, Any]]:
    """Rows of the Table 1 mirror: (metric, bucket) with one Cell per method."""
    rows = []
    for metric in TABLE_METRICS:
        fmt = METRIC_FORMATS[metric]
        for low_high in BUCKETS:
            bucket = bucket_label(low_high)
            subset = means[(means.metric == metric) & (means.bucket == bucket)].set_index("method")
            present = subset["mean"] if len(subset) else pd.Series(dtype=float)
            best = (
                (present.idxmax() if HIGHER_IS_BETTER[metric] else present.idxmin()) if len(present) else None
            )
            cells = []
            for method in method_names:
                value = float(present[method]) if method in present.index else None
                reference = paper.table1_value(method, metric, bucket)
                cells.append(
                    Cell(
                        ours=fmt.format(value) if value is not None else "–",
                        n=int(subset.loc[method, "count"]) if method in subset.index else 0,
                        paper=fmt.format(reference) if reference is not None else "",
                        delta=f"{value - reference:+.2f}"
                        if value is not None and reference is not None
                        else "",
                        best=method == best,
                    )
                )
            rows.append({"metric": METRIC_LABELS[metric], "bucket": bucket, "cells": cells})
    return rows


def plot_metric_by_bucket(means: pd.DataFrame, metric: str, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for method, rows in means[means.metric == metric].groupby("method"):
        rows = rows.sort_values("bucket_order")
        axis.plot(rows["bucket"], rows["mean"], marker="o", label=method)
    axis.set_xlabel("hole ratio bucket")
    axis.set_ylabel(METRIC_LABELS[metric])
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def sample_grid(run_dir: Path, assets: Path, relative: str, method_names: list[str]) -> list[dict[str, Any]]:
    """Per bucket the stored sample folders, copied to the report's assets."""
    grid = []
    for bucket_folder in sorted((run_dir / "samples").glob("bucket*")):
        order = int(bucket_folder.name.removeprefix("bucket"))
        examples = []
        for example in sorted(p for p in bucket_folder.iterdir() if p.is_dir()):
            tiles = []
            for name, label in [
                ("input", "input"),
                *[(m, m) for m in method_names],
                ("ground_truth", "ground truth"),
            ]:
                source = example / f"{name}.png"
                if source.is_file():
                    target = assets / "samples" / bucket_folder.name / example.name / source.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                    tiles.append(
                        {"label": label, "src": f"{relative}/{target.relative_to(assets).as_posix()}"}
                    )
            examples.append({"name": example.name, "tiles": tiles})
        grid.append({"bucket": bucket_label(BUCKETS[order]), "examples": examples})
    return grid


def template_environment() -> jinja2.Environment:
    folder = resources.files("reports").joinpath("templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )


def render_report(run_dir: Path, out: Path) -> Path:
    """Write `out` (and its assets beside it) from the records stored in `run_dir`."""
    run_dir, out = Path(run_dir), Path(out)
    provenance = read_json(run_dir / "run.json")
    scores = read_scores(run_dir / "scores.csv")
    latency_path = run_dir / "latency.csv"
    latency = pd.read_csv(latency_path) if latency_path.exists() else pd.DataFrame(columns=LATENCY_COLUMNS)
    method_names = [m for m in provenance["config"]["methods"] if m in set(scores["method"])]
    means = bucket_means(scores)
    relative = f"assets/{run_dir.name}"
    assets = out.parent / relative
    if assets.exists():
        shutil.rmtree(assets)
    assets.mkdir(parents=True)
    plots = []
    for metric in TABLE_METRICS:
        if (means.metric == metric).any():
            plot_metric_by_bucket(means, metric, assets / f"{metric}_by_bucket.png")
            plots.append(
                {
                    "title": f"{METRIC_LABELS[metric]} by hole ratio",
                    "src": f"{relative}/{metric}_by_bucket.png",
                }
            )
    dataset = provenance["dataset"]["name"]
    html = (
        template_environment()
        .get_template("index.html.j2")
        .render(
            run_id=run_dir.name,
            provenance=provenance,
            dataset=dataset,
            comparable=dataset in ("places",),
            method_names=method_names,
            paper_names=[paper.PAPER_METHOD_NAMES.get(m.split("@")[0], "") for m in method_names],
            untrained=[
                m
                for m in method_names
                if provenance["methods"].get(m, {}).get("options", {}).get("trained") is False
            ],
            table1=table1_rows(means, method_names),
            latency=latency_stats(latency).to_dict("records") if len(latency) else [],
            grid=sample_grid(run_dir, assets, relative, method_names),
            plots=plots,
            bucket_count=len(BUCKET_ORDER),
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder written by python -m bench.run")
    parser.add_argument("--out", type=Path, default=Path("reports/index.html"))
    args = parser.parse_args(argv)
    if not (args.run_dir / "run.json").is_file():
        print(f"error: {args.run_dir} is not a run folder (no run.json)", file=sys.stderr)
        return 2
    print(f"report: {render_report(args.run_dir, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
