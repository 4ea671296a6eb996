"""`bench.fit(config)`: one training run from Python, exactly as `python -m bench.train` does it
(the command line only parses its options into a TrainConfig and calls this): torchrun ranks,
atomic checkpoints, resume, train_summary.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist

from bench.training.config import TrainConfig
from bench.training.trainer import Trainer


class RanksDiverged(RuntimeError):
    """The ranks of a torchrun launch ended with different weights."""


def fit(
    config: TrainConfig, *, resume: bool = False, stop_after: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train `config` into config.out (resume: continue its checkpoint.pt with the same settings;
    stop_after: stop, with a checkpoint, after this many steps). Returns the summary that rank 0
    also writes to <out>/train_summary.json. Bad input raises a BadInput (TrainingError) with the
    command line's message."""
    try:
        trainer = Trainer(config)
        summary = trainer.run(resume=resume, stop_after=stop_after, progress=progress)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if summary.get("ranks_in_sync") is False:
        raise RanksDiverged(f"ranks diverged: {summary['rank_checksums']}")
    if int(os.environ.get("RANK", "0")) == 0:
        (Path(config.out) / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        written = summary["checkpoint"] or "none written"
        print(f"checkpoint: {written} (step {summary['step']} of {summary['total_steps']})")
        if summary["deviations"]:
            print("deviations: " + "; ".join(summary["deviations"]))
    return summary
