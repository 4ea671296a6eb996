"""`python -m bench.train`: train LBAM (any variant or ablation) or PConv; resumable; DDP via torchrun.

    python -m bench.train --method lbam --profile mini
    python -m bench.train --method pconv --profile mini
    torchrun --nproc_per_node=4 -m bench.train --method lbam --profile paper --dataset paris --data-root /data

Checkpoints (written atomically to <out>/checkpoint.pt) plug into
`python -m bench.run --checkpoint lbam=<out>/checkpoint.pt`.
"""

from __future__ import annotations

import argparse
import sys

from bench.core.errors import EXIT_BAD_INPUT, BadInput, error_line
from bench.training.config import METHOD_DEFAULTS, PROFILES, TrainConfig
from bench.training.entry import RanksDiverged, fit
from bench.training.losses import OBJECTIVES, VGG16_FILE


def betas(text: str) -> tuple[float, float]:
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.5,0.9, not {text!r}") from None
    return first, second


def parse_args(argv: list[str] | None, description: str = __doc__) -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.train",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--method", default="lbam", choices=sorted(METHOD_DEFAULTS))
    parser.add_argument("--variant", default=None, help="lbam: official | paper; pconv: paper | community")
    parser.add_argument(
        "--ablation", default="full", help="lbam: full, unlearned, forward, sigmoid, lrelu, relu, mask3x3"
    )
    parser.add_argument(
        "--objective", default=None, help=" | ".join(OBJECTIVES) + " (default: <method>_<variant>)"
    )
    parser.add_argument(
        "--vgg-input", default=None, help="raw | imagenet (default: raw for lbam_official, else imagenet)"
    )
    parser.add_argument(
        "--d-update",
        default="recompute",
        help="recompute (D(fake) after D's step) | legacy (the release on torch ≤ 1.4)",
    )
    parser.add_argument(
        "--no-adv",
        action="store_const",
        const=True,
        default=None,
        help="drop the adversarial term (Table 2 'w/o L_adv'; the cpu profile's default)",
    )
    parser.add_argument("--profile", default="mini", choices=sorted(PROFILES))
    parser.add_argument(
        "--dataset", default=None, help="demo | folder:PATH | paris | places (default: the profile's)"
    )
    parser.add_argument("--data-root", default=None)
    parser.add_argument(
        "--mask-folder", default=None, help="NVIDIA-layout training masks mixed with random-shape masks"
    )
    parser.add_argument("--mask-folder-fraction", type=float, default=0.4)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch, split across ranks")
    parser.add_argument(
        "--crop-scale-max", type=float, default=None, help="multi-scale crops up to size·this"
    )
    parser.add_argument("--free-form-fraction", type=float, default=None, help="share of free-form masks")
    parser.add_argument(
        "--data-reading", default=None, help="crop | squash (default: crop; pconv community: squash)"
    )
    parser.add_argument("--perceptual", default=None, help="vgg16 | none (default: the profile's)")
    parser.add_argument("--lr-schedule", default=None, help="constant | cosine (default: the profile's)")
    parser.add_argument("--val-dataset", default=None, help="held-out photos scored during training")
    names = ("size", "resize_short", "epochs", "steps", "finetune_steps", "checkpoint_every")
    for name in (*names, "warmup_steps", "val_every"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0)
    for name in ("width", "lr_g", "lr_d", "finetune_lr"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=None)
    parser.add_argument("--betas-g", type=betas, default=None, help="e.g. 0.5,0.9")
    parser.add_argument("--betas-d", type=betas, default=None, help="e.g. 0.0,0.9")
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
        "--subpixel-decoder",
        action="store_true",
        help="pconv: decoder layers as sub-pixel convolutions (same maths, other float32 rounding; "
        "≈ 0.5x the cpu profile's step)",
    )
    parser.add_argument(
        "--fused-adam",
        action="store_true",
        help="torch's fused Adam kernel (same update, other float rounding; ≈ 0.2x the optimiser's time "
        "on the CPU)",
    )
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


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = parse_args(argv, __doc__)
        fit(config, resume=args.resume, stop_after=args.stop_after, progress=not args.no_progress)
    except BadInput as error:
        print(error_line(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a full disk, a folder made read-only meanwhile, …
        where = f" ({error.filename})" if error.filename else ""
        print(f"error: {error.strerror or error}{where}; the last checkpoint is kept", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RanksDiverged as error:
        print(error_line(error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
