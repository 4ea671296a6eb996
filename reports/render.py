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
from bench.core.vocabulary import (
    BUCKETS,
    CPU_SCALE_LABEL,
    METRIC_LABELS,
    OUTSIDE,
    TABLE_METRICS,
    bucket_label,
    method_of,
)
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
    for name, info in sorted(provenance.get("methods", {}).items()):
        validation = (info.get("training") or {}).get("validation")
        if validation and validation.get("curve"):
            target = f"learning_{safe_name(name)}.png"
            report_plots.learning_curve(validation, f"learning curve of {name}", assets / target)
            plots.append({"title": f"learning curve: {name} (held-out validation photos)", "src": target})
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
        if training.get("profile") == "cpu":
            reasons.append(
                f"{name}: {CPU_SCALE_LABEL} ({training.get('steps')} steps, {training.get('size')} px, "
                f"width {training.get('width')}, on {training.get('dataset')})"
            )
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


def result_plots(
    means, latency, run_dir: Path, assets: Path, provenance: dict[str, Any]
) -> list[dict[str, str]]:
    """Metric-by-bucket, latency and training-curve PNGs written into `assets`."""
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
    return plots + training_plots(run_dir, assets, provenance)


def lbam_figures(run_dir: Path, assets: Path, provenance: dict[str, Any]) -> list[dict[str, str]]:
    """Figures 7–8 of every LBAM instance whose files were stored."""
    copy_tree_files(run_dir / "figures", assets / "figures")
    return [
        {"name": name, "figure7": f"figures/{files['figure7']}", "figure8": f"figures/{files['figure8']}"}
        for name, files in provenance.get("figures", {}).items()
        if all((assets / "figures" / files[key]).is_file() for key in ("figure7", "figure8"))
    ]


def trained_with_profile(provenance: dict[str, Any], name: str) -> str | None:
    return ((provenance.get("methods", {}).get(name) or {}).get("training") or {}).get("profile")


def report_context(run_dir: Path, assets: Path) -> dict[str, Any]:
    """Everything the template shows, computed from the run folder's stored records only."""
    provenance = read_json(run_dir / "run.json")
    scores, latency = read_scores(run_dir / "scores.csv"), read_latency(run_dir / "latency.csv")
    present = set(scores["method"])
    method_names = [m for m in provenance["config"]["methods"] if m in present]
    seed, order = provenance["config"].get("seed", 0), run_order(run_dir, scores)
    protocol = provenance["config"].get("protocol", {}).get("name", "per-image")
    every = {name: protocol_means(scores, name, order, seed) for name in PROTOCOL_DESCRIPTIONS}
    means = every[protocol]
    reference, paired = paired_rows(scores, method_names)
    options = {m: provenance["methods"].get(m, {}).get("options", {}) for m in method_names}
    return {
        "run_id": run_dir.name,
        "provenance": provenance,
        "method_names": method_names,
        "paper_names": [paper.PAPER_METHOD_NAMES.get(method_of(m), "") for m in method_names],
        "untrained": [m for m in method_names if options[m].get("trained") is False],
        "cpu_scale": [m for m in method_names if trained_with_profile(provenance, m) == "cpu"],
        "cpu_scale_label": CPU_SCALE_LABEL,
        "table1": table1_rows(means, method_names),
        "protocol_name": protocol,
        "protocols": PROTOCOL_DESCRIPTIONS,
        "sensitivity": sensitivity_table(
            sensitivity_rows(every["per-image"], every["release"], method_names)
        ),
        "table2": table2_rows(means, table2_variants(method_names)),
        "table2_buckets": [bucket_label(b) for b in BUCKETS],
        "paired_reference": reference,
        "paired": paired,
        "latency": latency_stats(latency).to_dict("records") if len(latency) else [],
        "grid": sample_grid(run_dir, assets, method_names),
        "plots": result_plots(means, latency, run_dir, assets, provenance),
        "figures": lbam_figures(run_dir, assets, provenance),
        "not_comparable": comparability(provenance),
    }


def rendered_runs(runs_dir: Path, context: dict[str, Any]) -> list[dict[str, Any]]:
    """Record this run in runs_dir (one small JSON each) and list every rendered run, newest first."""
    provenance = context["provenance"]
    entry = {
        "run_id": context["run_id"],
        "dataset": provenance["dataset"]["name"],
        "methods": context["method_names"],
        "started": provenance.get("started", ""),
        "status": provenance.get("status", ""),
    }
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / f"{context['run_id']}.json").write_text(json.dumps(entry))
    runs = (json.loads(p.read_text()) for p in runs_dir.glob("*.json"))
    return sorted(runs, key=lambda r: r["started"], reverse=True)


def render_report(run_dir: Path, out: Path) -> Path:
    """Write `out` and out.parent/runs/<id>.html (assets in out.parent/assets/<id>/)."""
    run_dir, out = Path(run_dir), Path(out)
    assets = out.parent / "assets" / run_dir.name
    if assets.exists():
        shutil.rmtree(assets)
    assets.mkdir(parents=True)
    context = report_context(run_dir, assets)
    runs_dir = out.parent / "runs"
    runs = rendered_runs(runs_dir, context)
    template = template_environment().get_template("index.html.j2")
    base = f"assets/{quote(run_dir.name)}/"
    for page, prefix, runs_base in ((runs_dir / f"{run_dir.name}.html", "../", ""), (out, "", "runs/")):
        page.write_text(
            template.render(**context, base=prefix + base, runs=runs, runs_base=runs_base),
            encoding="utf-8",
            errors="backslashreplace",  # file names that are not UTF-8 are shown as \xNN escapes
        )
    return out
