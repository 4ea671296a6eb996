"""Render the HTML report from a stored run (scores.csv, latency.csv, run.json, samples/, figures/,
training/): reports/index.html shows the newest rendered run with an index of all rendered runs;
reports/runs/<id>.html keeps a page per run. Works offline and from file://.

`python -m bench.report runs/<id> [--out reports/index.html]` re-renders from the records.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd

from bench.core.files import read_json, safe_name
from bench.core.records import read_latency, read_scores
from bench.core.vocabulary import BUCKETS, METRIC_LABELS, OUTSIDE, TABLE_METRICS, bucket_label
from bench.reports import paper
from bench.reports import plots as report_plots
from bench.reports.aggregate import latency_stats
from bench.reports.protocols import protocol_means, run_order, sensitivity_rows
from bench.reports.tables import (
    PROTOCOL_DESCRIPTIONS,
    paired_rows,
    sensitivity_table,
    table1_rows,
    table2_rows,
    table2_variants,
)


def copy_tree_files(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)


def sample_grid(run_dir: Path, assets: Path, method_names: list[str]) -> list[dict[str, Any]]:
    """Per bucket the stored sample folders, as asset paths relative to `assets`."""
    copy_tree_files(run_dir / "samples", assets / "samples")
    grid = []
    for bucket_folder in sorted((assets / "samples").glob("bucket*")):
        order = int(bucket_folder.name.removeprefix("bucket"))
        examples = []
        for example in sorted(p for p in bucket_folder.iterdir() if p.is_dir()):
            names = [
                ("input", "input"),
                *[(safe_name(m), m) for m in method_names],
                ("ground_truth", "ground truth"),
            ]
            tiles = [
                {"label": label, "src": (example / f"{file}.png").relative_to(assets).as_posix()}
                for file, label in names
                if (example / f"{file}.png").is_file()
            ]
            examples.append({"name": example.name, "tiles": tiles})
        label = bucket_label(BUCKETS[order]) if order < len(BUCKETS) else OUTSIDE
        grid.append({"bucket": label, "examples": examples})
    return grid


def training_plots(run_dir: Path, assets: Path, provenance: dict[str, Any]) -> list[dict[str, str]]:
    plots = []
    for name, file_name in sorted(provenance.get("training_logs", {}).items()):
        path = run_dir / "training" / file_name
        log = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        if len(log):
            target = f"training_{file_name.removesuffix('.csv')}.png"
            report_plots.training_curves(log, f"training of {name}", assets / target)
            plots.append({"title": f"training curves: {name}", "src": target})
    return plots


def comparability(provenance: dict[str, Any]) -> list[str]:
    """Reasons the numbers cannot be compared with the paper's, for the banner."""
    reasons = []
    dataset = provenance["dataset"]
    if dataset["name"] != "places":
        reasons.append(
            f"the data set is {dataset['name']} ({dataset['description']}); "
            "the paper's Table 1 was measured on Places365 (10 categories)"
        )
    for name, info in provenance.get("methods", {}).items():
        training = info.get("training") or {}
        if training.get("profile") == "mini":
            reasons.append(
                f"{name} was trained with the CPU 'mini' profile ({training.get('steps')} steps, "
                f"{training.get('size')} px, on {training.get('dataset')})"
            )
        for deviation in training.get("deviations") or []:
            reasons.append(f"{name}: {deviation}")
        if info.get("options", {}).get("trained") is False:
            reasons.append(f"{name} has random weights (untrained)")
    return reasons


def template_environment() -> jinja2.Environment:
    folder = resources.files("bench.reports").joinpath("templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )


def render_report(run_dir: Path, out: Path) -> Path:
    """Write `out` and out.parent/runs/<id>.html (assets in out.parent/assets/<id>/)."""
    run_dir, out = Path(run_dir), Path(out)
    provenance = read_json(run_dir / "run.json")
    scores = read_scores(run_dir / "scores.csv")
    latency_path = run_dir / "latency.csv"
    latency = read_latency(latency_path)
    present = set(scores["method"])
    method_names = [m for m in provenance["config"]["methods"] if m in present]
    seed, order = provenance["config"].get("seed", 0), run_order(run_dir, scores)
    protocol = provenance["config"].get("protocol", {}).get("name", "per-image")
    every = {name: protocol_means(scores, name, order, seed) for name in PROTOCOL_DESCRIPTIONS}
    means = every[protocol]
    run_id = run_dir.name
    assets = out.parent / "assets" / run_id
    if assets.exists():
        shutil.rmtree(assets)
    assets.mkdir(parents=True)
    plots = []
    for metric in TABLE_METRICS:
        if (means.metric == metric).any():
            report_plots.metric_by_bucket(means, metric, assets / f"{metric}_by_bucket.png")
            plots.append(
                {"title": f"{METRIC_LABELS[metric]} by hole ratio", "src": f"{metric}_by_bucket.png"}
            )
    if len(latency):
        report_plots.latency(latency, assets / "latency.png")
        plots.append({"title": "latency per image", "src": "latency.png"})
    plots += training_plots(run_dir, assets, provenance)
    copy_tree_files(run_dir / "figures", assets / "figures")
    figures = [
        {"name": name, "figure7": f"figures/{files['figure7']}", "figure8": f"figures/{files['figure8']}"}
        for name, files in provenance.get("figures", {}).items()
        if all((assets / "figures" / files[key]).is_file() for key in ("figure7", "figure8"))
    ]
    instances = table2_variants(method_names)
    reference, paired = paired_rows(scores, method_names)
    context = {
        "run_id": run_id,
        "provenance": provenance,
        "method_names": method_names,
        "paper_names": [paper.PAPER_METHOD_NAMES.get(m.split("@")[0], "") for m in method_names],
        "untrained": [
            m
            for m in method_names
            if provenance["methods"].get(m, {}).get("options", {}).get("trained") is False
        ],
        "table1": table1_rows(means, method_names),
        "protocol_name": protocol,
        "protocols": PROTOCOL_DESCRIPTIONS,
        "sensitivity": sensitivity_table(
            sensitivity_rows(every["per-image"], every["release"], method_names)
        ),
        "table2": table2_rows(means, instances),
        "table2_buckets": [bucket_label(b) for b in BUCKETS],
        "paired_reference": reference,
        "paired": paired,
        "latency": latency_stats(latency).to_dict("records") if len(latency) else [],
        "grid": sample_grid(run_dir, assets, method_names),
        "plots": plots,
        "figures": figures,
        "not_comparable": comparability(provenance),
    }
    runs_dir = out.parent / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / f"{run_id}.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "dataset": provenance["dataset"]["name"],
                "methods": method_names,
                "started": provenance.get("started", ""),
                "status": provenance.get("status", ""),
            }
        )
    )
    runs = sorted(
        (json.loads(p.read_text()) for p in runs_dir.glob("*.json")), key=lambda r: r["started"], reverse=True
    )
    template = template_environment().get_template("index.html.j2")
    (runs_dir / f"{run_id}.html").write_text(
        template.render(**context, base=f"../assets/{quote(run_id)}/", runs=runs, runs_base=""),
        encoding="utf-8",
        errors="backslashreplace",  # file names that are not UTF-8 are shown as \xNN escapes
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        template.render(**context, base=f"assets/{quote(run_id)}/", runs=runs, runs_base="runs/"),
        encoding="utf-8",
        errors="backslashreplace",  # file names that are not UTF-8 are shown as \xNN escapes
    )
    return out
