"""Validation during training: held-out photos × one random-shape mask per hole-ratio bucket,
scored as the harness scores them (bench.evaluation.metrics.score_batch, per-image protocol,
composite), with Telea's scores on the same pairs as the floor a learned model has to clear.

The rows (step, bucket, psnr, ssim, l1) go to <out>/val_log.csv and into every checkpoint, so a
shipped checkpoint carries its own learning curve and the report can draw it (issue: a run that
does not learn is seen at once)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.core.errors import DataNotFoundError
from bench.core.files import atomic_write_text
from bench.core.vocabulary import BUCKET_ORDER, MetricProtocol
from bench.datasets.images import crops_from_files
from bench.datasets.masks import bucketed_mask_set
from bench.datasets.sources import data_source
from bench.evaluation.metrics import score_batch

VAL_LOG = "val_log.csv"
CURVE_FIELDS = ("step", "bucket", "psnr", "ssim", "l1")
VAL_MASK_SEED = 2019  # fixed: every checkpoint of every run is validated on the same pairs
VAL_BATCH = 4


@dataclass
class ValidationSet:
    name: str
    images: torch.Tensor  # P×3×S×S in [0,1], one row per (image, bucket) pair
    masks: torch.Tensor  # P×1×S×S, 1 = known
    buckets: list[str]
    digest: str


def validation_set(spec: str, size: int, data_root: str | Path | None = None) -> ValidationSet:
    """Every image of the validation split of `spec` (the table of data sources: folder:PATH is
    every image below PATH) with one mask of each bucket."""
    try:
        source = data_source(spec, data_root, "val")
    except DataNotFoundError as error:
        raise DataNotFoundError(
            f"no validation image in {spec} ({error}): fetch the corpus with `python -m bench.corpus "
            "fetch`, or give --val-dataset folder:PATH"
        ) from None
    name = f"val:{source.root.name}" if source.name.startswith("folder:") else f"val:{source.name}"
    test_set = crops_from_files(name, list(source.items), source.root, size)
    masks = bucketed_mask_set("random_shape", 1, VAL_MASK_SEED, size)
    pairs = [(i, k) for i in range(len(test_set)) for k in range(len(masks))]
    images = np.stack([test_set.images[i] for i, _ in pairs]).transpose(0, 3, 1, 2)
    return ValidationSet(
        test_set.name,
        torch.from_numpy(images).float() / 255,
        torch.from_numpy(np.stack([masks.masks[k] for _, k in pairs]))[:, None],
        [masks.buckets[k] for _, k in pairs],
        f"{test_set.sha256[:16]}:{masks.sha256[:16]}",
    )


@torch.no_grad()
def bucket_means(fill, validation: ValidationSet, device: torch.device) -> dict[str, dict[str, float]]:
    """Per-bucket mean PSNR/SSIM/ℓ1 of `fill(image, mask) → raw output` on the validation pairs."""
    scores: dict[str, list[float]] = {name: [] for name in CURVE_FIELDS[2:]}
    for start in range(0, len(validation.buckets), VAL_BATCH):
        image = validation.images[start : start + VAL_BATCH].to(device)
        mask = validation.masks[start : start + VAL_BATCH].to(device)
        scored = score_batch(image, mask, fill(image, mask).float(), MetricProtocol())
        for name in scores:
            scores[name].extend(scored[name].tolist())
    means = {}
    for bucket in BUCKET_ORDER:
        chosen = [i for i, b in enumerate(validation.buckets) if b == bucket]
        means[bucket] = {name: float(np.mean([values[i] for i in chosen])) for name, values in scores.items()}
    return means


def curve_rows(step: int, means: dict[str, dict[str, float]]) -> list[dict[str, float]]:
    return [{"step": step, "bucket": bucket, **values} for bucket, values in means.items()]


def write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CURVE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    atomic_write_text(path, buffer.getvalue())
