"""`bench.evaluate(config)`: one evaluation run from Python, exactly as `python -m bench.run` does it
(the command line only parses its options into a RunConfig and calls this): torchrun ranks, the
run folder and its lock, the records, run.json, summary.csv and the report."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import torch

from bench.core.process import prepare_process
from bench.evaluation import sharding
from bench.evaluation.checks import check_report
from bench.evaluation.config import RunConfig, RunError
from bench.evaluation.run_folder import LOCK_FILE, lock_run_folder, most_recent_run
from bench.evaluation.session import Invocation
from bench.evaluation.session import evaluate as evaluate_in_folder
from bench.evaluation.timing import Timing


def choose_run_dir(out: str | Path | None, resume: bool) -> Path:
    if out:
        return Path(out)
    runs = Path("runs")
    if resume:
        previous = most_recent_run(runs)
        if previous is None:
            raise RunError("--resume: no earlier run folder with a run.json in runs/")
        return previous
    return runs / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def rank_device(config: RunConfig, rank: int, world: int, local_rank: int) -> None:
    if world > 1 and config.device == "cuda":  # one GPU per rank
        if local_rank >= torch.cuda.device_count():
            raise RunError(
                f"rank {rank} needs cuda:{local_rank} but this node has {torch.cuda.device_count()} GPUs; "
                "start at most that many processes per node"
            )
        config.device = f"cuda:{local_rank}"


def evaluate(
    config: RunConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    report: str | Path = "reports/index.html",
    progress: bool = True,
    command: str = "bench.evaluate(config)",
    timing: Timing | None = None,
) -> Path:
    """Run `config` into the folder `out` (default runs/<timestamp>; with `resume`, the newest run
        in runs/); an existing folder is resumed. Renders `report` ('' for none); `timing` collects the
    phases' wall times (--timing). Returns the folder.
        Bad input raises a BadInput with the command line's message, before anything is written."""
    check_report(report)
    prepare_process()
    rank, world, local_rank = sharding.start(config.device)
    rank_device(config, rank, world, local_rank)
    run_dir = choose_run_dir(out, resume)
    new_folder = not run_dir.exists()
    # rank 0 holds the run folder for its torchrun launch; the other ranks write rank files only
    lock = lock_run_folder(run_dir) if rank == 0 else None
    try:
        how = Invocation(
            command=command,
            every_method=config.every_method,
            progress=progress,
            report=str(report),
            rank=rank,
            world=world,
            timing=timing,
        )
        evaluate_in_folder(config, run_dir, how)
    finally:
        if lock is not None:
            lock.close()
        if new_folder and rank == 0 and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            shutil.rmtree(run_dir)  # refused before anything was written: leave no empty folder
        sharding.stop()  # also on an error: a live gloo group's threads can abort the exit
    return run_dir
