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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench import methods
from bench.core.errors import EXIT_BAD_INPUT, BadInput
from bench.core.files import safe_name, sha256_path, write_json
from bench.core.records import git_commit, package_versions
from bench.core.vocabulary import PROTOCOLS, MetricProtocol
from bench.datasets.masks import GENERATORS, MaskSet, bucketed_mask_set, load_mask_folder
from bench.datasets.release_crop import load_release_test_set
from bench.datasets.sources import TestSet, load_test_set
from bench.evaluation import sharding
from bench.evaluation.checks import check_arguments, check_device, typed_options
from bench.evaluation.figures import save_lbam_figures
from bench.evaluation.harness import Pair, evaluate_method, sample_pairs, save_sample_inputs, to_tensor
from bench.evaluation.metrics import LpipsUnavailable, load_lpips
from bench.evaluation.pairing import PAIRINGS, Pairing, PairingError, choose_pairs, sample_pairs_among
from bench.evaluation.parallel import default_workers
from bench.evaluation.predictions import Predictions
from bench.evaluation.run_folder import (
    LOCK_FILE,
    check_method_identity,
    lock_run_folder,
    most_recent_run,
    read_stored_run,
)
from bench.methods import released
from bench.reports.aggregate import summary_table
from bench.reports.protocols import write_summary


class RunError(BadInput):
    """A command line that cannot be carried out; the message says why."""


# Settings that must be equal for a run folder to be resumed (methods may be added).
RESUMABLE_KEYS = ("dataset", "masks", "masks_per_bucket", "size", "seed", "protocol", "test_crop")
# Settings added later, with the value a run.json without them was made with.
SCALE_KEYS = {"pairing": "cross", "masks_per_image": 1, "save_outputs": False}


@dataclass
class RunConfig:
    methods: list[str]
    dataset: str = "demo"
    data_root: str | None = None
    masks: str = "free_form"
    masks_per_bucket: int = 2
    size: int = 256
    seed: int = 0
    device: str = "cpu"
    checkpoints: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=lambda: MetricProtocol().as_dict())
    lpips_weights: str | None = None
    samples_per_bucket: int = 2
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    allow_untrained: bool = False
    batch_size: int = 1  # latency is measured at batch 1 unless this is raised
    test_crop: str = "centre"  # or "release": datasets/release_crop.py
    pairing: str = "cross"
    masks_per_image: int = 1  # masks of each bucket per image under the per-image pairing
    save_outputs: bool = False
    predictions: dict[str, str] = field(default_factory=dict)  # method name → folder of outputs
    workers: int = 0  # processes per CPU method; 0: every core for classical methods


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
        default=2,
        help="masks in each hole-ratio bucket (paired with the images as --pairing says)",
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
    parser.add_argument(
        "--out", default=None, help="run folder (default runs/<timestamp>); an existing one is resumed"
    )
    parser.add_argument("--resume", action="store_true", help="resume the most recent run folder in runs/")
    parser.add_argument("--report", default="reports/index.html", help="report to write ('' for none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


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
        "--masks-per-image", type=int, default=1, help="per-image pairing: masks of each bucket per image"
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


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(name)
    return name


def parse_checkpoints(items: list[str], weights_dir: str | None = None) -> dict[str, str]:
    checkpoints = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise RunError(f"--checkpoint {item!r}: expected NAME=PATH")
        checkpoints[name] = str(released.resolve_checkpoint(name.split("@")[0], path, weights_dir))
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


def build_test_set(config: RunConfig) -> TestSet:
    if config.test_crop == "release":
        return load_release_test_set(config.dataset, config.data_root, config.size, config.seed)
    return load_test_set(config.dataset, config.data_root, config.size)


def build_mask_set(config: RunConfig) -> MaskSet:
    if config.pairing == "by-name":  # every mask of the folder, whatever its hole ratio
        if not config.masks.startswith("folder:"):
            raise RunError("--pairing by-name needs --masks folder:PATH (masks named as the images)")
        return load_mask_folder(config.masks.removeprefix("folder:"), config.size, None, buckets_only=False)
    if config.masks.startswith("folder:"):
        return load_mask_folder(config.masks.removeprefix("folder:"), config.size, config.masks_per_bucket)
    return bucketed_mask_set(config.masks, config.masks_per_bucket, config.seed, config.size)


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


def check_resumable(run_dir: Path, config: RunConfig) -> dict[str, Any] | None:
    stored = read_stored_run(run_dir)
    if stored is None:
        return None
    previous = stored["config"]
    changed = [k for k in RESUMABLE_KEYS if previous.get(k) != asdict(config)[k]]
    changed += [k for k, old in SCALE_KEYS.items() if previous.get(k, old) != asdict(config)[k]]
    if changed:
        raise RunError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "choose a new --out folder to start a separate run"
        )
    return stored


