"""`python -m bench.reproduce table1|table2`: the paper's tables end to end (used by nox).

table1: trains LBAM and PConv with the `mini` profile on the demo data when no checkpoints are given
(reusing finished trainings, resuming unfinished ones), runs the harness on every method and
renders the report. With `--dataset places --data-root … --checkpoint lbam=… --checkpoint pconv=…`
it is the paper's Table 1 protocol.
table2: trains every Table 2 variant (mini profile on the demo data, or `--profile paper` on
Paris), evaluates them side by side as lbam@<variant> and renders the Table 2 mirror.
Options not listed here go to `python -m bench.run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import run as bench_run
from bench import train as bench_train
from bench.methods.lbam import ABLATIONS
from bench.training.trainer import CHECKPOINT

TABLE2_VARIANTS = (*ABLATIONS, "no_adv")


def trained_checkpoint(train_args: list[str], out: Path, progress: bool) -> Path:
    """Train into `out` unless a finished checkpoint is there; resume an unfinished one."""
    checkpoint, summary = out / CHECKPOINT, out / "train_summary.json"
    if summary.exists():
        done = json.loads(summary.read_text())
        if done["step"] >= done["total_steps"] and checkpoint.exists():
            print(f"reusing {checkpoint} (step {done['step']})", file=sys.stderr)
            return checkpoint
    arguments = [*train_args, "--out", str(out), *([] if progress else ["--no-progress"])]
    if checkpoint.exists():
        arguments.append("--resume")
    print(f"training: python -m bench.train {' '.join(arguments)}", file=sys.stderr)
    if bench_train.main(arguments) != 0:
        raise SystemExit(2)
    return checkpoint


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table", choices=["table1", "table2"])
    parser.add_argument("--profile", default="mini", choices=["mini", "paper"], help="training profile")
    parser.add_argument("--dataset", default=None, help="evaluation (and table2 training) data set")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--train-dir", default="runs/train", help="where trained checkpoints are kept")
    parser.add_argument(
        "--steps", type=int, default=None, help="override the profile's training steps (quick looks)"
    )
    parser.add_argument("--width", type=float, default=None, help="override the profile's network width")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    args, rest = parse(argv)
    progress = not args.no_progress
    given = dict(item.partition("=")[::2] for item in args.checkpoint)
    common = [
        *(["--data-root", args.data_root] if args.data_root else []),
        *(["--no-progress"] if args.no_progress else []),
    ]
    train_dir = Path(args.train_dir)
    overrides = [
        *(["--steps", str(args.steps)] if args.steps else []),
        *(["--width", str(args.width)] if args.width else []),
    ]
    if args.table == "table1":
        dataset = args.dataset or "demo"
        checkpoints = dict(given)
        for method in ("lbam", "pconv"):
            if method not in checkpoints:
                if dataset != "demo":
                    print(
                        f"error: no --checkpoint {method}=PATH for {dataset}: train one with "
                        f"python -m bench.train --method {method} --profile paper --dataset …",
                        file=sys.stderr,
                    )
                    return 2
                out = train_dir / f"{method}-mini"
                checkpoints[method] = str(
                    trained_checkpoint(
                        ["--method", method, "--profile", args.profile, *overrides], out, progress
                    )
                )
        run_args = [
            "--methods",
            "all",
            "--dataset",
            dataset,
            *common,
            *rest,
            *(f"--checkpoint={name}={path}" for name, path in checkpoints.items()),
        ]
    else:
        dataset = args.dataset or ("paris" if args.profile == "paper" else "demo")
        checkpoints = {}
        for variant in TABLE2_VARIANTS:
            name = f"lbam@{variant}"
            if name in given:
                checkpoints[name] = given[name]
                continue
            variant_args = ["--no-adv"] if variant == "no_adv" else ["--ablation", variant]
            train_args = [
                "--method",
                "lbam",
                "--profile",
                args.profile,
                "--dataset",
                dataset,
                *variant_args,
                *overrides,
                *(["--data-root", args.data_root] if args.data_root else []),
            ]
            checkpoints[name] = str(
                trained_checkpoint(train_args, train_dir / f"table2-{variant}-{args.profile}", progress)
            )
        run_args = [
            "--methods",
            ",".join(checkpoints),
            "--dataset",
            dataset,
            *common,
            *rest,
            *(f"--checkpoint={name}={path}" for name, path in checkpoints.items()),
        ]
    print(f"evaluating: python -m bench.run {' '.join(run_args)}", file=sys.stderr)
    return bench_run.main(run_args)


if __name__ == "__main__":
    sys.exit(main())
