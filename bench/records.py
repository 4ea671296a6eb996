"""Tidy result records: scores.csv (one row per image × mask × method × metric), latency.csv,
run.json (provenance). Appends are flushed per item; resuming drops incomplete items."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import METRICS

SCORE_COLUMNS = ("method", "dataset", "image_id", "mask_id", "bucket", "hole_ratio", "metric", "value")
LATENCY_COLUMNS = ("method", "image_id", "mask_id", "ms", "device", "peak_mb")
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "opencv-python-headless",
    "scikit-image",
    "scikit-learn",
    "pandas",
    "lpips",
    "pypatchmatch",
    "pillow",
    "inpaint-bench",
)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.replace(temporary, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(folder: Path | None = None) -> str:
    folder = folder or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def add_missing_columns(path: Path, columns: tuple[str, ...]) -> None:
    """Rewrite a record file made before `columns` grew (e.g. latency.csv before peak_mb) with the
    new columns empty, so appended rows line up with its header."""
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), [])
    if tuple(header) != columns and set(header) <= set(columns):
        frame = pd.read_csv(path, on_bad_lines="skip", dtype=str, keep_default_na=False)
        atomic_write_text(path, frame.reindex(columns=list(columns), fill_value="").to_csv(index=False))


class CsvAppender:
    """Appends rows to a CSV file, writing the header when the file is new; flushed per call."""

    def __init__(self, path: Path, columns: Iterable[str]) -> None:
        self.path, self.columns = path, tuple(columns)
        new = not path.exists() or path.stat().st_size == 0
        if not new:
            add_missing_columns(path, self.columns)
        self._handle = open(path, "a", newline="")
        self._writer = csv.writer(self._handle)
        if new:
            self._writer.writerow(self.columns)
            self._handle.flush()

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        self._writer.writerows([row[c] for c in self.columns] for row in rows)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> CsvAppender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_scores(path: Path) -> pd.DataFrame:
    if path.exists():
        scores = pd.read_csv(path, on_bad_lines="skip", dtype={"image_id": str, "mask_id": str})
    else:
        scores = pd.DataFrame(columns=list(SCORE_COLUMNS))
    scores["value"] = pd.to_numeric(scores["value"], errors="coerce").astype(float)
    return scores.dropna(subset=["method", "image_id", "mask_id", "metric"])


def completed_items(run_dir: Path) -> set[tuple[str, str, str]]:
    """(method, image_id, mask_id) whose metrics and latency are all stored. Incomplete items (an
    interrupted append) are removed from both files so they are recomputed cleanly."""
    scores_path, latency_path = run_dir / "scores.csv", run_dir / "latency.csv"
    scores = read_scores(scores_path)
    if scores.empty:
        return set()
    key = ["method", "image_id", "mask_id"]
    counts = scores.groupby(key)["metric"].nunique()
    complete = set(counts[counts == len(METRICS)].index)
    latency = (
        pd.read_csv(latency_path, on_bad_lines="skip", dtype={"image_id": str, "mask_id": str})
        if latency_path.exists()
        else pd.DataFrame(columns=list(LATENCY_COLUMNS))
    )
    complete &= set(map(tuple, latency[key].itertuples(index=False)))
    keep_scores = scores[[k in complete for k in map(tuple, scores[key].itertuples(index=False))]]
    keep_latency = latency[[k in complete for k in map(tuple, latency[key].itertuples(index=False))]]
    atomic_write_text(scores_path, keep_scores.to_csv(index=False))
    atomic_write_text(latency_path, keep_latency.drop_duplicates(key).to_csv(index=False))
    return complete


def rank_record_files(run_dir: Path) -> list[tuple[Path, Path]]:
    """(scores.rank<r>.csv, latency.rank<r>.csv) of every rank that left records, by rank."""
    scores = sorted(run_dir.glob("scores.rank*.csv"), key=lambda p: int(p.stem.rpartition("rank")[2]))
    return [(path, path.with_name("latency" + path.name.removeprefix("scores"))) for path in scores]


def complete_records(scores_path: Path, latency_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of items whose metrics and latency are all in this pair of files (read only)."""
    scores = read_scores(scores_path)
    latency = (
        pd.read_csv(latency_path, on_bad_lines="skip", dtype={"image_id": str, "mask_id": str})
        if latency_path.exists() and latency_path.stat().st_size
        else pd.DataFrame(columns=list(LATENCY_COLUMNS))
    )
    key = ["method", "image_id", "mask_id"]
    counts = scores.groupby(key)["metric"].nunique()
    complete = set(counts[counts == len(METRICS)].index)
    complete &= set(map(tuple, latency[key].itertuples(index=False)))

    def of_complete(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[np.array([k in complete for k in frame[key].itertuples(index=False, name=None)], bool)]

    return of_complete(scores), of_complete(latency).drop_duplicates(key)


def merge_rank_records(run_dir: Path) -> int:
    """Append the complete items of every rank's record files to scores.csv and latency.csv (an
    item already there is kept once), then remove the rank files; returns the items added. Items a
    killed rank left half-written are dropped, so a resumed run redoes them."""
    files = rank_record_files(run_dir)
    if not files:
        return 0
    main_scores, main_latency = complete_records(run_dir / "scores.csv", run_dir / "latency.csv")
    parts = [complete_records(scores, latency) for scores, latency in files]
    key = ["method", "image_id", "mask_id"]
    scores = pd.concat([main_scores, *(s for s, _ in parts)]).drop_duplicates([*key, "metric"])
    latency = pd.concat([main_latency, *(lat for _, lat in parts)]).drop_duplicates(key)
    atomic_write_text(run_dir / "scores.csv", scores[list(SCORE_COLUMNS)].to_csv(index=False))
    latency = latency.reindex(columns=list(LATENCY_COLUMNS))
    atomic_write_text(run_dir / "latency.csv", latency.to_csv(index=False))
    for scores_path, latency_path in files:
        scores_path.unlink()
        latency_path.unlink(missing_ok=True)
    return len(latency) - len(main_latency)