def create_methods(config: RunConfig, every_method: bool) -> list[methods.Method]:
    """Create the methods; learned ones without a checkpoint are refused unless --allow-untrained
    (with --methods all they are left out with a note instead)."""
    for flag, given in (("--checkpoint", config.checkpoints), ("--option", config.method_options)):
        stray = set(given) - set(config.methods)
        if stray:
            raise RunError(f"{flag} given for methods not in --methods: {', '.join(sorted(stray))}")
    created = []
    for name in config.methods:
        if name in config.predictions:
            created.append(Predictions(name, config.predictions[name], config.device))
            continue
        base = name.split("@")[0]  # NAME@LABEL: several instances of one method, e.g. lbam@no_adv
        options = dict(config.method_options.get(name, {}))
        if "seed" in methods.option_names(base):
            options.setdefault("seed", config.seed)
        torch.manual_seed(config.seed)  # untrained weights, when allowed, are the same on every run
        method = methods.create(
            base, device=config.device, checkpoint=config.checkpoints.get(name), **options
        )
        method.name = name
        multiple = getattr(method, "size_multiple", 1)
        if config.size % multiple:
            raise RunError(f"{name} needs --size divisible by {multiple}, got {config.size}")
        if method.learned and not method.trained and not config.allow_untrained:
            if every_method:
                print(
                    f"note: {name} left out: no checkpoint (--checkpoint {name}=PATH, "
                    "or --allow-untrained to score random weights)",
                    file=sys.stderr,
                )
                continue
            raise RunError(
                f"{name} has no checkpoint: pass --checkpoint {name}=PATH (see the README, 'Checkpoints'), "
                "or --allow-untrained to score its random initial weights (marked untrained in the report)"
            )
        created.append(method)
    config.methods = [m.name for m in created]
    return created


