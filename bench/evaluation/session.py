"""One evaluation run in a locked run folder: methods, data and masks built from a RunConfig, the
pairs scored method by method into the records, provenance in run.json, then the summary and the
report. bench/run.py is the command line over `evaluate`."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench import methods
from bench.core.files import safe_name, write_json
from bench.core.process import prepare_process
from bench.core.records import copy_log_until, git_commit, package_versions
from bench.core.vocabulary import CPU_SCALE_LABEL, MetricProtocol, method_of
from bench.datasets.masks import MaskSet, bucketed_mask_set, load_mask_folder
from bench.datasets.release_crop import load_release_test_set
from bench.datasets.sources import TestSet, load_test_set
from bench.evaluation import sharding
from bench.evaluation.config import RESUMABLE_KEYS, SCALE_KEYS, RunConfig, RunError
from bench.evaluation.figures import save_lbam_figures
from bench.evaluation.harness import Pair, evaluate_method, sample_pairs, save_sample_inputs, to_tensor
from bench.evaluation.metrics import LpipsUnavailable, load_lpips
from bench.evaluation.pairing import Pairing, PairingError, choose_pairs, sample_pairs_among
from bench.evaluation.parallel import default_workers
from bench.evaluation.predictions import Predictions
from bench.evaluation.run_folder import (
    check_method_identity,
    check_reads_and_writes,
    read_stored_run,
)
from bench.evaluation.timing import Timing
from bench.methods import released
from bench.methods.checkpoints import checkpoint_sha256
from bench.reports.aggregate import summary_table
from bench.reports.protocols import write_summary


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


NO_CHECKPOINT_NOTE = "no checkpoint (--checkpoint {name}=PATH, or --allow-untrained to score random weights)"


def create_methods(config: RunConfig, every_method: bool) -> list[methods.Method]:
    """Create the methods (every available one with --methods all). A learned method without a
    checkpoint runs with the CPU-scale weights the suite ships for it (catalogue name `cpu`, noted
    and recorded as its checkpoint); one with none of those either is refused unless
    --allow-untrained (with --methods all it is left out with a note instead)."""
    for flag, given in (("--checkpoint", config.checkpoints), ("--option", config.method_options)):
        stray = set(given) - set(config.methods)
        if stray:
            raise RunError(f"{flag} given for methods not in --methods: {', '.join(sorted(stray))}")
    created = []
    for name in methods.available() if every_method else config.methods:
        if name in config.predictions:
            created.append(Predictions(name, config.predictions[name], config.device))
            continue
        base = method_of(name)  # NAME@LABEL: several instances of one method, e.g. lbam@no_adv
        needs_weights = name not in config.checkpoints and not config.allow_untrained
        shipped = released.shipped_default(base) if needs_weights else None
        if every_method and needs_weights and shipped is None and methods.is_learned(base):
            print(f"note: {name} left out: {NO_CHECKPOINT_NOTE.format(name=name)}", file=sys.stderr)
            continue  # not built: its random initialisation costs seconds
        options = dict(config.method_options.get(name, {}))
        if "seed" in methods.option_names(base):
            options.setdefault("seed", config.seed)
        torch.manual_seed(config.seed)  # untrained weights, when allowed, are the same on every run
        if shipped is not None:
            config.checkpoints[name] = str(released.locate(shipped))
            print(f"note: {name} runs with {base}={shipped.name}: {CPU_SCALE_LABEL}", file=sys.stderr)
        method = methods.create(
            base, device=config.device, checkpoint=config.checkpoints.get(name), **options
        )
        method.name = name
        multiple = getattr(method, "size_multiple", 1)
        if config.size % multiple:
            raise RunError(f"{name} needs --size divisible by {multiple}, got {config.size}")
        if method.learned and not method.trained and not config.allow_untrained:
            if every_method:
                print(f"note: {name} left out: {NO_CHECKPOINT_NOTE.format(name=name)}", file=sys.stderr)
                continue
            raise RunError(
                f"{name} has no checkpoint: pass --checkpoint {name}=PATH (see the README, 'Checkpoints'), "
                "or --allow-untrained to score its random initial weights (marked untrained in the report)"
            )
        created.append(method)
    config.methods = [m.name for m in created]
    return created


def lbam_figures(created, test_set, mask_set, samples, run_dir: Path) -> dict[str, dict[str, str]]:
    """Figures 7–8 of every method that can show LBAM's intermediates (decided by capability, not by
    name: `--predictions lbam=DIR` has none), on one qualitative pair (a middle bucket's)."""
    instances = [m for m in created if callable(getattr(m, "intermediates", None))]
    if not instances or not samples:
        return {}
    pair = samples[len(samples) // 2]
    image, mask = to_tensor(
        test_set.images[pair.image_index], mask_set.masks[pair.mask_index], torch.device("cpu")
    )
    return {m.name: save_lbam_figures(m, image, mask, run_dir / "figures", m.name) for m in instances}


def copy_training_logs(
    created: list[methods.Method], checkpoints: dict[str, str], run_dir: Path
) -> dict[str, str]:
    """The train_log.csv beside each project checkpoint, kept with the run's records: only the rows
    of the steps the loaded weights had (training may have gone on, or been killed, after the
    checkpoint was written)."""
    copied = {}
    for method in created:
        step = (getattr(method, "training", None) or {}).get("step")
        log = Path(checkpoints.get(method.name, "")).parent / "train_log.csv"
        if not isinstance(step, int) or method.name not in checkpoints or not log.is_file():
            continue
        target = run_dir / "training" / f"{safe_name(method.name)}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_log_until(log, step, target)
        copied[method.name] = target.name
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


@dataclass
class Invocation:
    """How this run was asked for: recorded, and deciding what is printed and rendered."""

    command: str  # the command line, for run.json
    every_method: bool = False  # --methods all: learned methods without weights are left out
    progress: bool = True
    report: str = ""  # the report to render ('' for none)
    rank: int = 0  # torchrun rank and world size
    world: int = 1
    timing: Timing | None = None  # --timing: phases measured and printed at the end


@dataclass
class Inputs:
    methods: list[methods.Method]
    test_set: TestSet
    mask_set: MaskSet
    checkpoints_sha256: dict[str, str]
    lpips_model: torch.nn.Module | None
    lpips_note: str
    lpips_sha256: str | None = None


TORCHVISION_ALEXNET_SHA256 = "7be5be79"  # the prefix in torchvision's ImageNet file name


def load_lpips_or_note(weights: str | None) -> tuple[torch.nn.Module | None, str, str | None]:
    """The LPIPS model, the note run.json and the report show, and its AlexNet file's SHA-256.
    Weights other than torchvision's ImageNet file are never reported as LPIPS v0.1."""
    try:
        model = load_lpips(weights)
    except LpipsUnavailable as error:
        note = f"unavailable: {error}"
        print(f"note: LPIPS {note}", file=sys.stderr)
        return None, note, None
    digest = model.weights_sha256
    if digest.startswith(TORCHVISION_ALEXNET_SHA256):
        return model, "computed (AlexNet, v0.1)", digest
    note = (
        f"computed with AlexNet weights that are not torchvision's ImageNet file (sha256 {digest[:12]}…, "
        f"expected {TORCHVISION_ALEXNET_SHA256}…): not comparable with published LPIPS"
    )
    print(f"note: LPIPS {note}", file=sys.stderr)
    return model, note, digest


def check_lpips_identity(previous: dict[str, Any] | None, digest: str | None, run_dir: Path) -> None:
    """A resumed run scores LPIPS with the network its stored rows were scored with."""
    if not previous or "lpips_sha256" not in previous or previous["lpips_sha256"] == digest:
        return
    then, now = (str(d)[:12] if d else "none" for d in (previous["lpips_sha256"], digest))
    raise RunError(
        f"the run in {run_dir} scored LPIPS with other AlexNet weights (sha256 {then} then, {now} now); "
        "pass the same --lpips-weights or choose a new --out"
    )


def prepare_inputs(config: RunConfig, run_dir: Path, previous: dict[str, Any] | None, every: bool) -> Inputs:
    """Methods, test set and masks; a resumed folder must hold the same instances, images and masks."""
    created = create_methods(config, every_method=every)
    checkpoints_sha256 = {n: checkpoint_sha256(p) for n, p in config.checkpoints.items()}
    if previous:
        check_method_identity(previous, {m.name: m.describe() for m in created}, checkpoints_sha256)
    test_set, mask_set = build_test_set(config), build_mask_set(config)
    lpips_model, lpips_note, lpips_sha256 = load_lpips_or_note(config.lpips_weights)
    check_lpips_identity(previous, lpips_sha256, run_dir)
    for label, key, current in (("test images", "dataset", test_set), ("masks", "mask_set", mask_set)):
        stored = previous[key]["sha256"] if previous else current.sha256
        if stored != current.sha256:
            raise RunError(
                f"the {label} differ from those of the run stored in {run_dir} (sha256 {stored[:12]}… vs "
                f"{current.sha256[:12]}…); choose a new --out folder"
            )
    for name, why in test_set.skipped + mask_set.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    return Inputs(created, test_set, mask_set, checkpoints_sha256, lpips_model, lpips_note, lpips_sha256)


def provenance_record(
    config: RunConfig, inputs: Inputs, pairing: Pairing, how: Invocation, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """run.json: what ran, on what, with which code and packages; a resumed run keeps its start and
    its earlier methods."""
    test_set, mask_set = inputs.test_set, inputs.mask_set
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    provenance = {
        "command": how.command,
        "config": asdict(config),
        "methods": {m.name: m.describe() for m in inputs.methods},
        "checkpoints_sha256": inputs.checkpoints_sha256,
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
        "lpips": inputs.lpips_note,
        "lpips_sha256": inputs.lpips_sha256,
        "pairing": pairing.describe(),
        "ranks": how.world,
        "device": config.device,
        "threads": torch.get_num_threads(),
        "process": prepare_process(),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "started": previous.get("started", started) if previous else started,
        "status": "running",
    }
    if previous:
        provenance["methods"] = {**previous.get("methods", {}), **provenance["methods"]}
        provenance["config"]["methods"] = list(provenance["methods"])
        earlier = previous.get("checkpoints_sha256", {})
        provenance["checkpoints_sha256"] = {**earlier, **inputs.checkpoints_sha256}
    return provenance


def score_every_method(
    config: RunConfig, run_dir: Path, inputs: Inputs, pairs: list[Pair], samples: list[Pair], how: Invocation
) -> bool:
    """Every method on this rank's share of the pairs; True once every rank's records are merged."""
    shard = sharding.prepare_shard(run_dir, how.rank, how.world)
    for method in inputs.methods:
        reused = evaluate_method(
            method,
            inputs.test_set,
            inputs.mask_set,
            run_dir,
            MetricProtocol(**config.protocol),
            inputs.lpips_model,
            samples,
            progress=how.progress and how.rank == 0,
            batch_size=config.batch_size,
            pairs=pairs,
            save_outputs=config.save_outputs,
            workers=workers_for(method, config),
            shard=shard,
            timing=how.timing,
        )
        if reused:
            print(
                f"{method.name}: {reused} pairs already stored in {run_dir}, not recomputed", file=sys.stderr
            )
    return sharding.finish_shard(run_dir, shard)


def evaluate(config: RunConfig, run_dir: Path, how: Invocation) -> Path:
    """The run in `run_dir` (locked by the caller): records, run.json, summary.csv and the report."""
    check_reads_and_writes(config, run_dir, how.report)
    timing = how.timing or Timing()
    with timing.phase("inputs (data, masks, methods)"):
        previous = check_resumable(run_dir, config)
        inputs = prepare_inputs(config, run_dir, previous, how.every_method)
        test_set, mask_set = inputs.test_set, inputs.mask_set
        pairing, pairs, samples = plan_pairs(config, test_set, mask_set, inputs.methods)
        run_dir.mkdir(parents=True, exist_ok=True)
        provenance = provenance_record(config, inputs, pairing, how, previous)
    if how.rank == 0:
        with timing.phase("run.json, sample inputs"):
            write_json(run_dir / "run.json", provenance)
            save_sample_inputs(run_dir, test_set, mask_set, samples)
        print(
            f"{len(test_set)} images × {len(mask_set)} masks ({config.pairing}: {len(pairs)} pairs) × "
            f"{len(inputs.methods)} methods → {run_dir}",
            file=sys.stderr,
        )
    with timing.phase("scoring (every method)"):
        merged = score_every_method(config, run_dir, inputs, pairs, samples, how)
    if not merged:
        return run_dir  # another rank merges and finishes
    with timing.phase("LBAM figures, run.json"):
        provenance["figures"] = lbam_figures(inputs.methods, test_set, mask_set, samples, run_dir)
        provenance["training_logs"] = copy_training_logs(inputs.methods, config.checkpoints, run_dir)
        provenance["status"] = "complete"
        provenance["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_json(run_dir / "run.json", provenance)
    with timing.phase("summary.csv, table"):
        write_summary(run_dir, config.seed)
        print(f"protocol: {config.protocol['name']} (summary.csv holds every protocol)")
        print(summary_table(run_dir, config.protocol["name"]))
    if how.report:
        with timing.phase("report"):
            from bench.reports.render import render_report

            print(f"report: {render_report(run_dir, Path(how.report))}")
    return run_dir
