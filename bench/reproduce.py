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
from bench.core.errors import EXIT_BAD_INPUT
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


class MissingCheckpoint(Exception):
    """Paper-scale data without a checkpoint: training it is a job for python -m bench.train."""


def table1_checkpoints(
    args: argparse.Namespace, given: dict[str, str], overrides: list[str]
) -> dict[str, str]:
    """LBAM and PConv checkpoints: the given ones, else mini-profile ones trained once (demo only)."""
    dataset, checkpoints = args.dataset or "demo", dict(given)
    for method in ("lbam", "pconv"):
        if method in checkpoints:
            continue
        if dataset != "demo":
            raise MissingCheckpoint(
                f"no --checkpoint {method}=PATH for {dataset}: train one with "
                f"python -m bench.train --method {method} --profile paper --dataset …"
            )
        out = Path(args.train_dir) / f"{method}-mini"
        train_args = ["--method", method, "--profile", args.profile, *overrides]
        checkpoints[method] = str(trained_checkpoint(train_args, out, not args.no_progress))
    return checkpoints


def table2_checkpoints(
    args: argparse.Namespace, given: dict[str, str], overrides: list[str]
) -> dict[str, str]:
    """One LBAM instance per Table 2 variant: the given checkpoint, else one trained once."""
    dataset, checkpoints = table2_dataset(args), {}
    for variant in TABLE2_VARIANTS:
        name = f"lbam@{variant}"
        if name in given:
            checkpoints[name] = given[name]
            continue
        variant_args = ["--no-adv"] if variant == "no_adv" else ["--ablation", variant]
        train_args = ["--method", "lbam", "--profile", args.profile, "--dataset", dataset, *variant_args]
        train_args += [*overrides, *(["--data-root", args.data_root] if args.data_root else [])]
        out = Path(args.train_dir) / f"table2-{variant}-{args.profile}"
        checkpoints[name] = str(trained_checkpoint(train_args, out, not args.no_progress))
    return checkpoints


def table2_dataset(args: argparse.Namespace) -> str:
    return args.dataset or ("paris" if args.profile == "paper" else "demo")


def main(argv: list[str] | None = None) -> int:
    args, rest = parse(argv)
    given = dict(item.partition("=")[::2] for item in args.checkpoint)
    overrides = [
        *(["--steps", str(args.steps)] if args.steps else []),
        *(["--width", str(args.width)] if args.width else []),
    ]
    try:
        if args.table == "table1":
            checkpoints, dataset = table1_checkpoints(args, given, overrides), args.dataset or "demo"
            methods = "all"
        else:
            checkpoints, dataset = table2_checkpoints(args, given, overrides), table2_dataset(args)
            methods = ",".join(checkpoints)
    except MissingCheckpoint as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    run_args = ["--methods", methods, "--dataset", dataset]
    run_args += [*(["--data-root", args.data_root] if args.data_root else [])]
    run_args += [*(["--no-progress"] if args.no_progress else []), *rest]
    run_args += [f"--checkpoint={name}={path}" for name, path in checkpoints.items()]
    print(f"evaluating: python -m bench.run {' '.join(run_args)}", file=sys.stderr)
    return bench_run.main(run_args)


if __name__ == "__main__":
    sys.exit(main())
