"""The training settings a resumed run may not change (those that cannot work are refused by
TrainConfig itself, bench.training.config.check_training_arguments)."""

from __future__ import annotations

from typing import Any

from bench.core.tensors import DENORMALS_OPT_OUT, FLUSHED

# TrainingError and check_training_arguments live with TrainConfig, which checks itself when made
from bench.training.config import TrainingError, check_training_arguments  # noqa: F401

# Settings that may differ on --resume (where and how fast it runs, not what it computes).
RESUME_MAY_CHANGE = ("out", "device", "workers", "data_root", "vgg_weights", "deviations")
# Settings that may differ on --resume as a recorded deviation (a lower rate after a NaN stop).
RESUME_RECORDED = ("lr_g", "lr_d", "finetune_lr")
# Settings added after checkpoints were first written, with the value an older checkpoint trained with.
ADDED_SETTINGS = {"fused_adam": False}


def changed_settings(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Settings of a resumed run that differ from those its checkpoint was trained with."""
    stored = {**ADDED_SETTINGS, **stored}
    return [
        f"{key} {stored[key]!r} → {current[key]!r}"
        for key in stored
        if key in current and key not in RESUME_MAY_CHANGE + RESUME_RECORDED and stored[key] != current[key]
    ]


def changed_denormals(stored: dict[str, str] | None, current: dict[str, str]) -> list[str]:
    """Flushing denormals to zero changes float results, so a resumed run keeps its checkpoint's
    choice (no record: kept, as every run before it was recorded)."""
    then, now = ((process or {}).get("denormals") == FLUSHED for process in (stored, current))
    if then == now:
        return []
    how = f"unset {DENORMALS_OPT_OUT}" if then else f"{DENORMALS_OPT_OUT}=keep resumes it"
    return [f"denormals {'flushed' if then else 'kept'} → {current['denormals']} ({how})"]


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
