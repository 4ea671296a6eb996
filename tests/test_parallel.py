"""--workers N: records equal a one-process run's; the default share of the cores."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.parallel import available_cores, default_workers
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--report", ""]
KEY = ["method", "image_id", "mask_id", "metric"]


def records(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    scores = pd.read_csv(run_dir / "scores.csv", dtype={"image_id": str, "mask_id": str})
    latency = pd.read_csv(run_dir / "latency.csv", dtype={"image_id": str, "mask_id": str})
    return (
        scores.sort_values(KEY).reset_index(drop=True),
        latency.sort_values(KEY[:3]).reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("one") / "run"
    assert main([*TINY, "--methods", "telea,patchmatch", "--workers", "1", "--out", str(run_dir)]) == 0
    return run_dir


def test_two_workers_give_the_records_of_one_process(one_process, tmp_path):
    assert main([*TINY, "--methods", "telea,patchmatch", "--workers", "2", "--out", str(tmp_path / "r")]) == 0
    scores, latency = records(tmp_path / "r")
    expected_scores, expected_latency = records(one_process)
    pd.testing.assert_frame_equal(scores, expected_scores, check_exact=True)
    pd.testing.assert_frame_equal(latency[KEY[:3]], expected_latency[KEY[:3]])
    assert len(latency) == 2 * 8 * 4 and (latency.ms > 0).all()


def test_workers_resume_an_interrupted_run(one_process, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(one_process, run_dir)
    lines = (run_dir / "scores.csv").read_text().splitlines(keepends=True)
    (run_dir / "scores.csv").write_text("".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:7])
    assert main([*TINY, "--methods", "telea,patchmatch", "--workers", "2", "--out", str(run_dir)]) == 0
    pd.testing.assert_frame_equal(records(run_dir)[0], records(one_process)[0], check_exact=True)


def test_default_workers_use_every_core_for_classical_cpu_methods_only(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers("cpu", learned=False) == available_cores()
    assert default_workers("cpu", learned=True) == 1
    assert default_workers("cuda:0", learned=False) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(available_cores()))
    assert default_workers("cpu", learned=False) == 1


def test_negative_workers_are_refused(tmp_path, capsys):
    assert main([*TINY, "--methods", "telea", "--workers", "-1", "--out", str(tmp_path / "r")]) == 2
    assert "--workers must be 0" in capsys.readouterr().err
