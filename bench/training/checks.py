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
# Settings that may differ on --resume as a recorded deviation (a lower rate after a NaN stop).
RESUME_RECORDED = ("lr_g", "lr_d", "finetune_lr")


def check_training_arguments(config: TrainConfig) -> None:
    """One-line errors for values that cannot work, before anything is built or written."""
    for name in ("size", "batch_size", "checkpoint_every"):  # 0 cannot work (a step divides by it)
        if getattr(config, name) is not None and getattr(config, name) < 1:  # None: resolved later
            raise TrainingError(f"--{name.replace('_', '-')} must be 1 or more, got {getattr(config, name)}")
    if config.resize_short is not None and config.size is not None and config.resize_short < config.size:
        raise TrainingError(
            f"--resize-short {config.resize_short} is below --size {config.size}: images are resized to "
            "that short side, then cropped to --size"
        )
    for name in ("epochs", "steps", "finetune_steps", "seed", "workers"):
        if getattr(config, name) is not None and getattr(config, name) < 0:
            raise TrainingError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(config, name)}")
    for name in ("lr_g", "lr_d", "finetune_lr"):
        if getattr(config, name) is not None and not getattr(config, name) >= 0:  # also refuses NaN
            raise TrainingError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    if config.width is not None and not config.width > 0:
        raise TrainingError(
            f"--width must be above 0 (a fraction of the paper's channels), got {config.width}"
        )
    if not 0 <= config.mask_folder_fraction <= 1:
        raise TrainingError(f"--mask-folder-fraction must be in [0, 1], got {config.mask_folder_fraction}")
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
        if key in current and key not in RESUME_MAY_CHANGE + RESUME_RECORDED and stored[key] != current[key]
    ]


def resume_deviations(stored: dict[str, Any], current: dict[str, Any], step: int) -> list[str]:
    """The deviations a resumed run carries: those its checkpoint recorded, this process's own
    (once each), and every learning rate changed at this resume, with the step it applies from."""
    changed = [
        f"{key} {stored[key]!r} → {current[key]!r} from step {step + 1} (--resume)"
        for key in RESUME_RECORDED
        if key in stored and stored[key] != current.get(key)
    ]
    earlier = stored.get("deviations") if isinstance(stored.get("deviations"), list) else []
    return list(dict.fromkeys([*map(str, earlier), *current.get("deviations", []), *changed]))
