"""render_report never deletes what it did not write (issue 20, bug 3): paths are resolved,
assets are keyed by the run folder's name and resolved path, only folders holding the renderer's
marker are replaced, and overlaps of a run folder with the report's assets are refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from bench.report import main as report_main
from bench.reports.render import MARKER, page_id
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--workers", "1", "--report", ""]


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("stored") / "run"
    assert main([*TINY, "--methods", "telea", "--out", str(run_dir)]) == 0
    (run_dir / ".lock").unlink(missing_ok=True)
    return run_dir


def copy_run(stored_run: Path, target: Path) -> Path:
    shutil.copytree(stored_run, target)
    return target


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_run_folder_inside_the_report_assets_is_refused_and_kept(stored_run, tmp_path, depth, capsys):
    reports = tmp_path / "reports"
    run_dir = copy_run(stored_run, reports / "assets" / Path(*["x"] * depth) / "run")
    before = tree_digest(run_dir)
    assert report_main([str(run_dir), "--out", str(reports / "index.html")]) == 2
    assert "overlap" in capsys.readouterr().err
    assert tree_digest(run_dir) == before


def test_report_of_dot_from_inside_a_run_folder_keeps_every_other_runs_assets(
    stored_run, tmp_path, monkeypatch, capsys
):
    other = copy_run(stored_run, tmp_path / "other")
    assert report_main([str(other), "--out", str(tmp_path / "reports" / "index.html")]) == 0
    others = tmp_path / "reports" / "assets" / page_id(other.resolve())
    before = tree_digest(others)
    inside = copy_run(stored_run, tmp_path / "inside")
    monkeypatch.chdir(inside)
    assert report_main([".", "--out", "../reports/index.html"]) == 0  # resolved: its real name
    assert (tmp_path / "reports" / "assets" / page_id(inside.resolve()) / MARKER).is_file()
    assert report_main(["."]) == 2  # reports/ inside the run folder: refused
    assert "overlap" in capsys.readouterr().err
    assert tree_digest(others) == before


@pytest.mark.parametrize("copies", [2, 3])
def test_runs_with_one_folder_name_get_their_own_pages(stored_run, tmp_path, copies):
    out = tmp_path / "reports" / "index.html"
    runs = [copy_run(stored_run, tmp_path / f"parent{i}" / "run") for i in range(copies)]
    for run_dir in runs:
        assert report_main([str(run_dir), "--out", str(out)]) == 0
    pages = sorted(p.name for p in (out.parent / "runs").glob("*.html"))
    assert pages == sorted(f"{page_id(r.resolve())}.html" for r in runs)
    for run_dir in runs:
        assert (out.parent / "assets" / page_id(run_dir.resolve()) / MARKER).is_file()


def test_a_folder_the_renderer_did_not_write_is_never_deleted(stored_run, tmp_path, capsys):
    run_dir, out = copy_run(stored_run, tmp_path / "run"), tmp_path / "reports" / "index.html"
    foreign = out.parent / "assets" / page_id(run_dir.resolve())
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("mine")
    assert report_main([str(run_dir), "--out", str(out)]) == 2
    assert "was not written by bench.report" in capsys.readouterr().err
    assert (foreign / "precious.txt").read_text() == "mine"
    (foreign / "precious.txt").unlink()
    (foreign / MARKER).write_text("")
    assert report_main([str(run_dir), "--out", str(out)]) == 0  # its own folder: replaced
    assert report_main([str(run_dir), "--out", str(out)]) == 0
