"""torchrun across ranks: deterministic shares, per-rank record files merged by rank 0, records
equal a one-process run's, and a killed launch run again completes with the same numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.core.records import LATENCY_COLUMNS, SCORE_COLUMNS, merge_rank_records, rank_record_files
from bench.core.vocabulary import METRICS
from bench.evaluation.sharding import Shard
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--methods", "telea", "--report", ""]
KEY = ["method", "image_id", "mask_id", "metric"]


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_shares_cover_every_pair_once_without_padding(world):
    todo = list(range(17))
    shares = [Shard(rank, world).share(todo) for rank in range(world)]
    assert sorted(sum(shares, [])) == todo
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def write_records(
    run_dir: Path, suffix: str, items: list[str], latency_items: list[str], cut: str = ""
) -> None:
    rows = [("telea", "demo", i, "m", "(0.1, 0.2]", 0.15, m, 1.5) for i in items for m in METRICS]
    rows += [("telea", "demo", cut, "m", "(0.1, 0.2]", 0.15, "psnr", 1.0)] if cut else []
    pd.DataFrame(rows, columns=SCORE_COLUMNS).to_csv(run_dir / f"scores{suffix}.csv", index=False)
    latency = [("telea", i, "m", 2.0, "cpu", 0.5) for i in latency_items]
    pd.DataFrame(latency, columns=LATENCY_COLUMNS).to_csv(run_dir / f"latency{suffix}.csv", index=False)


def test_merge_keeps_complete_items_once_and_removes_the_rank_files(tmp_path):
    write_records(tmp_path, "", ["a"], ["a"])
    write_records(tmp_path, ".rank0", ["b"], ["b", "c"], cut="c")  # c: killed after one metric
    write_records(tmp_path, ".rank1", ["a", "d"], ["a"])  # d: killed before its latency row
    assert [p.name for p, _ in rank_record_files(tmp_path)] == ["scores.rank0.csv", "scores.rank1.csv"]
    assert merge_rank_records(tmp_path) == 1
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert sorted(scores.image_id.unique()) == ["a", "b"] and len(scores) == 2 * len(METRICS)
    assert sorted(pd.read_csv(tmp_path / "latency.csv").image_id) == ["a", "b"]
    assert rank_record_files(tmp_path) == [] and not (tmp_path / "latency.rank0.csv").exists()


def sorted_scores(run_dir: Path) -> pd.DataFrame:
    scores = pd.read_csv(run_dir / "scores.csv", dtype={"image_id": str, "mask_id": str})
    return scores.sort_values(KEY).reset_index(drop=True)


def torchrun(run_dir: Path, ranks: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    command += ["-m", "bench.run", *TINY, "--out", str(run_dir)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("one") / "run"
    assert main([*TINY, "--workers", "1", "--out", str(run_dir)]) == 0
    return run_dir


@pytest.mark.slow
def test_two_gloo_ranks_give_the_records_of_one_process(one_process, tmp_path):
    done = torchrun(tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(
        sorted_scores(tmp_path / "run"), sorted_scores(one_process), check_exact=True
    )
    assert len(pd.read_csv(tmp_path / "run" / "latency.csv")) == 8 * 4
    assert rank_record_files(tmp_path / "run") == []
    assert '"ranks": 2' in (tmp_path / "run" / "run.json").read_text()


def killed_launch(one_process: Path, run_dir: Path, first: int = 10, second: int = 4) -> int:
    """The state a kill -9 of a two-rank launch leaves: run.json running, rank 0's file holding
    `first` items, rank 1's `second` items then half a row; returns the items stored."""
    run_dir.mkdir()
    (run_dir / "run.json").write_text((one_process / "run.json").read_text())
    scores = (one_process / "scores.csv").read_text().splitlines(keepends=True)
    latency = (one_process / "latency.csv").read_text().splitlines(keepends=True)
    per_item = len(METRICS)  # score rows of one item
    end_0, end_1 = 1 + first * per_item, 1 + (first + second) * per_item  # the header, then items
    (run_dir / "scores.rank0.csv").write_text("".join(scores[:end_0]))
    (run_dir / "latency.rank0.csv").write_text("".join(latency[: 1 + first]))
    cut = scores[0] + "".join(scores[end_0:end_1]) + scores[end_1][:12]  # then half a row
    (run_dir / "scores.rank1.csv").write_text(cut)
    (run_dir / "latency.rank1.csv").write_text(latency[0] + "".join(latency[1 + first : 1 + first + second]))
    return first + second


@pytest.mark.slow
def test_a_killed_launch_run_again_completes_with_the_same_numbers(one_process, tmp_path):
    run_dir = tmp_path / "run"
    stored = killed_launch(one_process, run_dir)
    done = torchrun(run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(sorted_scores(run_dir), sorted_scores(one_process), check_exact=True)
    assert f"{stored} pairs already stored" in done.stderr


@pytest.mark.parametrize(("first", "second"), [(10, 4), (0, 7), (13, 0), (1, 1)])
def test_a_plain_rerun_after_a_killed_launch_keeps_what_the_ranks_stored(
    one_process, tmp_path, capsys, first, second
):
    """The same command without torchrun merges the rank files first: nothing stored is recomputed."""
    run_dir = tmp_path / "run"
    stored = killed_launch(one_process, run_dir, first, second)
    assert main([*TINY, "--workers", "1", "--out", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert f"{stored} items merged from the rank files" in err
    assert f"{stored} pairs already stored" in err
    pd.testing.assert_frame_equal(sorted_scores(run_dir), sorted_scores(one_process), check_exact=True)
    assert rank_record_files(run_dir) == []


def test_a_failed_run_leaves_no_process_group(tmp_path, capsys):
    """The group ends on an error too (a live gloo group's threads can abort the rank's exit)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main([*TINY, "--dataset", f"folder:{tmp_path / 'absent'}", "--out", str(tmp_path / "r")]) == 2
        assert "does not exist" in capsys.readouterr().err
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
