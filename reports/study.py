"""The user study's and the object-removal comparison's report pages, rendered from the files
bench.study writes (results/*.csv and results.json; removal.json and its PNGs). Like the rest of
bench.reports it imports neither torch nor the methods.

The paper's user study (LBAM Sec. 4.1): 30 test images with irregular holes, 33 volunteers, the
five methods' results randomly arranged beside the input; share of votes in
paper_data/lbam_paper_user_study.csv.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.files import atomic_write_text, read_json
from bench.core.vocabulary import method_of
from bench.reports.paper import PAPER_METHOD_NAMES, _read

PAPER_STUDY = {"images": 30, "voters": 33, "section": "Sec. 4.1"}


def user_study_win_rates() -> dict[str, float]:
    """Our method name → the paper's share of votes (a fraction), for the five methods it compared."""
    table = _read("lbam_paper_user_study.csv")
    by_paper_name = dict(zip(table.paper_method, table.win_rate_percent / 100, strict=True))
    return {ours: by_paper_name[theirs] for ours, theirs in PAPER_METHOD_NAMES.items()}


def paper_win_rate(method: str) -> float | None:
    return user_study_win_rates().get(method_of(method))


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: Any) -> str:
    return "–" if missing(value) else f"{100 * value:.1f} %"


def number(value: Any, digits: int = 2) -> str:
    return "–" if missing(value) else f"{value:.{digits}f}"


def read_table(folder: Path, name: str) -> list[dict[str, Any]]:
    path = folder / f"{name}.csv"
    return pd.read_csv(path).to_dict("records") if path.is_file() and path.stat().st_size else []


def render_page(template: str, out: Path, **context: Any) -> Path:
    from bench.reports.render import template_environment  # render imports this module

    environment = template_environment()
    environment.filters.update(percent=percent, number=number)
    atomic_write_text(out, environment.get_template(template).render(**context))
    return out


def win_rate_rows(folder: Path) -> list[dict[str, Any]]:
    rates = read_table(folder, "win_rates")
    for row in rates:
        row["paper"] = paper_win_rate(row["method"])
    return rates


def run_studies(run_dir: Path) -> list[dict[str, Any]]:
    """The studies made from a run (RUN/studies.json, written by bench.study create) whose results
    have been computed, for the run report's user-study section."""
    path = Path(run_dir) / "studies.json"
    found = []
    for study in read_json(path).get("studies", []) if path.is_file() else []:
        folder = Path(study) / "results"
        if (folder / "results.json").is_file():
            page = Path(study) / "report.html"
            found.append(
                {
                    "path": study,
                    "summary": read_json(folder / "results.json"),
                    "rates": win_rate_rows(folder),
                    "report": page.as_uri() if page.is_file() else None,
                }
            )
    return found


def render_study_report(study_dir: Path) -> Path:
    """STUDY/report.html from STUDY/results/ (written by `python -m bench.study results`)."""
    folder = Path(study_dir) / "results"
    summary = read_json(folder / "results.json")
    rates = win_rate_rows(folder)
    return render_page(
        "study.html.j2",
        Path(study_dir) / "report.html",
        summary=summary,
        rates=rates,
        bradley_terry=read_table(folder, "bradley_terry"),
        positions=read_table(folder, "positions"),
        voters=read_table(folder, "voters"),
        paper=PAPER_STUDY,
    )


def render_removal_report(folder: Path) -> Path:
    """FOLDER/report.html from FOLDER/removal.json (written by `python -m bench.study removal`)."""
    record = read_json(Path(folder) / "removal.json")
    return render_page("removal.html.j2", Path(folder) / "report.html", record=record)
