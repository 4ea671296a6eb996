"""`python -m bench.run`: evaluate inpainting methods on a test set and render the report.

With no arguments it runs the demo benchmark (photos shipped with scikit-image/scikit-learn,
free-form masks) on every available method, writes runs/<timestamp>/ and reports/index.html.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from bench import methods
from bench.core.errors import EXIT_BAD_INPUT, BadInput
from bench.core.vocabulary import PROTOCOLS, MetricProtocol, method_of
from bench.datasets.masks import GENERATORS
from bench.evaluation import sharding
from bench.evaluation.checks import check_arguments, typed_options
from bench.evaluation.config import RunConfig, RunError
from bench.evaluation.pairing import PAIRINGS
from bench.evaluation.run_folder import (
    LOCK_FILE,
    lock_run_folder,
    most_recent_run,
)
from bench.evaluation.session import Invocation, evaluate
from bench.methods import released
from bench.methods.base import resolve_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--methods",
        default="all",
        help=f"comma-separated methods or 'all' (available: {', '.join(methods.available())}); "
        "NAME@LABEL runs another instance, e.g. lbam@paper --option lbam@paper.variant=paper",
    )
    parser.add_argument("--dataset", default="demo", help="demo | folder:PATH | paris | places")
    parser.add_argument(
        "--data-root", default=None, help="folder holding paris/ or places365/ (default: $BENCH_DATA_ROOT)"
    )
    parser.add_argument(
        "--masks",
        default="free_form",
        help=f"mask generator ({', '.join(GENERATORS)}) or folder:PATH of mask PNGs (white = hole)",
    )
    parser.add_argument(
        "--masks-per-bucket",
        type=int,
        default=None,
        help="masks in each hole-ratio bucket (default 2; paired with the images as --pairing says; "
        "by-name takes every mask of the folder)",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="checkpoint of a learned method (repeatable): a path, or a name of the catalogue of "
        "released weights (methods/released.py), e.g. gl=places2, looked up in --weights-dir",
    )
    parser.add_argument(
        "--weights-dir",
        default=None,
        help="folder of released weights named by --checkpoint (default: $TORCH_HOME/hub/checkpoints)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="a method option, e.g. lbam.variant=paper or telea.radius=5 (repeatable)",
    )
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="score learned methods that have no checkpoint (random weights; marked in the report)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 …")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="pairs per forward pass (default 1, at which latency is measured; raise it on a GPU)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask set and of random methods")
    add_scale_arguments(parser)
    parser.add_argument("--size", type=int, default=256, help="test crop size (default 256)")
    add_protocol_arguments(parser)
    parser.add_argument(
        "--out", default=None, help="run folder (default runs/<timestamp>); an existing one is resumed"
    )
    parser.add_argument("--resume", action="store_true", help="resume the most recent run folder in runs/")
    parser.add_argument("--report", default="reports/index.html", help="report to write ('' for none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """How outputs are scored and how per-pair scores become table cells (all recorded)."""
    parser.add_argument(
        "--target",
        choices=["composite", "raw"],
        default="composite",
        help="score the composite (default, as the official test script) or the raw output",
    )
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="per-image",
        help="how pairs become a table cell: per-image means (default) or the LBAM release's test "
        "script (batches of 16, pooled MSE, its SSIM); summary.csv holds both",
    )
    parser.add_argument(
        "--test-crop",
        choices=["centre", "release"],
        default="centre",
        help="test images: short side → size, centre crop (default), or the release's pipeline "
        "(squash to 350², crop and flip drawn from --seed)",
    )
    parser.add_argument("--quantize-8bit", action="store_true", help="round outputs to 8 bit before scoring")
    parser.add_argument(
        "--color", choices=["rgb", "y"], default="rgb", help="score RGB (default) or BT.601 luma"
    )
    parser.add_argument(
        "--lpips-weights",
        default=None,
        help="ImageNet AlexNet weights for LPIPS (default: the torchvision cache file)",
    )


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pairing",
        choices=PAIRINGS,
        default="cross",
        help="cross: every image × every mask (default); per-image: --masks-per-image masks of each "
        "bucket per image, drawn from (seed, image id); by-name: image x.* with mask x.* (needs "
        "--masks folder:PATH)",
    )
    parser.add_argument(
        "--masks-per-image",
        type=int,
        default=None,
        help="per-image pairing: masks of each bucket per image (default 1)",
    )
    parser.add_argument(
        "--save-outputs",
        action="store_true",
        help="store every composite as PNG: outputs/<method>/<image_id>__<mask_id>.png",
    )
    parser.add_argument(
        "--predictions",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="score the <image_id>__<mask_id>.png files of PATH as method NAME (repeatable; "
        "also --methods predictions:PATH)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes per CPU method (default 0: every core for classical methods, 1 for learned)",
    )


def parse_predictions(names: list[str], items: list[str]) -> tuple[list[str], dict[str, str]]:
    """--methods predictions:PATH (named predictions@<folder name>) and --predictions NAME=PATH."""
    folders, plain = {}, []
    for name in names:
        if name.startswith("predictions:"):
            folder = name.removeprefix("predictions:")
            if not folder.strip():
                raise RunError("--methods predictions: needs a path, e.g. predictions:~/outputs")
            name = f"predictions@{Path(folder).name or 'outputs'}"
            folders[name] = folder
        plain.append(name)
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise RunError(f"--predictions {item!r}: expected NAME=PATH")
        folders[name] = folder
        plain.append(name)
    if len(set(plain)) < len(plain):
        raise RunError(f"a method name is given twice: {', '.join(sorted(plain))}")
    return plain, folders


def parse_checkpoints(items: list[str], weights_dir: str | None = None) -> dict[str, str]:
    checkpoints = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise RunError(f"--checkpoint {item!r}: expected NAME=PATH")
        checkpoints[name] = str(released.resolve_checkpoint(method_of(name), path, weights_dir))
    return checkpoints


def parse_method_options(items: list[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise RunError(f"--option {item!r}: expected NAME.KEY=VALUE, e.g. lbam.variant=paper")
        try:
            value = ast.literal_eval(raw)  # numbers, booleans, quoted strings; never code
        except (ValueError, SyntaxError):
            value = raw
        options.setdefault(name, {})[key] = value
    return options


def build_config(args: argparse.Namespace) -> RunConfig:
    check_arguments(args)
    names = (
        methods.available()
        if args.methods == "all"
        else [m.strip() for m in args.methods.split(",") if m.strip()]
    )
    protocol = MetricProtocol(args.target, args.quantize_8bit, args.color, args.protocol)
    if args.batch_size < 1:
        raise RunError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.workers < 0:
        raise RunError(f"--workers must be 0 (every core) or more, got {args.workers}")
    names, predictions = parse_predictions(names, args.predictions)
    return RunConfig(
        methods=names,
        dataset=args.dataset,
        data_root=args.data_root,
        masks=args.masks,
        masks_per_bucket=args.masks_per_bucket,
        size=args.size,
        seed=args.seed,
        device=resolve_device(args.device),
        checkpoints=parse_checkpoints(args.checkpoint, args.weights_dir),
        protocol=protocol.as_dict(),
        lpips_weights=args.lpips_weights,
        method_options={n: typed_options(n, o) for n, o in parse_method_options(args.option).items()},
        allow_untrained=args.allow_untrained,
        batch_size=args.batch_size,
        test_crop=args.test_crop,
        pairing=args.pairing,
        masks_per_image=args.masks_per_image,
        save_outputs=args.save_outputs,
        predictions=predictions,
        workers=args.workers,
    )


def choose_run_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    runs = Path("runs")
    if args.resume:
        previous = most_recent_run(runs)
        if previous is None:
            raise RunError("--resume: no earlier run folder with a run.json in runs/")
        return previous
    return runs / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def run(args: argparse.Namespace) -> Path:
    config = build_config(args)
    rank, world, local_rank = sharding.start(config.device)
    if world > 1 and config.device == "cuda":  # one GPU per rank
        if local_rank >= torch.cuda.device_count():
            raise RunError(
                f"rank {rank} needs cuda:{local_rank} but this node has {torch.cuda.device_count()} GPUs; "
                "start at most that many processes per node"
            )
        config.device = f"cuda:{local_rank}"
    run_dir = choose_run_dir(args)
    new_folder = not run_dir.exists()
    # rank 0 holds the run folder for its torchrun launch; the other ranks write rank files only
    lock = lock_run_folder(run_dir) if rank == 0 else None
    try:
        how = Invocation(
            command=" ".join(["python -m bench.run", *args.argv]),
            every_method=args.methods == "all",
            progress=not args.no_progress,
            report=args.report,
            rank=rank,
            world=world,
        )
        return evaluate(config, run_dir, how)
    finally:
        if lock is not None:
            lock.close()
        if new_folder and rank == 0 and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            shutil.rmtree(run_dir)  # refused before anything was written: leave no empty folder


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
        sharding.stop()
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a full disk, a folder made read-only meanwhile, …
        where = f" ({error.filename})" if error.filename else ""
        print(
            f"error: {error.strerror or error}{where}; finished items are stored, run the same command "
            "again to continue",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished items are stored; run again with the same --out "
            "(or --resume) to continue",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