def lbam_figures(created, test_set, mask_set, samples, run_dir: Path) -> dict[str, dict[str, str]]:
    """Figures 7–8 of every LBAM instance on one qualitative pair (a middle bucket's)."""
    instances = [m for m in created if m.name.split("@")[0] == "lbam"]
    if not instances or not samples:
        return {}
    pair = samples[len(samples) // 2]
    image, mask = to_tensor(
        test_set.images[pair.image_index], mask_set.masks[pair.mask_index], torch.device("cpu")
    )
    return {m.name: save_lbam_figures(m, image, mask, run_dir / "figures", m.name) for m in instances}


def copy_training_logs(checkpoints: dict[str, str], run_dir: Path) -> dict[str, str]:
    """The train_log.csv beside each project checkpoint, kept with the run's records."""
    copied = {}
    for name, path in checkpoints.items():
        log = Path(path).parent / "train_log.csv"
        if log.is_file():
            target = run_dir / "training" / f"{safe_name(name)}.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, target)
            copied[name] = target.name
    return copied


def plan_pairs(
    config: RunConfig, test_set: TestSet, mask_set: MaskSet, created: list[methods.Method]
) -> tuple[Pairing, list[Pair], list[Pair]]:
    """The pairing's pairs and the grid's sample pairs; predictions folders are checked for
    every pair first (each missing, unreadable or mis-sized file is printed, then the run stops)."""
    try:
        pairing = choose_pairs(config.pairing, test_set, mask_set, config.masks_per_image, config.seed)
    except PairingError as error:
        raise RunError(str(error)) from None
    for label, names in (("image", pairing.unpaired_images), ("mask", pairing.unpaired_masks)):
        for name in names:
            print(f"unpaired {label}: {name}", file=sys.stderr)
    pairs = [Pair(i, m) for i, m in pairing.pairs]
    if config.pairing == "cross":
        samples = sample_pairs(test_set, mask_set, config.samples_per_bucket)
    else:
        chosen = sample_pairs_among(pairing.pairs, mask_set, config.samples_per_bucket)
        samples = [Pair(i, m) for i, m in chosen]
    keys = [(test_set.image_ids[p.image_index], mask_set.mask_ids[p.mask_index]) for p in pairs]
    for method in created:
        if isinstance(method, Predictions):
            problems = method.problems(keys, config.size)
            for problem in problems:
                print(f"{method.name}: {problem}", file=sys.stderr)
            if problems:
                raise RunError(
                    f"{method.name}: {len(problems)} of {len(keys)} predictions in {method.folder} are "
                    f"missing or unusable (listed above; first: {problems[0]})"
                )
    return pairing, pairs, samples


def workers_for(method: methods.Method, config: RunConfig) -> int:
    if not method.device.type == "cpu":
        return 1
    return config.workers or default_workers(config.device, method.learned)


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
        return run_locked(args, config, run_dir, rank, world)
    finally:
        if lock is not None:
            lock.close()
        if new_folder and rank == 0 and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            shutil.rmtree(run_dir)  # refused before anything was written: leave no empty folder


def run_locked(args: argparse.Namespace, config: RunConfig, run_dir: Path, rank: int, world: int) -> Path:
    previous = check_resumable(run_dir, config)
    created = create_methods(config, every_method=args.methods == "all")
    checkpoints_sha256 = {n: sha256_path(p) for n, p in config.checkpoints.items()}
    if previous:
        check_method_identity(previous, {m.name: m.describe() for m in created}, checkpoints_sha256)
    test_set = build_test_set(config)
    mask_set = build_mask_set(config)
    lpips_model, lpips_note = None, "computed (AlexNet, v0.1)"
    try:
        lpips_model = load_lpips(config.lpips_weights)
    except LpipsUnavailable as error:
        lpips_note = f"unavailable: {error}"
        print(f"note: LPIPS {lpips_note}", file=sys.stderr)
    if previous:
        for label, stored, current in (
            ("test images", previous["dataset"]["sha256"], test_set.sha256),
            ("masks", previous["mask_set"]["sha256"], mask_set.sha256),
        ):
            if stored != current:
                raise RunError(
                    f"the {label} differ from those of the run stored in {run_dir} (sha256 {stored[:12]}… vs "
                    f"{current[:12]}…); choose a new --out folder"
                )
    for name, why in test_set.skipped + mask_set.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    pairing, pairs, samples = plan_pairs(config, test_set, mask_set, created)

    run_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    provenance = {
        "command": " ".join(["python -m bench.run", *args.argv]),
        "config": asdict(config),
        "methods": {m.name: m.describe() for m in created},
        "checkpoints_sha256": checkpoints_sha256,
        "seeds": {"masks": config.seed, "methods": config.seed},
        "dataset": {
            "name": test_set.name,
            "description": test_set.description,
            "images": len(test_set),
            "sha256": test_set.sha256,
            "skipped": test_set.skipped,
            "image_ids": test_set.image_ids,  # pair order, for the release protocol's batches
        },
        "mask_set": {
            "source": mask_set.source,
            "masks": len(mask_set),
            "sha256": mask_set.sha256,
            "skipped": mask_set.skipped,
            "mask_ids": mask_set.mask_ids,
        },
        "lpips": lpips_note,
        "pairing": pairing.describe(),
        "ranks": world,
        "device": config.device,
        "threads": torch.get_num_threads(),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "started": previous.get("started", started) if previous else started,
        "status": "running",
    }
    if previous:
        merged = {**previous.get("methods", {}), **provenance["methods"]}
        provenance["methods"] = merged
        provenance["config"]["methods"] = list(merged)
        provenance["checkpoints_sha256"] = {**previous.get("checkpoints_sha256", {}), **checkpoints_sha256}
    if rank == 0:
        write_json(run_dir / "run.json", provenance)
        save_sample_inputs(run_dir, test_set, mask_set, samples)
        print(
            f"{len(test_set)} images × {len(mask_set)} masks ({config.pairing}: {len(pairs)} pairs) × "
            f"{len(created)} methods → {run_dir}",
            file=sys.stderr,
        )
    shard = sharding.prepare_shard(run_dir, rank, world)
    for method in created:
        reused = evaluate_method(
            method,
            test_set,
            mask_set,
            run_dir,
            MetricProtocol(**config.protocol),
            lpips_model,
            samples,
            progress=not args.no_progress and rank == 0,
            batch_size=config.batch_size,
            pairs=pairs,
            save_outputs=config.save_outputs,
            workers=workers_for(method, config),
            shard=shard,
        )
        if reused:
            print(
                f"{method.name}: {reused} pairs already stored in {run_dir}, not recomputed", file=sys.stderr
            )
    if not sharding.finish_shard(run_dir, shard):
        return run_dir
    provenance["figures"] = lbam_figures(created, test_set, mask_set, samples, run_dir)
    provenance["training_logs"] = copy_training_logs(config.checkpoints, run_dir)
    provenance["status"] = "complete"
    provenance["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_json(run_dir / "run.json", provenance)
    write_summary(run_dir, config.seed)
    print(f"protocol: {config.protocol['name']} (summary.csv holds every protocol)")
    print(summary_table(run_dir, config.protocol["name"]))
    if args.report:
        from bench.reports.render import render_report

        report = render_report(run_dir, Path(args.report))
        print(f"report: {report}")
    return run_dir


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
