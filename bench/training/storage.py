"""The training run folder's files: the checkpoint, written atomically (a kill or a full disk
leaves the previous one), and train_log.csv, one row per step."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import torch

from bench.core.files import full_disk
from bench.training.checks import TrainingError


def stored_bytes(data: Any) -> int:
    """Bytes of the tensors in a nested checkpoint (what torch.save must write, at least)."""
    if isinstance(data, torch.Tensor):
        return data.untyped_storage().nbytes()
    if isinstance(data, dict):
        return sum(stored_bytes(v) for v in data.values())
    if isinstance(data, list | tuple):
        return sum(stored_bytes(v) for v in data)
    return 0


def atomic_save(data: dict[str, Any], path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    try:
        torch.save(data, temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch reports a full disk as a RuntimeError
        temporary.unlink(missing_ok=True)
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        reason = full_disk(error, path.parent, stored_bytes(data)) or reason
        raise TrainingError(f"cannot write {path} ({reason}); the previous checkpoint is unchanged") from None


class TrainLog:
    """train_log.csv, one row per step, flushed as written (None: this rank writes no log)."""

    def __init__(self, path: Path | None) -> None:
        self.handle = open(path, "a", newline="") if path is not None else None
        self.writer: csv.DictWriter | None = None

    def write(self, row: dict[str, Any]) -> None:
        if self.handle is None:
            return
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=list(row))
            if self.handle.tell() == 0:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.handle.flush()

    def __enter__(self) -> TrainLog:
        return self

    def __exit__(self, *_: object) -> None:
        if self.handle is not None:
            self.handle.close()
