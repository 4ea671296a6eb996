"""--workers N: records equal a one-process run's; the default share of the cores."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.core.vocabulary import METRICS
from bench.evaluation.parallel import available_cores, default_workers
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


def scores_with_one_and_two_workers(
    tmp_path: Path, name: str, size: int, pairs: slice, threads: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sorted scores of `name` on demo pairs[pairs], with 1 and then 2 workers, at `threads`
    torch threads in this process (restored afterwards)."""
    import torch

    from bench import methods
    from bench.datasets.masks import bucketed_mask_set
    from bench.datasets.sources import load_test_set
    from bench.evaluation.harness import all_pairs, evaluate_method
    from bench.evaluation.metrics import MetricProtocol

    images, masks = load_test_set("demo", size=size), bucketed_mask_set("free_form", 1, 0, size)
    chosen = all_pairs(images, masks)[pairs]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for workers in (1, 2):
            run_dir = tmp_path / str(workers)
            run_dir.mkdir()
            protocol = MetricProtocol()
            method = methods.create(name)
            evaluate_method(
                method, images, masks, run_dir, protocol, progress=False, pairs=chosen, workers=workers
            )
    finally:
        torch.set_num_threads(before)
    return records(tmp_path / "1")[0], records(tmp_path / "2")[0]


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


@pytest.mark.slow
def test_workers_with_several_threads_come_from_the_forkserver_and_agree(tmp_path):
    """Two threads per worker: not forked from this process (libgomp would hang), same records."""
    one, two = scores_with_one_and_two_workers(tmp_path, "ns", size=64, pairs=slice(0, 6), threads=4)
    pd.testing.assert_frame_equal(two, one, check_exact=True)
    assert len(two) == 6 * len(METRICS)  # pairs × stored metrics


FORK_AFTER_OPENCV = """
import cv2, numpy as np, tempfile, torch
from pathlib import Path
from bench import methods
from bench.evaluation.harness import Scoring, all_pairs
from bench.evaluation.metrics import MetricProtocol
from bench.evaluation.parallel import score_in_workers
from bench.datasets.sources import load_test_set
from bench.datasets.masks import bucketed_mask_set
cv2.setNumThreads(2)
torch.set_num_threads(2)
for _ in range(5):
    cv2.resize(np.random.rand(800, 800, 3).astype(np.float32), (300, 300), interpolation=cv2.INTER_CUBIC)
images, masks = load_test_set("demo", size=64), bucketed_mask_set("free_form", 1, 0, 64)
with tempfile.TemporaryDirectory() as folder:
    scoring = Scoring(methods.create("telea"), images, masks, Path(folder), MetricProtocol())
    done = list(score_in_workers(scoring, [[p] for p in all_pairs(images, masks)[:4]], 2))
print(len(done), cv2.getNumThreads())
"""


@pytest.mark.slow
def test_forked_workers_do_not_hang_after_the_parent_used_opencv_threads():
    """Resizing OpenCV's pool in a forked child hung the demo (pthread_cond_destroy, forever)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_OPENCV], capture_output=True, text=True, timeout=240, cwd=Path.cwd()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["4", "2"]  # every batch back; the parent's OpenCV threads restored


def test_scores_do_not_depend_on_the_thread_count(tmp_path):
    """256² pairs (large enough for torch to split reductions): 1 process × 2 threads, 2 × 1."""
    one, two = scores_with_one_and_two_workers(
        tmp_path, "telea", size=256, pairs=slice(None, None, 8), threads=2
    )
    pd.testing.assert_frame_equal(two, one, check_exact=True)
