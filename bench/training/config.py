"""Training configuration: one dataclass whose unset fields (None) are filled once from data:
the explicit value, else the method's defaults, else the profile's, in that order."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput
from bench.core.files import unwritable
from bench.datasets.training import DATA_READINGS
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
    # 2-core CPU profile that learns (docs/cpu_profile.md: every choice with its measurement): the
    # real-photo corpus of `python -m bench.corpus fetch`, multi-scale crops, random-shape and
    # free-form masks, one cosine schedule and step budget for both methods, validation on held-out
    # sources every val_every steps. No ImageNet VGG16 here: the objective's ℓ1 terms (+TV for
    # PConv); LBAM without its adversarial term, so both methods get the same reconstruction-only
    # objective and the same steps (recorded in the checkpoint's deviations).
    "cpu": {
        "dataset": "folder:corpus/train",
        "size": 256,
        "resize_short": 512,
        "crop_scale_max": 2.0,
        "free_form_fraction": 0.5,
        "width": 0.25,
        "batch_size": 8,
        "steps": 2000,
        "lr_g": 5e-4,
        "lr_schedule": "cosine",
        "warmup_steps": 50,
        "checkpoint_every": 50,
        "finetune_fraction": 0.0,
        "no_adv": True,
        "perceptual": "none",
        "val_dataset": "folder:corpus/val",
        "val_every": 100,
    },
}
LR_SCHEDULES = ("constant", "cosine")
PERCEPTUAL = ("vgg16", "none")
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
# Where a profile decides what is otherwise the method's (the cpu profile's one learning rate).
PROFILE_OVERRIDES = {"cpu": {"lr_g": PROFILES["cpu"]["lr_g"]}}
# What a variant's source does differently (the community PConv's train.py: every photo squashed
# to 256×256, no crop or flip; batch 16 at the paper's scale); the profile's multi-scale crops do
# not apply to a squashed photo.
VARIANT_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("pconv", "community"): {"data_reading": "squash", "crop_scale_max": 1.0},
}
VARIANT_PROFILE_DEFAULTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("pconv", "community", "paper"): {"batch_size": 16},
}
# Fields whose default is neither the method's nor the profile's.
BASE_DEFAULTS: dict[str, Any] = {
    "dataset": "demo",
    "no_adv": False,
    "perceptual": "vgg16",
    "data_reading": "crop",
    "crop_scale_max": 1.0,
    "free_form_fraction": 0.0,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "val_every": 0,
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
    perceptual: str | None = None  # vgg16 (Eqs. 15–16 on ImageNet VGG16) | none (the cpu profile's)
    d_update: str = "recompute"  # recompute | legacy (the release on torch ≤ 1.4)
    no_adv: bool | None = None  # Table 2 "w/o L_adv" (default: the profile's, else False)
    profile: str = "mini"
    dataset: str | None = None  # default: the profile's, else demo
    data_root: str | None = None
    mask_folder: str | None = None
    mask_folder_fraction: float = 0.4  # paper: 12,000 of 30,000 training masks from PConv's set
    data_reading: str | None = None  # crop | squash (datasets/training.py DATA_READINGS)
    crop_scale_max: float | None = None  # crops of size·s, s in [1, this], resized to size (1: none)
    free_form_fraction: float | None = None  # share of free-form (DeepFill v2) masks; the rest random-shape
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
    lr_schedule: str | None = None  # constant | cosine (to 0 at the last main-stage step)
    warmup_steps: int | None = None  # linear warm-up of lr_g from 0
    val_dataset: str | None = None  # held-out photos scored every val_every steps (None: no validation)
    val_every: int | None = None
    checkpoint_every: int | None = None
    seed: int = 0
    device: str = "auto"
    vgg_weights: str | None = None
    amp: str = "none"  # none | bf16 | fp16 (CUDA only)
    channels_last: bool = False
    subpixel_decoder: bool = False  # pconv: decoder layers in the sub-pixel form (docs/performance.md)
    # torch's fused Adam kernel for G (and D, except --d-update legacy): the same update in one
    # vectorised pass, 5x faster on the CPU at the paper's width; other float rounding (docs/performance.md)
    fused_adam: bool = False
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
        defaults = {**METHOD_DEFAULTS[self.method], **PROFILE_OVERRIDES.get(self.profile, {})}
        defaults = {**PROFILES[self.profile], **defaults}
        variant = (self.method, self.variant or defaults["variant"])
        defaults.update(VARIANT_DEFAULTS.get(variant, {}))
        defaults.update(VARIANT_PROFILE_DEFAULTS.get((*variant, self.profile), {}))
        if self.epochs is not None and self.steps is None:
            defaults.pop("steps", None)  # explicit epochs decide the step count
        defaults = {**BASE_DEFAULTS, **defaults}
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
                "noadv" if self.no_adv and ADVERSARIAL[self.method] else "",
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
        if self.perceptual not in PERCEPTUAL:
            listed = ", ".join(PERCEPTUAL)
            raise TrainingError(f"unknown --perceptual {self.perceptual!r}; use one of {listed}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TrainingError(
                f"unknown --lr-schedule {self.lr_schedule!r}; use one of {', '.join(LR_SCHEDULES)}"
            )
        if self.data_reading not in DATA_READINGS:
            raise TrainingError(
                f"unknown --data-reading {self.data_reading!r}; use one of {', '.join(DATA_READINGS)}"
            )
        if self.data_reading == "squash" and self.crop_scale_max != 1:
            raise TrainingError("--data-reading squash takes the whole photo: --crop-scale-max must be 1")
        if self.crop_scale_max < 1 or not 0 <= self.free_form_fraction <= 1:
            raise TrainingError("--crop-scale-max must be at least 1 and --free-form-fraction in [0, 1]")
        if self.val_dataset and self.val_every < 1:
            raise TrainingError(f"--val-every must be at least 1 with --val-dataset, not {self.val_every}")
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

    def lr_factor(self, step: int) -> float:
        """lr_g's multiplier at generator step `step` (0-based) of the main stage: a linear warm-up
        over warmup_steps, then constant or a cosine decay to 0 at the stage's end."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return 1.0
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

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
    for name in ("size", "batch_size", "checkpoint_every"):  # 0 cannot work (a step divides by it)
        if getattr(config, name) is not None and getattr(config, name) < 1:  # None: resolved later
            raise TrainingError(f"--{name.replace('_', '-')} must be 1 or more, got {getattr(config, name)}")
    if config.resize_short is not None and config.size is not None and config.resize_short < config.size:
        raise TrainingError(
            f"--resize-short {config.resize_short} is below --size {config.size}: images are resized to "
            "that short side, then cropped to --size"
        )
    for name in ("epochs", "steps", "finetune_steps", "seed", "workers", "warmup_steps", "val_every"):
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
    if config.subpixel_decoder and config.method != "pconv":
        raise TrainingError(
            f"--subpixel-decoder is for pconv (its upsampling decoder); {config.method} has none to change"
        )
    resolve_device(config.device)
    out = Path(config.out) if config.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    if out is not None:
        blocked = unwritable(out)
        if blocked is not None:
            raise TrainingError(f"--out {out}: cannot write in {blocked} (read-only)")
