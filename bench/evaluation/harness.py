"""The evaluation loop: every method on every (test image, mask) pair, scored and timed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.core.files import safe_name
from bench.core.records import LATENCY_COLUMNS, SCORE_COLUMNS, CsvAppender, completed_items
from bench.core.vocabulary import BUCKET_ORDER, METRICS, MetricProtocol
from bench.datasets.images import TestSet
from bench.datasets.masks import MaskSet
from bench.evaluation.metrics import score_batch
from bench.methods.base import Method, composite


@dataclass
class Pair:
    image_index: int
    mask_index: int


def all_pairs(test_set: TestSet, mask_set: MaskSet) -> list[Pair]:
    """Every test image with every mask (the full cross product), image-major."""
    return [Pair(i, m) for i in range(len(test_set)) for m in range(len(mask_set))]


def sample_pairs(test_set: TestSet, mask_set: MaskSet, per_bucket: int) -> list[Pair]:
    """Pairs shown in the qualitative grid: per bucket its first mask on `per_bucket` images,
    taking different images for different buckets where there are enough."""
    chosen = []
    for bucket, order in sorted(BUCKET_ORDER.items(), key=lambda item: item[1]):
        masks = [m for m, label in enumerate(mask_set.buckets) if label == bucket]
        if not masks:
            continue
        for j in range(min(per_bucket, len(test_set))):
            chosen.append(Pair((order * per_bucket + j) % len(test_set), masks[0]))
    return chosen


def to_tensor(image: np.ndarray, mask: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    image_t = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
    mask_t = torch.from_numpy(mask)[None, None].float().to(device)
    return image_t, mask_t


def save_png(tensor: torch.Tensor, path: Path) -> None:
    array = (tensor[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def sample_dir(run_dir: Path, test_set: TestSet, mask_set: MaskSet, pair: Pair) -> Path:
    bucket = BUCKET_ORDER[mask_set.buckets[pair.mask_index]]
    name = f"{test_set.image_ids[pair.image_index]}__{mask_set.mask_ids[pair.mask_index]}"
    return run_dir / "samples" / f"bucket{bucket}" / safe_name(name)


def save_sample_inputs(run_dir: Path, test_set: TestSet, mask_set: MaskSet, pairs: list[Pair]) -> None:
    for pair in pairs:
        folder = sample_dir(run_dir, test_set, mask_set, pair)
        image, mask = to_tensor(
            test_set.images[pair.image_index], mask_set.masks[pair.mask_index], torch.device("cpu")
        )
        save_png(image, folder / "ground_truth.png")
        save_png(composite(image, mask, torch.ones_like(image)), folder / "input.png")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate_method(
    method: Method,
    test_set: TestSet,
    mask_set: MaskSet,
    run_dir: Path,
    protocol: MetricProtocol,
    lpips_model: torch.nn.Module | None = None,
    samples: list[Pair] | None = None,
    progress: bool = True,
    batch_size: int = 1,
) -> int:
    """Score `method` on every pair not yet stored in run_dir, appending records as they come;
    returns how many pairs were stored before (and so not recomputed). With batch_size > 1 the
    pairs go through the method in batches and each pair's latency is the batch time / its size."""
    name, device = method.name, method.device
    done = completed_items(run_dir)
    samples_wanted = {(p.image_index, p.mask_index) for p in samples or []}
    pairs = all_pairs(test_set, mask_set)
    todo = [
        pair
        for pair in pairs
        if (name, test_set.image_ids[pair.image_index], mask_set.mask_ids[pair.mask_index]) not in done
    ]
    reused = len(pairs) - len(todo)
    if not todo:
        return reused
    if lpips_model is not None:
        lpips_model.to(device)

    def tensors(pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        loaded = [
            to_tensor(test_set.images[p.image_index], mask_set.masks[p.mask_index], device) for p in pairs
        ]
        return torch.cat([image for image, _ in loaded]), torch.cat([mask for _, mask in loaded])

    with (
        torch.inference_mode(),
        CsvAppender(run_dir / "scores.csv", SCORE_COLUMNS) as scores_out,
        CsvAppender(run_dir / "latency.csv", LATENCY_COLUMNS) as latency_out,
        tqdm(total=len(todo), desc=f"{name:>10}", unit="img", disable=not progress, leave=True) as bar,
    ):
        method.predict(*tensors(todo[:batch_size]))  # warm-up: not timed, not stored
        for first in range(0, len(todo), batch_size):
            batch = todo[first : first + batch_size]
            image, mask = tensors(batch)
            synchronize(device)
            start = time.perf_counter()
            output = method.predict(image, mask)
            synchronize(device)
            milliseconds = (time.perf_counter() - start) * 1000 / len(batch)
            scores = score_batch(image, mask, output, protocol, lpips_model)
            for row, pair in enumerate(batch):
                image_id = test_set.image_ids[pair.image_index]
                mask_id = mask_set.mask_ids[pair.mask_index]
                if (pair.image_index, pair.mask_index) in samples_wanted:
                    folder = sample_dir(run_dir, test_set, mask_set, pair)
                    filled = composite(
                        image[row : row + 1], mask[row : row + 1], output[row : row + 1].clamp(0, 1)
                    )
                    save_png(filled, folder / f"{safe_name(name)}.png")
                base = {
                    "method": name,
                    "dataset": test_set.name,
                    "image_id": image_id,
                    "mask_id": mask_id,
                    "bucket": mask_set.buckets[pair.mask_index],
                    "hole_ratio": round(mask_set.hole_ratios[pair.mask_index], 6),
                }
                scores_out.append({**base, "metric": m, "value": float(scores[m][row])} for m in METRICS)
                latency_out.append(
                    [
                        {
                            "method": name,
                            "image_id": image_id,
                            "mask_id": mask_id,
                            "ms": round(milliseconds, 4),
                            "device": str(device),
                        }
                    ]
                )
            bar.update(len(batch))
            bar.set_postfix(psnr=f"{float(scores['psnr'].mean()):.2f}", ms=f"{milliseconds:.0f}")
    return reused
