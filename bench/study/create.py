"""`python -m bench.study create RUN`: a study folder from a run saved with --save-outputs.

The run's test images and masks are rebuilt from its run.json (the same code as bench.run), and
every chosen composite is checked against them (its known pixels must equal the image's), so the
inputs shown are the ones the methods saw. Test pairs are chosen with a generator seeded by
`--seed`, spread over the hole-ratio buckets in turn and over distinct images while there are
any. The input is shown as the paper's figures show it: the holes white. Every image is decoded
and written again as a bare PNG (IHDR, IDAT, IEND: no text, time or colour chunks) under a random
id, with one fixed file time, so nothing but its pixels tells the images apart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.core.files import read_json, write_json
from bench.core.records import read_scores
from bench.core.vocabulary import BUCKET_ORDER
from bench.study.design import MODES, STUDY_FORMAT, StudyError, make_trials, new_asset_id

FIXED_FILE_TIME = 946_684_800  # 2000-01-01T00:00:00Z: every asset gets this modification time


@dataclass
class CreateConfig:
    run: Path
    out: Path
    methods: list[str]
    images: int = 30
    seed: int = 0
    mode: str = "best-of-n"
    trials_per_voter: int | None = None  # default: every trial (best-of-n), one per image (pairs)
    title: str = "Which result looks most plausible?"


def read_run_config(run: Path) -> Any:
    from bench.evaluation.config import RunConfig
    from bench.evaluation.run_folder import read_stored_run

    stored = read_stored_run(run)
    if stored is None:
        raise StudyError(f"{run} is not a run folder (no run.json)")
    # only the data, masks and pairing are needed: no weights or devices of the machine that ran it
    known = {f.name for f in dataclasses.fields(RunConfig)} - {"checkpoints", "predictions", "weights_dir"}
    config = RunConfig(**{**{k: v for k, v in stored["config"].items() if k in known}, "device": "cpu"})
    if not config.save_outputs:
        raise StudyError(f"{run} was run without --save-outputs; run it again with --save-outputs")
    return config


def available_pairs(run: Path, methods: list[str]) -> list[tuple[str, str, str]]:
    """(image_id, mask_id, bucket) scored for every method and with every method's output saved."""
    from bench.evaluation.harness import output_path

    scores = read_scores(run / "scores.csv")
    missing = [m for m in methods if m not in set(scores["method"])]
    if missing:
        found = ", ".join(sorted(set(scores["method"])))
        raise StudyError(f"{run} has no results of {', '.join(missing)} (it has: {found})")
    rows = scores[scores.method.isin(methods)][["method", "image_id", "mask_id", "bucket"]].drop_duplicates()
    counts = rows.groupby(["image_id", "mask_id", "bucket"]).method.nunique()
    complete = [key for key, n in counts.items() if n == len(methods)]
    return [
        key for key in sorted(complete) if all(output_path(run, m, key[0], key[1]).is_file() for m in methods)
    ]


def choose_pairs(pairs: list[tuple[str, str, str]], count: int, seed: int) -> list[tuple[str, str, str]]:
    """`count` pairs, the buckets taken in turn, each bucket's pairs in a seeded random order,
    preferring images not chosen yet."""
    if len(pairs) < count:
        raise StudyError(f"the run has {len(pairs)} test pairs with every method's output; asked for {count}")
    rng = random.Random(seed)
    by_bucket: dict[str, list[tuple[str, str, str]]] = {}
    for pair in pairs:
        by_bucket.setdefault(pair[2], []).append(pair)
    queues = [rng.sample(v, k=len(v)) for _, v in sorted(by_bucket.items(), key=lambda kv: bucket_key(kv[0]))]
    chosen: list[tuple[str, str, str]] = []
    used: set[str] = set()
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                fresh = [p for p in queue if p[0] not in used]
                pick = fresh[0] if fresh else queue[0]
                queue.remove(pick)
                chosen.append(pick)
                used.add(pick[0])
    return chosen


def bucket_key(bucket: str) -> tuple[int, str]:
    return (BUCKET_ORDER.get(bucket, len(BUCKET_ORDER)), bucket)


def write_asset(pixels: np.ndarray, folder: Path) -> str:
    """A bare PNG of uint8 H×W×3 pixels under a fresh opaque id."""
    asset = new_asset_id()
    path = folder / f"{asset}.png"
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB").save(path, format="PNG")
    os.utime(path, (FIXED_FILE_TIME, FIXED_FILE_TIME))
    return asset


def input_with_holes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The paper's figures show the input with its holes white."""
    return np.where(mask[..., None] >= 0.5, image, 255).astype(np.uint8)


def read_output(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def pair_assets(config: CreateConfig, run_config: Any, test_set, mask_set, pair, folder: Path) -> dict:
    from bench.evaluation.harness import output_path

    image_id, mask_id, bucket = pair
    image = test_set.images[test_set.image_ids.index(image_id)]
    mask = mask_set.masks[mask_set.mask_ids.index(mask_id)]
    assets = {}
    for method in config.methods:
        path = output_path(config.run, method, image_id, mask_id)
        output = read_output(path)
        known = mask >= 0.5
        if output.shape != image.shape or np.abs(output[known].astype(int) - image[known]).max() > 1:
            raise StudyError(
                f"{path} does not match the run's test image and mask (its known pixels differ); "
                "the run's data or masks changed since it was run"
            )
        assets[method] = write_asset(output, folder)
    return {
        "image_id": image_id,
        "mask_id": mask_id,
        "bucket": bucket,
        "input": write_asset(input_with_holes(image, mask), folder),
        "assets": assets,
    }


def check_config(config: CreateConfig) -> None:
    if config.mode not in MODES:
        raise StudyError(f"--mode must be one of {', '.join(MODES)}, got {config.mode!r}")
    if len(set(config.methods)) != len(config.methods) or len(config.methods) < 2:
        raise StudyError("--methods needs at least two different methods")
    if config.images < 1:
        raise StudyError("--images must be at least 1")
    if config.out.exists() and any(config.out.iterdir()):
        raise StudyError(f"{config.out} exists and is not empty; choose a new --out")


def create_study(config: CreateConfig) -> Path:
    """Write study.json and assets/ into config.out; returns the study.json path."""
    from bench.evaluation.session import build_mask_set, build_test_set

    check_config(config)
    run_config = read_run_config(config.run)
    chosen = choose_pairs(available_pairs(config.run, config.methods), config.images, config.seed)
    test_set, mask_set = build_test_set(run_config), build_mask_set(run_config)
    folder = config.out / "assets"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [pair_assets(config, run_config, test_set, mask_set, p, folder) for p in chosen]
    trials = make_trials(config.mode, pairs, config.methods)
    per_voter = config.trials_per_voter or (len(trials) if config.mode == "best-of-n" else len(pairs))
    study = {
        "format": STUDY_FORMAT,
        "title": config.title,
        "mode": config.mode,
        "methods": config.methods,
        "seed": config.seed,
        "trials_per_voter": min(per_voter, len(trials)),
        "trials": [t.as_dict() for t in trials],
        "source_run": str(config.run.resolve()),
        "dataset": run_config.dataset,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(config.out / "study.json", study)
    register_study(config.run, config.out)
    return config.out / "study.json"


def register_study(run: Path, study: Path) -> None:
    """List the study in RUN/studies.json, so the run's report shows its results once computed."""
    path = run / "studies.json"
    known = read_json(path).get("studies", []) if path.is_file() else []
    write_json(path, {"studies": sorted({*known, str(study.resolve())})})
