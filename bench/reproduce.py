"""`python -m bench.reproduce table1|table2`: the paper's tables end to end (used by nox).

table1: trains LBAM and PConv with the `mini` profile on the demo data when no checkpoints are given
(reusing finished trainings, resuming unfinished ones), runs the harness on every method and
renders the report. With `--dataset places --data-root … --checkpoint lbam=… --checkpoint pconv=…`
it is the paper's Table 1 protocol.
table2: trains every Table 2 variant (mini profile on the demo data, or `--profile paper` on
Paris), evaluates them side by side as lbam@<variant> and renders the Table 2 mirror.
Options not listed here are those of `python -m bench.run`; the trainings and the evaluation run
through bench.fit and bench.evaluate.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from bench import run as bench_run
from bench.core.errors import EXIT_BAD_INPUT, BadInput
from bench.evaluation.entry import evaluate
from bench.methods.lbam import ABLATIONS
from bench.training.config import TrainConfig
from bench.training.entry import fit
from bench.training.trainer import CHECKPOINT

TABLE2_VARIANTS = (*ABLATIONS, "no_adv")


def trained_checkpoint(config: TrainConfig, progress: bool) -> Path:
    """Train into config.out unless a finished checkpoint is there; resume an unfinished one."""
    out = Path(config.out)
    checkpoint, summary = out / CHECKPOINT, out / "train_summary.json"
    if summary.exists():
        done = json.loads(summary.read_text())
        if done["step"] >= done["total_steps"] and checkpoint.exists():
            print(f"reusing {checkpoint} (step {done['step']})", file=sys.stderr)
            return checkpoint
    print(f"training: bench.fit({config})", file=sys.stderr)
    fit(config, resume=checkpoint.exists(), progress=progress)
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
    args: argparse.Namespace, given: dict[str, str], overrides: dict[str, Any]
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
        config = TrainConfig(method=method, profile=args.profile, out=str(out), **overrides)
        checkpoints[method] = str(trained_checkpoint(config, not args.no_progress))
    return checkpoints


def table2_checkpoints(
    args: argparse.Namespace, given: dict[str, str], overrides: dict[str, Any]
) -> dict[str, str]:
    """One LBAM instance per Table 2 variant: the given checkpoint, else one trained once."""
    dataset, checkpoints = table2_dataset(args), {}
    for variant in TABLE2_VARIANTS:
        name = f"lbam@{variant}"
        if name in given:
            checkpoints[name] = given[name]
            continue
        variant_options = {"no_adv": True} if variant == "no_adv" else {"ablation": variant}
        out = Path(args.train_dir) / f"table2-{variant}-{args.profile}"
        config = TrainConfig(
            method="lbam",
            profile=args.profile,
            dataset=dataset,
            data_root=args.data_root,
            out=str(out),
            **variant_options,
            **overrides,
        )
        checkpoints[name] = str(trained_checkpoint(config, not args.no_progress))
    return checkpoints


def table2_dataset(args: argparse.Namespace) -> str:
    return args.dataset or ("paris" if args.profile == "paper" else "demo")


def main(argv: list[str] | None = None) -> int:
    args, rest = parse(argv)
    given = dict(item.partition("=")[::2] for item in args.checkpoint)
    overrides = {key: getattr(args, key) for key in ("steps", "width") if getattr(args, key)}
    command = " ".join(["python -m bench.reproduce", *(sys.argv[1:] if argv is None else argv)])
    try:
        run_args = bench_run.parse_args(rest)  # the options of python -m bench.run given here
        if args.table == "table1":
            checkpoints, dataset = table1_checkpoints(args, given, overrides), args.dataset or "demo"
            names = run_args.methods
        else:
            checkpoints, dataset = table2_checkpoints(args, given, overrides), table2_dataset(args)
            names = run_args.methods if run_args.methods != "all" else ",".join(checkpoints)
        config = bench_run.build_config(run_args)
        config = dataclasses.replace(
            config,
            methods=names,
            dataset=dataset,
            data_root=args.data_root or config.data_root,
            checkpoints={**config.checkpoints, **checkpoints},
        )
        print(f"evaluating: bench.evaluate({config})", file=sys.stderr)
        progress = not (args.no_progress or run_args.no_progress)
        evaluate(
            config,
            run_args.out,
            resume=run_args.resume,
            report=run_args.report,
            progress=progress,
            command=command,
        )
    except (MissingCheckpoint, BadInput) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
