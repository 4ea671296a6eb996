"""Training settings that cannot work (refused before anything is built or written) and those a
resumed run may not change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput
from bench.methods.base import resolve_device
from bench.training.config import TrainConfig


class TrainingError(BadInput):
    """Training cannot start or go on; the message says why and what is kept."""


# Settings that may differ on --resume (where and how fast it runs, not what it computes).
RESUME_MAY_CHANGE = ("out", "device", "workers", "data_root", "vgg_weights", "deviations")


def check_training_arguments(config: TrainConfig) -> None:
    """One-line errors for values that cannot work, before anything is built or written."""
    for name in (
        "size",
        "resize_short",
        "batch_size",
        "epochs",
        "steps",
        "checkpoint_every",
        "seed",
        "workers",
    ):
        if getattr(config, name) is not None and getattr(config, name) < 0:  # None: resolved later
            raise TrainingError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(config, name)}")
    for name in ("lr_g", "lr_d", "finetune_lr", "width"):
        if getattr(config, name) is not None and not getattr(config, name) >= 0:  # also refuses NaN
            raise TrainingError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    resolve_device(config.device)
    out = Path(config.out) if config.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    if out is not None:
        existing = next(p for p in [out, *out.absolute().parents] if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK):
            raise TrainingError(f"--out {out}: cannot write in {existing} (read-only)")


def changed_settings(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Settings of a resumed run that differ from those its checkpoint was trained with."""
    return [
        f"{key} {stored[key]!r} → {current[key]!r}"
        for key in stored
        if key in current and key not in RESUME_MAY_CHANGE and stored[key] != current[key]
    ]
