"""Tidy result records: scores.csv (one row per image × mask × method × metric), latency.csv,
run.json (provenance). Appends are flushed per item; resuming drops incomplete items."""

from __future__ import annotations

import csv
import io
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.files import atomic_write_text
from bench.core.vocabulary import METRICS

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
        self._handle = open(path, "a", newline="", errors="surrogateescape")
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


NUMERIC_COLUMNS = ("hole_ratio", "value", "ms", "peak_mb")
ITEM_KEY = ["method", "image_id", "mask_id"]  # one image × mask pair of one method


def complete_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of CSV text that may end anywhere (a crash mid-append): whatever follows the
    last line end is dropped, as is a record left open inside quotes or with the wrong field count.
    Fields stay text: nothing is guessed (a file called NA.png keeps the id "NA")."""
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    parsed: list[list[str]] = []
    try:
        parsed.extend(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        pass  # a record cut inside quotes: the rows before it are kept
    if not parsed:
        return [], []
    header = parsed[0]
    return header, [row for row in parsed[1:] if len(row) == len(header)]


def copy_log_until(source: Path, step: int, target: Path) -> None:
    """A training log (train_log.csv: the step first on each row) with only the rows of steps up to
    `step`, written atomically to `target` (which may be `source`)."""
    with open(source, newline="") as handle:
        header, rows = complete_rows(handle.read())
    kept = [row for row in rows if row and row[0].isdigit() and int(row[0]) <= step]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *kept] if header else [])
    atomic_write_text(target, buffer.getvalue())


def read_records(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    """A records file (scores.csv, latency.csv) as text columns; missing or empty: no rows."""
    text = ""
    if path.exists():
        with open(path, newline="", errors="surrogateescape") as handle:
            text = handle.read()
    header, rows = complete_rows(text)
    return pd.DataFrame(rows, columns=header or list(columns), dtype=object)


def with_numbers(records: pd.DataFrame) -> pd.DataFrame:
    records = records.copy()
    for column in NUMERIC_COLUMNS:
        if column in records:
            records[column] = pd.to_numeric(records[column], errors="coerce").astype(float)
    return records


def read_scores(path: Path) -> pd.DataFrame:
    return with_numbers(read_records(path, SCORE_COLUMNS))


def read_latency(path: Path) -> pd.DataFrame:
    return with_numbers(read_records(path, LATENCY_COLUMNS))


def completed_items(run_dir: Path) -> set[tuple[str, str, str]]:
    """(method, image_id, mask_id) whose metrics and latency are all stored. Incomplete items (an
    interrupted append) are removed from both files so they are recomputed cleanly; the kept rows
    are written back as they were read."""
    scores_path, latency_path = run_dir / "scores.csv", run_dir / "latency.csv"
    scores, latency = complete_records(scores_path, latency_path)
    atomic_write_text(scores_path, scores.to_csv(index=False))
    atomic_write_text(latency_path, latency.to_csv(index=False))
    return set(latency[ITEM_KEY].itertuples(index=False, name=None))


def rank_record_files(run_dir: Path) -> list[tuple[Path, Path]]:
    """(scores.rank<r>.csv, latency.rank<r>.csv) of every rank that left records, by rank."""
    scores = sorted(run_dir.glob("scores.rank*.csv"), key=lambda p: int(p.stem.rpartition("rank")[2]))
    return [(path, path.with_name("latency" + path.name.removeprefix("scores"))) for path in scores]


def complete_records(scores_path: Path, latency_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows, as text, of the items whose metrics and latency are all in this pair of files."""
    scores = read_records(scores_path, SCORE_COLUMNS).drop_duplicates([*ITEM_KEY, "metric"])
    latency = read_records(latency_path, LATENCY_COLUMNS)
    counts = scores.groupby(ITEM_KEY)["metric"].nunique()
    complete = set(counts[counts == len(METRICS)].index)
    complete &= set(latency[ITEM_KEY].itertuples(index=False, name=None))

    def of_complete(frame: pd.DataFrame) -> pd.DataFrame:
        items = frame[ITEM_KEY].itertuples(index=False, name=None)
        return frame[np.array([k in complete for k in items], bool)]

    return of_complete(scores), of_complete(latency).drop_duplicates(ITEM_KEY)


def merge_rank_records(run_dir: Path) -> int:
    """Append the complete items of every rank's record files to scores.csv and latency.csv (an
    item already there is kept once), then remove the rank files; returns the items added. Items a
    killed rank left half-written are dropped, so a resumed run redoes them."""
    files = rank_record_files(run_dir)
    if not files:
        return 0
    main_scores, main_latency = complete_records(run_dir / "scores.csv", run_dir / "latency.csv")
    parts = [complete_records(scores, latency) for scores, latency in files]
    scores = pd.concat([main_scores, *(s for s, _ in parts)]).drop_duplicates([*ITEM_KEY, "metric"])
    latency = pd.concat([main_latency, *(lat for _, lat in parts)]).drop_duplicates(ITEM_KEY)
    atomic_write_text(run_dir / "scores.csv", scores[list(SCORE_COLUMNS)].to_csv(index=False))
    latency = latency.reindex(columns=list(LATENCY_COLUMNS))
    atomic_write_text(run_dir / "latency.csv", latency.to_csv(index=False))
    for scores_path, latency_path in files:
        scores_path.unlink()
        latency_path.unlink(missing_ok=True)
    return len(latency) - len(main_latency)
