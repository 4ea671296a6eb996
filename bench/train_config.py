"""Training configuration: one dataclass, two profiles, overridable from the CLI."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

from bench.losses import VGG16_FILE

PROFILES: dict[str, dict[str, Any]] = {
    # LBAM paper Sec. 4.1 / the release: 256 crops of images resized to a 350 short side, batch 48,
    # 500 epochs; Adam lr 1e-4, betas (0.5, 0.9) for G; lr 1e-5, betas (0.0, 0.9) for D.
    "paper": {
        "size": 256,
        "resize_short": 350,
        "width": 1.0,
        "batch_size": 48,
        "epochs": 500,
        "steps": 0,
        "checkpoint_every": 2000,
    },
    # 2-core CPU profile: exercises the whole pipeline in minutes; not comparable to the paper.
    "mini": {
        "size": 128,
        "resize_short": 256,
        "width": 0.25,
        "batch_size": 4,
        "epochs": 0,
        "steps": 1500,
        "checkpoint_every": 100,
    },
}


@dataclass
class TrainConfig:
    method: str = "lbam"  # lbam | pconv
    variant: str = ""  # lbam: official (default) | paper; pconv: paper (default) | community
    ablation: str = "full"  # lbam Table 2 variants
    objective: str = ""  # lbam_paper | lbam_official | pconv (default: from method and variant)
    no_adv: bool = False  # Table 2 "w/o L_adv"
    profile: str = "mini"
    dataset: str = "demo"
    data_root: str | None = None
    mask_folder: str | None = None
    mask_folder_fraction: float = 0.4  # paper: 12,000 of 30,000 training masks from PConv's set
    size: int = 0
    resize_short: int = 0
    width: float = 0.0
    batch_size: int = 0  # per process
    epochs: int = 0
    steps: int = 0  # generator steps of the main stage (0: from epochs)
    finetune_steps: int = -1  # pconv stage 2 (encoder BN frozen); -1: steps // 4 (mini) or steps // 2
    lr_g: float = 1e-4
    betas_g: tuple[float, float] = (0.5, 0.9)
    lr_d: float = 1e-5
    betas_d: tuple[float, float] = (0.0, 0.9)
    finetune_lr: float = 5e-5
    checkpoint_every: int = 0
    seed: int = 0
    device: str = "auto"
    vgg_weights: str | None = None
    amp: str = "none"  # none | bf16 | fp16 (CUDA only)
    channels_last: bool = False
    workers: int = 0
    out: str = ""
    deviations: list[str] = field(default_factory=list)

    def resolve(self) -> TrainConfig:
        """Fill what the profile and the method decide; returns self."""
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; use one of {sorted(PROFILES)}")
        for key, value in PROFILES[self.profile].items():
            if not getattr(self, key):
                setattr(self, key, value)
        if self.method not in ("lbam", "pconv"):
            raise ValueError(f"training supports lbam and pconv, not {self.method!r}")
        if not self.variant:
            self.variant = "official" if self.method == "lbam" else "paper"
        if not self.objective:
            self.objective = "pconv" if self.method == "pconv" else f"lbam_{self.variant}"
        if self.method == "pconv":
            self.lr_g = 2e-4 if self.lr_g == 1e-4 else self.lr_g  # PConv stage 1
            if self.finetune_steps < 0:
                self.finetune_steps = self.steps // 4 if self.steps else 0
        else:
            self.finetune_steps = max(self.finetune_steps, 0)
        if not self.out:
            parts = [
                self.method,
                self.variant,
                self.ablation if self.method == "lbam" else "",
                "noadv" if self.no_adv else "",
                self.profile,
            ]
            self.out = "runs/train/" + "-".join(p for p in parts if p)
        return self

    @property
    def adversarial(self) -> bool:
        return self.method == "lbam" and not self.no_adv

    def method_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"variant": self.variant, "width": self.width}
        if self.method == "lbam":
            options["ablation"] = self.ablation
        return options

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def parse_args(argv: list[str] | None, description: str) -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.train",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = TrainConfig()
    parser.add_argument("--method", default="lbam", choices=["lbam", "pconv"])
    parser.add_argument("--variant", default="", help="lbam: official | paper; pconv: paper | community")
    parser.add_argument(
        "--ablation", default="full", help="lbam: full, unlearned, forward, sigmoid, lrelu, relu, mask3x3"
    )
    parser.add_argument(
        "--objective", default="", help="lbam_paper | lbam_official | pconv (default: from method/variant)"
    )
    parser.add_argument(
        "--no-adv", action="store_true", help="drop the adversarial term (Table 2 'w/o L_adv')"
    )
    parser.add_argument("--profile", default="mini", choices=sorted(PROFILES))
    parser.add_argument("--dataset", default="demo", help="demo | folder:PATH | paris | places")
    parser.add_argument("--data-root", default=None)
    parser.add_argument(
        "--mask-folder", default=None, help="NVIDIA-layout training masks mixed with random-shape masks"
    )
    for name in (
        "size",
        "resize_short",
        "batch_size",
        "epochs",
        "steps",
        "finetune_steps",
        "checkpoint_every",
        "seed",
        "workers",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("width", "lr_g", "lr_d", "finetune_lr", "mask_folder_fraction"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--vgg-weights",
        default=None,
        help=f"VGG16 weights (default: the torchvision cache file {VGG16_FILE})",
    )
    parser.add_argument(
        "--amp", default="none", choices=["none", "bf16", "fp16"], help="mixed precision on CUDA"
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--out", default="", help="output folder (default runs/train/<method>-<variant>-…-<profile>)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument(
        "--stop-after", type=int, default=None, help="stop (with a checkpoint) after this many steps"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.field_names()})
    return config, args
