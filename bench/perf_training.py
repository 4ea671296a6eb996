"""bench.perf's training figures: one generator optimisation step (as the trainer runs it, without
LBAM's adversarial term and its discriminator step) of LBAM and PConv at the paper's size (256 px,
width 1; a batch of 2 keeps it short) and at the cpu profile's (256 px, width 0.25, batch 8, no
VGG16 terms): seconds, images/s, FLOPs per step (torch's counter: forward and backward of every
network the step runs) and their fraction of the same run's matrix-product rate. Both read the demo
images (no data set needed); the paper-size step runs without the VGG16 terms when its weights are
absent, as the mini profile does. With `--channels-last` each step is timed again with the network
and its inputs in channels-last memory (TrainConfig.channels_last) and the ratio is printed.

The cpu profile's step starts from the shipped CPU-scale weights (methods/weights/), the paper
size's from the initial ones.

Every step is timed again with torch's fused Adam kernel (`--fused-adam`): at the paper's width the
default single-tensor Adam is 20–30 % of LBAM's step on the CPU (docs/performance.md).

PConv's step is timed again with its decoder in the sub-pixel form (`--subpixel-decoder`; its
fraction is of the FLOPs as written, so that both forms are on one scale).

On the 2-core CPU (docs/performance.md) channels-last made the cpu profile's step faster for PConv
(0.78x the time) and LBAM (0.90x); at the paper's width runs disagreed (0.7x to 1.3x). The profiles
keep the plain layout, so that the shipped weights' training commands still reproduce them, and
the option is the user's (`python -m bench.train --channels-last`, recorded in the checkpoint)."""

from __future__ import annotations

import tempfile
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.perf_device import timed

# (label, TrainConfig options): the paper's network (its batch of 48 would take minutes per step on a
# CPU) and the cpu profile's step on the demo images
SIZES: tuple[tuple[str, dict[str, Any]], ...] = (
    # no adversarial term: torch's FlopCounterMode cannot follow the WGAN-GP penalty's
    # autograd.grad(create_graph=True), and a fraction needs the FLOPs of the step it times
    ("paper", {"profile": "mini", "size": 256, "width": 1.0, "batch_size": 2, "no_adv": True}),
    ("cpu", {"profile": "cpu", "dataset": "demo", "val_dataset": "", "val_every": 0}),
)
METHODS = ("lbam", "pconv")


def training_step(
    method: str, label: str, options: dict[str, Any], device: torch.device, repeats: int
) -> dict[str, Any]:
    from bench.training.config import TrainConfig
    from bench.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(**options, method=method, out=folder, device=str(device), steps=1)
        trainer = Trainer(config)
        weights = load_shipped(trainer.generator, method) if label == "cpu" else "initial"
        trainer.generator.train()
        image, mask = (t.to(device) for t in next(iter(trainer.loader())))
        seconds = timed(lambda: trainer.train_step(image, mask), device, repeats)
        counter = FlopCounterMode(display=False)
        with counter:
            trainer.train_step(image, mask)
    return {
        "method": method,
        "size_label": label,
        "batch": int(image.shape[0]),
        "size": int(image.shape[-1]),
        "width": config.width,
        "weights": weights,
        "seconds_per_step": seconds,
        "images_per_s": image.shape[0] / seconds,
        "gflop_per_step": counter.get_total_flops() / 1e9,
    }


def load_shipped(generator: torch.nn.Module, method: str) -> str:
    """The cpu profile's step starts from the shipped CPU-scale weights (its last step) where they
    exist: a trained LBAM's attention underflows to denormal floats, which an initial one does not
    show (docs/performance.md, process settings)."""
    from bench.methods import released
    from bench.methods.learned import read_checkpoint

    entry = released.shipped_default(method)
    if entry is None:
        return "initial"
    data, _ = read_checkpoint(method, released.locate(entry))  # checked: this method's own format
    generator.load_state_dict(data["generator"])
    return f"shipped {method}={entry.name}"


def training_part(
    device: torch.device, matmul_gflops: float, repeats: int, channels_last: bool = False
) -> dict[str, Any]:
    rows = []
    for method in METHODS:
        for label, options in SIZES:
            row = training_step(method, label, options, device, max(2, repeats // 2))
            row["fraction_of_matmul"] = row["gflop_per_step"] / row["seconds_per_step"] / matmul_gflops
            rows.append(row)
            print(
                f"train step {method} ({label}: batch {row['batch']} at {row['size']} px, width "
                f"{row['width']}, {row['weights']} weights): {row['seconds_per_step']:.2f} s, "
                f"{row['images_per_s']:.1f} img/s, "
                f"{row['gflop_per_step']:.1f} GFLOP, {row['fraction_of_matmul']:.0%} of matmul rate"
            )
            timed_variant(row, "fused_adam", "fused Adam", options, device, repeats, matmul_gflops)
            if channels_last:
                seconds = other_step(row, "channels_last", options, device, repeats)[0]
                print(
                    f"    channels-last: {seconds:.2f} s, {seconds / row['seconds_per_step']:.2f}x the step"
                )
            if method == "pconv":
                timed_variant(
                    row, "subpixel_decoder", "sub-pixel decoder", options, device, repeats, matmul_gflops
                )
    return {"training": rows}


def timed_variant(
    row: dict[str, Any],
    option: str,
    label: str,
    options: dict[str, Any],
    device: torch.device,
    repeats: int,
    matmul_gflops: float,
) -> None:
    """The row's step again with `option` on, printed with its fraction of the matmul rate, which is
    of the FLOPs as written (one scale for every form) and stored as <option>_fraction_of_matmul."""
    seconds, gflop = other_step(row, option, options, device, repeats)
    fraction = row[f"{option}_fraction_of_matmul"] = row["gflop_per_step"] / seconds / matmul_gflops
    runs = (
        f" (the FLOPs as written; it runs {gflop:.1f})"
        if f"{gflop:.1f}" != f"{row['gflop_per_step']:.1f}"
        else ""
    )
    print(
        f"    {label}: {seconds:.2f} s, {seconds / row['seconds_per_step']:.2f}x the step, "
        f"{fraction:.0%} of matmul rate{runs}"
    )


def other_step(
    row: dict[str, Any], option: str, options: dict[str, Any], device: torch.device, repeats: int
) -> tuple[float, float]:
    """The row's step again with the TrainConfig flag `option` on: (seconds, GFLOP it runs), the
    seconds also stored in the row as <option>_seconds_per_step."""
    step = training_step(
        row["method"], row["size_label"], {**options, option: True}, device, max(2, repeats // 2)
    )
    row[f"{option}_seconds_per_step"] = step["seconds_per_step"]
    return step["seconds_per_step"], step["gflop_per_step"]
