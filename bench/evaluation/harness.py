"""The evaluation loop: every method on every (test image, mask) pair, scored and timed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from bench.evaluation.memory import PeakMemory
from bench.evaluation.metrics import score_batch
from bench.evaluation.predictions import prediction_name
from bench.evaluation.sharding import Shard
from bench.evaluation.timing import Timing
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


PNG_COMPRESS_LEVEL = 1  # the same pixels as the default 6 in ≈ 1/4 of the time, files ≈ 1.3× larger


def save_png(tensor: torch.Tensor, path: Path) -> None:
    array = (tensor[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=PNG_COMPRESS_LEVEL)


def sample_dir(run_dir: Path, test_set: TestSet, mask_set: MaskSet, pair: Pair) -> Path:
    bucket = BUCKET_ORDER.get(mask_set.buckets[pair.mask_index], len(BUCKET_ORDER))  # by-name: any ratio
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


@dataclass
class Scoring:
    """What scoring a pair needs besides the pair; shared by the loop and its worker processes."""

    method: Method
    test_set: TestSet
    mask_set: MaskSet
    run_dir: Path
    protocol: MetricProtocol
    lpips_model: torch.nn.Module | None = None
    samples_wanted: frozenset[tuple[int, int]] = frozenset()
    save_outputs: bool = False

    def tensors(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.method.device
        select_pairs = getattr(self.method, "select_pairs", None)  # methods that read files
        if select_pairs is not None:
            ids, mask_ids = self.test_set.image_ids, self.mask_set.mask_ids
            select_pairs([(ids[p.image_index], mask_ids[p.mask_index]) for p in pairs])
        loaded = [
            to_tensor(self.test_set.images[p.image_index], self.mask_set.masks[p.mask_index], device)
            for p in pairs
        ]
        return torch.cat([image for image, _ in loaded]), torch.cat([mask for _, mask in loaded])


@dataclass
class BatchRecords:
    scores: list[dict]
    latency: list[dict]
    milliseconds: float
    psnr: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds: load, method, metrics, records


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Scores on the CPU in one thread: float32 reductions (SSIM's blurs and means) then add in one
    order, so a pair's scores do not depend on how many threads or worker processes the run has
    (they moved by ~5e-7 between 1 and 2 threads). At batch 1 on 256² it is also faster
    (≈ 10 ms against 10–270 ms with 2 threads on a busy 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def score_pairs(scoring: Scoring, batch: list[Pair]) -> BatchRecords:
    """One batch through the method, timed, scored; its record rows (and sample/output PNGs)."""
    method, test_set, mask_set, run_dir = scoring.method, scoring.test_set, scoring.mask_set, scoring.run_dir
    name, device = method.name, method.device
    loading = time.perf_counter()
    image, mask = scoring.tensors(batch)
    memory = PeakMemory(device)
    synchronize(device)
    memory.start()
    start = time.perf_counter()
    output = method.predict(image, mask)
    synchronize(device)
    milliseconds = (time.perf_counter() - start) * 1000 / len(batch)
    peak_mb = memory.stop()
    scoring_started = time.perf_counter()
    with one_thread(device):
        scores = score_batch(image, mask, output, scoring.protocol, scoring.lpips_model)
    records_started = time.perf_counter()
    score_rows, latency_rows = [], []
    for row, pair in enumerate(batch):
        image_id = test_set.image_ids[pair.image_index]
        mask_id = mask_set.mask_ids[pair.mask_index]
        wanted = (pair.image_index, pair.mask_index) in scoring.samples_wanted
        if wanted or scoring.save_outputs:
            filled = composite(image[row : row + 1], mask[row : row + 1], output[row : row + 1].clamp(0, 1))
            if wanted:
                save_png(filled, sample_dir(run_dir, test_set, mask_set, pair) / f"{safe_name(name)}.png")
            if scoring.save_outputs:
                save_png(filled, output_path(run_dir, name, image_id, mask_id))
        base = {
            "method": name,
            "dataset": test_set.name,
            "image_id": image_id,
            "mask_id": mask_id,
            "bucket": mask_set.buckets[pair.mask_index],
            "hole_ratio": round(mask_set.hole_ratios[pair.mask_index], 6),
        }
        score_rows.extend({**base, "metric": m, "value": float(scores[m][row])} for m in METRICS)
        latency_rows.append(
            {
                "method": name,
                "image_id": image_id,
                "mask_id": mask_id,
                "ms": round(milliseconds, 4),
                "device": str(device),
                "peak_mb": round(peak_mb, 3),
            }
        )
    phases = {
        "load": start - loading,
        "method": scoring_started - start,
        "metrics": records_started - scoring_started,
        "records": time.perf_counter() - records_started,
    }
    return BatchRecords(score_rows, latency_rows, milliseconds, float(scores["psnr"].mean()), phases)


def output_path(run_dir: Path, method_name: str, image_id: str, mask_id: str) -> Path:
    """Where --save-outputs stores a composite: outputs/<method>/<image_id>__<mask_id>.png."""
    return run_dir / "outputs" / safe_name(method_name) / prediction_name(image_id, mask_id)


def score_in_process(scoring: Scoring, batches: list[list[Pair]]) -> Iterator[BatchRecords]:
    scoring.method.warm_up(*scoring.tensors(batches[0]))  # not timed, not stored
    for batch in batches:
        yield score_pairs(scoring, batch)


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
    pairs: list[Pair] | None = None,
    save_outputs: bool = False,
    workers: int = 1,
    shard: Shard | None = None,
    timing: Timing | None = None,
) -> int:
    """Score `method` on every pair (default: all_pairs) not yet stored in run_dir, appending
    records as they come; returns how many pairs were stored before (and so not recomputed). With
    batch_size > 1 the pairs go through the method in batches and each pair's latency is the batch
    time / its size. With workers > 1 batches are spread over that many processes; under a shard
    (torchrun) this rank takes its share of the pairs and writes its own record files. `timing`
    collects the per-pair phases (bench.evaluation.timing)."""
    name = method.name
    shard = shard or Shard()
    done = completed_items(run_dir) if shard.done is None else shard.done
    pairs = all_pairs(test_set, mask_set) if pairs is None else pairs
    todo = [
        pair
        for pair in pairs
        if (name, test_set.image_ids[pair.image_index], mask_set.mask_ids[pair.mask_index]) not in done
    ]
    reused = len(pairs) - len(todo)
    todo = shard.share(todo)
    if not todo:
        return reused
    if lpips_model is not None:
        lpips_model.to(method.device)
    wanted = frozenset((p.image_index, p.mask_index) for p in samples or [])
    scoring = Scoring(method, test_set, mask_set, run_dir, protocol, lpips_model, wanted, save_outputs)
    batches = [todo[first : first + batch_size] for first in range(0, len(todo), batch_size)]
    with (
        torch.inference_mode(),
        CsvAppender(run_dir / f"scores{shard.suffix}.csv", SCORE_COLUMNS) as scores_out,
        CsvAppender(run_dir / f"latency{shard.suffix}.csv", LATENCY_COLUMNS) as latency_out,
        tqdm(total=len(todo), desc=f"{name:>10}", unit="img", disable=not progress, leave=True) as bar,
    ):
        if workers > 1 and len(batches) > 1:
            from bench.evaluation.parallel import score_in_workers

            results = score_in_workers(scoring, batches, workers)
        else:
            results = score_in_process(scoring, batches)
        for records in results:
            writing = time.perf_counter()
            scores_out.append(records.scores)
            latency_out.append(records.latency)
            if timing is not None:
                phases = {**records.phases, "write": time.perf_counter() - writing}
                timing.add_pairs(name, len(records.latency), phases)
            bar.update(len(records.latency))
            bar.set_postfix(psnr=f"{records.psnr:.2f}", ms=f"{records.milliseconds:.0f}")
    return reused
