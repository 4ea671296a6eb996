"""`python -m bench.reproduce table1|table2`: the paper's tables end to end (used by nox).

table1: every method on the test set; LBAM and PConv with the CPU-scale weights the suite ships
(methods/weights, labelled as such in the report) unless checkpoints are given; `--retrain` trains
them anew with the command recorded in their catalogue entry (`--profile cpu` on the corpus of
`python -m bench.corpus fetch`; `--profile mini` on the demo photos), reusing finished trainings and
resuming unfinished ones. With `--dataset places --data-root … --checkpoint lbam=… --checkpoint
pconv=…` it is the paper's Table 1 protocol.
table2: trains every Table 2 variant (`--profile cpu`, the default: the corpus, TABLE2_CPU_STEPS
steps each, with the adversarial term except in "w/o L_adv"; `mini` on the demo photos; `paper` on
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
# The cpu profile's 2000 steps per model are the shipped weights' budget; eight Table 2 variants at
# that budget would take a day on 2 cores, so each gets this many (docs/cpu_profile.md: the time).
TABLE2_CPU_STEPS = 300


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
    parser.add_argument(
        "--profile", default="cpu", choices=["cpu", "mini", "paper"], help="training profile (default: cpu)"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="table1: train LBAM and PConv instead of the shipped weights"
    )
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
    """LBAM and PConv checkpoints: the given ones; else, with --retrain, ones trained once with the
    profile (the cpu one on the corpus, mini on the demo photos); else none here, so the run takes
    the shipped CPU-scale weights."""
    checkpoints = dict(given)
    if not args.retrain:
        return checkpoints
    for method in ("lbam", "pconv"):
        if method in checkpoints:
            continue
        if args.profile == "paper":
            raise MissingCheckpoint(
                f"no --checkpoint {method}=PATH: paper-scale training is a job for "
                f"python -m bench.train --method {method} --profile paper --dataset …"
            )
        out = Path(args.train_dir) / f"{method}-{args.profile}"
        config = TrainConfig(method=method, profile=args.profile, out=str(out), **overrides)
        checkpoints[method] = str(trained_checkpoint(config, not args.no_progress))
    return checkpoints


def table2_checkpoints(
    args: argparse.Namespace, given: dict[str, str], overrides: dict[str, Any]
) -> dict[str, str]:
    """One LBAM instance per Table 2 variant: the given checkpoint, else one trained once."""
    checkpoints = {}
    for variant in TABLE2_VARIANTS:
        name = f"lbam@{variant}"
        if name in given:
            checkpoints[name] = given[name]
        else:
            config = table2_config(args, variant, overrides)
            checkpoints[name] = str(trained_checkpoint(config, not args.no_progress))
    return checkpoints


def table2_config(args: argparse.Namespace, variant: str, overrides: dict[str, Any]) -> TrainConfig:
    """A variant's training: its ablation, the adversarial term unless "w/o L_adv" (the cpu profile
    leaves it out by default), TABLE2_CPU_STEPS under the cpu profile; --steps/--width win."""
    options: dict[str, Any] = (
        {"no_adv": True} if variant == "no_adv" else {"ablation": variant, "no_adv": False}
    )
    if args.profile == "cpu":
        options["steps"] = TABLE2_CPU_STEPS
    return TrainConfig(
        method="lbam",
        profile=args.profile,
        dataset=table2_dataset(args),
        data_root=args.data_root,
        out=str(Path(args.train_dir) / f"table2-{variant}-{args.profile}"),
        **{**options, **overrides},
    )


def table2_dataset(args: argparse.Namespace) -> str | None:
    """The training set: the profile's (cpu: the corpus; paper: Paris) unless --dataset is given."""
    return args.dataset or {"paper": "paris", "mini": "demo"}.get(args.profile)


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
            checkpoints = table2_checkpoints(args, given, overrides)
            dataset = args.dataset or ("paris" if args.profile == "paper" else "demo")
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
