"""Training configuration: one dataclass whose unset fields (None) are filled once from data:
the explicit value, else the method's defaults, else the profile's, in that order."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput
from bench.methods.base import resolve_device
from bench.training.losses import DEFAULT_VGG_INPUT, VGG_INPUTS, check_objective


class TrainingError(BadInput, ValueError):
    """Training cannot start or go on; the message says why and what is kept."""


PROFILES: dict[str, dict[str, Any]] = {
    # LBAM paper Sec. 4.1 / the release: 256 crops of images resized to a 350 short side, batch 48
    # (global: 4 GPUs × 12), 500 epochs (steps follow from the data set's size).
    "paper": {
        "size": 256,
        "resize_short": 350,
        "width": 1.0,
        "batch_size": 48,
        "epochs": 500,
        "checkpoint_every": 2000,
        "finetune_fraction": 0.5,
    },
    # 2-core CPU profile: exercises the whole pipeline in minutes; not comparable to the paper.
    "mini": {
        "size": 128,
        "resize_short": 256,
        "width": 0.25,
        "batch_size": 4,
        "steps": 1500,
        "checkpoint_every": 100,
        "finetune_fraction": 0.25,
    },
}
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    # LBAM Sec. 4.1 and the release's train.py: G Adam 1e-4 (0.5, 0.9); D Adam 1e-5 (0.0, 0.9).
    "lbam": {
        "variant": "official",
        "lr_g": 1e-4,
        "betas_g": (0.5, 0.9),
        "lr_d": 1e-5,
        "betas_d": (0.0, 0.9),
        "finetune_steps": 0,
    },
    # PConv Sec. 4.1 and the community train.py: Adam lr 2e-4, default betas; stage 2 at 5e-5
    # with encoder BN frozen.
    "pconv": {"variant": "paper", "lr_g": 2e-4, "betas_g": (0.9, 0.999), "finetune_lr": 5e-5},
}
VARIANTS = {"lbam": ("official", "paper"), "pconv": ("paper", "community")}
# What else differs per method, as data: the network options a checkpoint carries, and whether
# the objective has an adversarial term (LBAM Eq. 17; PConv has none).
NETWORK_OPTIONS = {"lbam": ("variant", "width", "ablation"), "pconv": ("variant", "width")}
ADVERSARIAL = {"lbam": True, "pconv": False}
D_UPDATES = ("recompute", "legacy")


@dataclass
class TrainConfig:
    method: str = "lbam"  # lbam | pconv
    variant: str | None = None  # lbam: official | paper; pconv: paper | community
    ablation: str = "full"  # lbam Table 2 variants
    objective: str | None = None  # bench.training.losses.OBJECTIVES; default: <method>_<variant>
    vgg_input: str | None = None  # raw | imagenet; default: from the objective
    d_update: str = "recompute"  # recompute | legacy (the release on torch ≤ 1.4)
    no_adv: bool = False  # Table 2 "w/o L_adv"
    profile: str = "mini"
    dataset: str = "demo"
    data_root: str | None = None
    mask_folder: str | None = None
    mask_folder_fraction: float = 0.4  # paper: 12,000 of 30,000 training masks from PConv's set
    size: int | None = None
    resize_short: int | None = None
    width: float | None = None
    batch_size: int | None = None  # global: split across torchrun ranks
    epochs: int | None = None
    steps: int | None = None  # generator steps of the main stage (None: from epochs)
    finetune_steps: int | None = None  # pconv stage 2; None: the profile's fraction of steps
    lr_g: float | None = None
    betas_g: tuple[float, float] | None = None
    lr_d: float | None = None
    betas_d: tuple[float, float] | None = None
    finetune_lr: float | None = None
    checkpoint_every: int | None = None
    seed: int = 0
    device: str = "auto"
    vgg_weights: str | None = None
    amp: str = "none"  # none | bf16 | fp16 (CUDA only)
    channels_last: bool = False
    workers: int = 0
    out: str = ""
    world_size: int = 1  # recorded by split_batch
    rank_batch_size: int | None = None  # batch_size / world_size, recorded by split_batch
    deviations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Checked when made, from Python or the command line, with the command line's messages."""
        if self.profile not in PROFILES:
            raise TrainingError(f"unknown profile {self.profile!r}; use one of {sorted(PROFILES)}")
        if self.method not in METHOD_DEFAULTS:
            raise TrainingError(f"training supports lbam and pconv, not {self.method!r}")
        self.check_choices()
        check_training_arguments(self)

    def resolve(self) -> TrainConfig:
        """Fill every unset field from the method's defaults, then the profile's; validate."""
        defaults = {**PROFILES[self.profile], **METHOD_DEFAULTS[self.method]}
        if self.epochs is not None and self.steps is None:
            defaults.pop("steps", None)  # explicit epochs decide the step count
        for key, value in defaults.items():
            if key in self.field_names() and getattr(self, key) is None:
                setattr(self, key, value)
        self.validate()
        self.objective = self.objective or f"{self.method}_{self.variant}"
        self.vgg_input = self.vgg_input or DEFAULT_VGG_INPUT[self.objective]
        if not self.out:
            parts = [
                self.method,
                self.variant,
                self.ablation if "ablation" in NETWORK_OPTIONS[self.method] else "",
                "noadv" if self.no_adv else "",
                self.profile,
            ]
            self.out = "runs/train/" + "-".join(p for p in parts if p)
        return self

    def validate(self) -> None:
        variants = VARIANTS[self.method]
        if self.variant not in variants:
            listed = ", ".join(variants)
            raise TrainingError(f"unknown {self.method} variant {self.variant!r}; use one of {listed}")
        self.check_choices()
        if not self.batch_size or self.batch_size < 1:
            raise TrainingError(f"--batch-size must be at least 1, not {self.batch_size}")

    def check_choices(self) -> None:
        """Objective, VGG input and D update: checkable before the defaults are filled in."""
        if self.objective is not None:
            try:
                check_objective(self.objective)
            except ValueError as error:
                raise TrainingError(str(error)) from None
            if not self.objective.startswith(self.method + "_"):
                raise TrainingError(f"objective {self.objective} is not an objective of {self.method}")
        if self.vgg_input is not None and self.vgg_input not in VGG_INPUTS:
            raise TrainingError(f"unknown VGG input {self.vgg_input!r}; use one of {', '.join(VGG_INPUTS)}")
        if self.d_update not in D_UPDATES:
            raise TrainingError(f"unknown D update {self.d_update!r}; use one of {', '.join(D_UPDATES)}")

    def resolve_steps(self, images: int) -> None:
        """Steps from epochs (global batch) when not given, then PConv's stage 2 length."""
        if self.steps is None:
            if not self.epochs:
                raise TrainingError("give --steps or --epochs")
            self.steps = -(-self.epochs * images // self.batch_size)
        if self.finetune_steps is None:
            self.finetune_steps = int(self.steps * PROFILES[self.profile]["finetune_fraction"])

    def split_batch(self, world: int) -> int:
        """The global --batch-size split across `world` ranks (the paper's 48 = 4 GPUs × 12)."""
        if self.batch_size % world:
            raise TrainingError(
                f"--batch-size {self.batch_size} is the global batch and must be divisible by the "
                f"{world} ranks"
            )
        self.world_size, self.rank_batch_size = world, self.batch_size // world
        return self.rank_batch_size

    @property
    def adversarial(self) -> bool:
        return ADVERSARIAL[self.method] and not self.no_adv

    def method_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in NETWORK_OPTIONS[self.method]}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


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
