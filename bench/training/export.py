"""Weights to ship: a finished training checkpoint → a slim fp16 checkpoint inside the package
(methods/weights/<method>_<name>.pth) and its entry in methods/weights/catalogue.json.

The slim file keeps what evaluation and provenance need (method, network options, generator in
fp16, step, TrainConfig, VGG source, validation curve with Telea's scores, the commits it trained
under) and drops what only training needs (discriminator, optimisers, RNG state). The entry records
its sha256 (checked on every load), the training command, the corpus manifest's digest, the commit
and the final validation scores.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput
from bench.core.files import atomic_write_text, file_digest
from bench.datasets.corpus import manifest_of
from bench.methods.checkpoints import checked_own, load_file, own_checkpoint, project_checkpoint
from bench.methods.released import SHIPPED_CATALOGUE, SHIPPED_DIR, SHIPPED_LICENCE
from bench.training.config import TrainConfig
from bench.training.storage import atomic_save
from bench.training.trainer import CHECKPOINT

MAX_SHIPPED_BYTES = 25 * 2**20  # the limit per file
# TrainConfig fields that are not command-line choices (set by training, or where it writes)
NOT_ARGUMENTS = {"out", "deviations", "world_size", "rank_batch_size", "finetune_steps"}


class ExportError(BadInput):
    """A checkpoint that cannot be shipped (not finished, not this project's); the message says why."""


def training_command(config: dict[str, Any], cpu_threads: int | None = None) -> str:
    """The `python -m bench.train` command that reproduces `config`: the profile and method, plus
    every field that differs from what they give (none when trained as the profile); with the CPU
    thread count the checkpoint recorded, as OMP_NUM_THREADS (a bit-for-bit rerun needs it)."""
    base = asdict(TrainConfig(method=config["method"], profile=config["profile"]).resolve())
    words = ["python", "-m", "bench.train", "--profile", config["profile"], "--method", config["method"]]
    for key in sorted(set(config) & set(base) - NOT_ARGUMENTS):
        value, default = (list(v) if isinstance(v, tuple) else v for v in (config[key], base[key]))
        if value is None or value == default:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words += [flag] if value else []
        else:
            words += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    threads = f"OMP_NUM_THREADS={int(cpu_threads)} " if cpu_threads else ""
    return threads + shlex.join(words)


def corpus_manifest_digest(dataset: str) -> str | None:
    """The digest of the corpus manifest of a folder:<corpus>/train data set, if there is one."""
    if not dataset.startswith("folder:"):
        return None
    manifest = manifest_of(Path(dataset.removeprefix("folder:")).expanduser())
    return manifest.get("digest") if manifest else None


def final_validation(validation: dict[str, Any] | None) -> dict[str, Any]:
    """The last validated step's scores per bucket, with Telea's on the same pairs."""
    curve = (validation or {}).get("curve") or []
    if not curve:
        return {}
    last = max(row["step"] for row in curve)
    scores = {r["bucket"]: {k: r[k] for k in ("psnr", "ssim", "l1")} for r in curve if r["step"] == last}
    return {"step": last, "scores": scores, "telea": (validation or {}).get("telea")}


def slim_checkpoint(data: dict[str, Any], commits: list[str], trained_on: str) -> dict[str, Any]:
    half = {k: v.half() if v.is_floating_point() else v for k, v in data["generator"].items()}
    return project_checkpoint(
        data["method"],
        data["options"],
        half,
        step=data["step"],
        train_config=data["train_config"],
        vgg=data.get("vgg"),
        validation=data.get("validation"),
        versions=data.get("versions"),
        git_commits=commits,
        trained_on=trained_on,
        stored_as="float16 generator weights (loaded as float32)",
    )


def export_weights(
    run_dir: Path,
    name: str,
    out_dir: Path = SHIPPED_DIR,
    commit: str | None = None,
    trained_on: str | None = None,
) -> dict[str, Any]:
    """Write the slim checkpoint of `run_dir`'s finished training and its catalogue entry."""
    path = run_dir / CHECKPOINT
    data = load_file(path)
    if not own_checkpoint(data):
        raise ExportError(f"{path} is not a training checkpoint of this project")
    checked_own(data, str(path), data.get("method"))
    config, step = data["train_config"], int(data["step"])
    total = config["steps"] + (config.get("finetune_steps") or 0)
    if step < total:
        raise ExportError(f"{path} stopped at step {step} of {total}: finish the training first (--resume)")
    commits = data.get("git_commits") or [commit or data.get("git_commit", "unknown")]
    method = data["method"]
    target = out_dir / f"{method}_{name}.pth"
    out_dir.mkdir(parents=True, exist_ok=True)
    trained_on = data.get("trained_on") or trained_on or "unrecorded"
    atomic_save(slim_checkpoint(data, commits, trained_on), target)
    size = target.stat().st_size
    if size > MAX_SHIPPED_BYTES:
        target.unlink()
        raise ExportError(f"{target.name} would be {size / 2**20:.1f} MiB, over the 25 MiB limit")
    entry = {
        "method": method,
        "name": name,
        "filename": f"{out_dir.name}/{target.name}",
        "sha256": file_digest(target),
        "bytes": size,
        "licence": SHIPPED_LICENCE,
        "description": (
            f"{method} width {config['width']} at {config['size']} px, {step} steps of the "
            f"{config['profile']} profile on {config['dataset']}: CPU-scale weights trained by this suite"
        ),
        "training_command": training_command(config, data.get("cpu_threads")),
        "corpus_digest": corpus_manifest_digest(config["dataset"]),
        "git_commits": commits,
        "trained_on": trained_on,
        "deviations": config.get("deviations", []),
        "final_validation": final_validation(data.get("validation")),
    }
    write_catalogue_entry(out_dir / SHIPPED_CATALOGUE, entry)
    return entry


def write_catalogue_entry(path: Path, entry: dict[str, Any]) -> None:
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries = [e for e in entries if (e["method"], e["name"]) != (entry["method"], entry["name"])]
    entries = sorted([*entries, entry], key=lambda e: (e["method"], e["name"]))
    atomic_write_text(path, json.dumps(entries, indent=1) + "\n")
