"""`python -m bench.run`: evaluate inpainting methods on a test set and render the report.

With no arguments it runs the demo benchmark (photos shipped with scikit-image/scikit-learn,
free-form masks) on every available method, writes runs/<timestamp>/ and reports/index.html.
"""

from __future__ import annotations

import argparse
import ast
import gc
import sys
from typing import Any

from bench import methods
from bench.core.errors import EXIT_BAD_INPUT, BadInput, error_line
from bench.core.vocabulary import PROTOCOLS, MetricProtocol
from bench.datasets.masks import GENERATORS
from bench.evaluation.checks import check_pairing_options
from bench.evaluation.config import RunConfig, RunError
from bench.evaluation.entry import evaluate
from bench.evaluation.pairing import PAIRINGS
from bench.evaluation.timing import Timing, seconds_since_process_start


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
    parser.add_argument(
        "--timing",
        action="store_true",
        help="print where the wall time went: imports, inputs, each phase of a pair per method, report",
    )
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


def parse_pairs(flag: str, items: list[str], example: str) -> dict[str, str]:
    """Repeated NAME=VALUE options as a dict (--checkpoint, --predictions)."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise RunError(f"{flag} {item!r}: expected {example}")
        pairs[name] = value
    return pairs


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
    """The parsed command line as a RunConfig (which checks itself)."""
    check_pairing_options(args)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    predictions = parse_pairs("--predictions", args.predictions, "NAME=PATH")
    if set(names) & set(predictions):
        raise RunError(f"a method name is given twice: {', '.join(sorted(set(names) & set(predictions)))}")
    return RunConfig(
        methods=names,
        dataset=args.dataset,
        data_root=args.data_root,
        masks=args.masks,
        masks_per_bucket=args.masks_per_bucket,
        size=args.size,
        seed=args.seed,
        device=args.device,
        checkpoints=parse_pairs("--checkpoint", args.checkpoint, "NAME=PATH"),
        weights_dir=args.weights_dir,
        protocol=MetricProtocol(args.target, args.quantize_8bit, args.color, args.protocol).as_dict(),
        lpips_weights=args.lpips_weights,
        method_options=parse_method_options(args.option),
        allow_untrained=args.allow_untrained,
        batch_size=args.batch_size,
        test_crop=args.test_crop,
        pairing=args.pairing,
        masks_per_image=args.masks_per_image,
        save_outputs=args.save_outputs,
        predictions=predictions,
        workers=args.workers,
    )


def main(argv: list[str] | None = None) -> int:
    started = seconds_since_process_start()
    args = parse_args(argv)
    command = " ".join(["python -m bench.run", *(sys.argv[1:] if argv is None else argv)])
    timing = Timing() if args.timing else None
    if timing is not None and started is not None:
        timing.run["start-up (Python, imports)"] = started
    try:
        config = build_config(args)
        progress, report = not args.no_progress, args.report
        options = dict(resume=args.resume, report=report, progress=progress, command=command, timing=timing)
        evaluate(config, args.out, **options)
        if timing is not None:
            timing.print()
    except BadInput as error:
        print(error_line(error), file=sys.stderr)
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
    # The imported modules' objects are never garbage: no collection walks them again, nor the one
    # at the interpreter's exit (0.58 → 0.3 s). Only here, not in main(), which callers may run
    # many times in one process (it would freeze their pending garbage too).
    gc.freeze()
    sys.exit(main())
