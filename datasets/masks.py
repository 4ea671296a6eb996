"""Mask generators, the bucketed test mask set, and the mask-folder loader.

Masks follow the paper's M: float32 H×W, 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from bench.core.errors import MaskError
from bench.core.vocabulary import BUCKET_ORDER, BUCKETS, OUTSIDE, bucket_label, bucket_of
from bench.datasets.images import MAX_PIXELS, display_name, unique_ids

MASK_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".webp")

MaskGenerator = Callable[[int, int, int], np.ndarray]


def hole_ratio(mask: np.ndarray) -> float:
    return float(1.0 - mask.mean())


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


RELEASE_KEPT_KNOWN_PIXELS = 61_250  # generateMask.py keeps a 256² mask when its known area is below this
RANDOM_SHAPE_MAX_DRAWS = 1000


def release_crop_offsets(rng: np.random.Generator, canvas: int, size: int) -> tuple[int, int]:
    """(top, left) as generateMask.py draws them: random.randint(1, canvas − size), both ends
    included (1..94 at 256), so row and column 0 of the canvas are never used."""
    top, left = rng.integers(1, canvas - size, size=2, endpoint=True)
    return int(top), int(left)


def random_shape_mask(seed: int, index: int, size: int = 256, density: float = 0.25) -> np.ndarray:
    """The official LBAM release's random-shape masks (generateMask.py; docs/masks_and_ablations.md):
    uniform noise on an 8×8 grid (int(0.025·350)), bilinearly upsampled to 350×350, hole where the
    value < density; a size×size crop at offsets drawn in 1..350−size (random.randint(1, 94)) is
    kept when its hole area is in (20 %, 30 %), else a second crop is kept. generateMask.py then
    discards masks whose known area is ≥ 61,250 px of 256² (hole ≤ 6.54 %) and draws again; so
    does this. Sizes other than 256 scale the 350 canvas and the 61,250 px by size/256."""
    rng = _rng(seed, index)
    canvas = round(350 * size / 256)
    cells = max(2, int(0.025 * canvas))
    for _draw in range(RANDOM_SHAPE_MAX_DRAWS):
        noise = torch.from_numpy(rng.random((1, 1, cells, cells), dtype=np.float64))
        smooth = F.interpolate(noise, size=(canvas, canvas), mode="bilinear", align_corners=False)
        hole = smooth[0, 0].numpy() < density
        for _attempt in range(2):
            top, left = release_crop_offsets(rng, canvas, size)
            crop = hole[top : top + size, left : left + size]
            if 0.2 < crop.mean() < 0.3:
                break
        known_pixels = int(crop.size - crop.sum())
        if known_pixels * 256 * 256 < RELEASE_KEPT_KNOWN_PIXELS * size * size:
            return (~crop).astype(np.float32)
    raise MaskError(
        f"random_shape: no mask with a hole above 6.54 % in {RANDOM_SHAPE_MAX_DRAWS} draws "
        f"(density {density}, size {size})"
    )


def free_form_mask(seed: int, index: int, size: int = 256) -> np.ndarray:
    """Free-form brush strokes of DeepFill v2 (Yu et al. 2019, `brush_stroke_mask`): 1–3 strokes of
    4–11 vertices, width 12–40 px at 256 px (scaled with `size`), with round joints."""
    rng = _rng(seed, index)
    scale = size / 256
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    average_radius = math.sqrt(2 * size * size) / 8
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for _stroke in range(int(rng.integers(1, 4))):
        vertices_count = int(rng.integers(4, 12))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = [
            2 * math.pi - rng.uniform(angle_min, angle_max)
            if i % 2 == 0
            else rng.uniform(angle_min, angle_max)
            for i in range(vertices_count)
        ]
        vertices = [(int(rng.integers(0, size)), int(rng.integers(0, size)))]
        for angle in angles:
            radius = np.clip(rng.normal(average_radius, average_radius // 2), 0, 2 * average_radius)
            x = np.clip(vertices[-1][0] + radius * math.cos(angle), 0, size)
            y = np.clip(vertices[-1][1] + radius * math.sin(angle), 0, size)
            vertices.append((int(x), int(y)))
        width = max(1, int(rng.uniform(12, 40) * scale))
        draw.line(vertices, fill=255, width=width)
        for x, y in vertices:
            draw.ellipse((x - width // 2, y - width // 2, x + width // 2, y + width // 2), fill=255)
    return (np.asarray(canvas) == 0).astype(np.float32)


GENERATORS: dict[str, MaskGenerator] = {
    "random_shape": random_shape_mask,
    "free_form": free_form_mask,
}


@dataclass
class MaskSet:
    """Test masks with their measured hole ratios and buckets."""

    source: str
    masks: np.ndarray  # K×H×W float32, 1 = known
    mask_ids: list[str]
    hole_ratios: list[float]
    buckets: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for mask_id, mask in zip(self.mask_ids, self.masks, strict=True):
            digest.update(mask_id.encode("utf-8", "surrogateescape"))
            digest.update(np.packbits(mask < 0.5).tobytes())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.mask_ids)


def bucketed_mask_set(
    generator: str, per_bucket: int, seed: int = 0, size: int = 256, max_candidates: int = 20000
) -> MaskSet:
    """Exactly `per_bucket` masks in each of BUCKETS, by rejection sampling.

    A candidate for a bucket (low, high] draws a target ratio t uniformly in (low, high) and is the
    union of successive generator draws, grown until its hole ratio exceeds t; it is kept when the
    ratio is at most `high`, else rejected. Draw j of candidate c for bucket b is
    generator(seed, index=(b·max_candidates + c)·64 + j); t comes from the same (seed, index)."""
    if generator not in GENERATORS:
        raise MaskError(f"unknown mask generator {generator!r}; use one of {sorted(GENERATORS)}")
    if per_bucket < 1:
        raise MaskError(f"masks per bucket must be at least 1, got {per_bucket}")
    make = GENERATORS[generator]
    masks, ids, ratios, labels = [], [], [], []
    for b, (low, high) in enumerate(BUCKETS):
        kept = 0
        for candidate in range(max_candidates):
            first_index = (b * max_candidates + candidate) * 64
            target = _rng(seed, first_index, 1).uniform(low, high)
            known = np.ones((size, size), dtype=np.float32)
            for draw in range(64):
                known = known * make(seed, first_index + draw, size)
                if hole_ratio(known) > target:
                    break
            ratio = hole_ratio(known)
            if low < ratio <= high:
                masks.append(known)
                ids.append(f"{generator}-s{seed}-b{b}-c{candidate}")
                ratios.append(ratio)
                labels.append(bucket_label((low, high)))
                kept += 1
                if kept == per_bucket:
                    break
        if kept < per_bucket:
            raise MaskError(
                f"{generator}: only {kept} of {per_bucket} masks found in bucket "
                f"{bucket_label((low, high))} after {max_candidates} candidates"
            )
    return MaskSet(f"generator:{generator}", np.stack(masks), ids, ratios, labels)


def read_mask_file(path: Path, size: int) -> np.ndarray:
    """A mask image (white = hole, as the NVIDIA irregular mask set) as M (1 = known).

    Resized with nearest neighbour to size×size and thresholded at 0.5; raises MaskError when the
    file is unreadable, not square-compatible with the target, not binary, or empty."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            image = Image.open(path)
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise MaskError(f"{image.width}×{image.height} pixels is over the limit of {MAX_PIXELS:,}")
            image.load()
            gray = np.asarray(image.convert("L") if image.mode not in ("L", "I;16", "I") else image)
    except Exception as error:  # PIL raises many types for broken files
        raise MaskError(f"{display_name(path.name)}: unreadable mask ({error})") from error
    # 16-bit masks are scaled by 1/65535; 8-bit masks holding only 0 and 1 mean 1 = hole
    peak = gray.max()
    gray = gray.astype(np.float64) / (65535.0 if peak > 255 else 1.0 if peak == 1 else 255.0)
    h, w = gray.shape
    if h != w:
        raise MaskError(f"{path.name}: wrong size {w}×{h}; masks must be square (target {size}×{size})")
    intermediate = np.mean((gray > 0.05) & (gray < 0.95))
    if intermediate > 0.01:
        raise MaskError(
            f"{path.name}: not a binary mask ({intermediate:.1%} of pixels are neither black nor "
            "white); save masks as lossless PNG with white = hole"
        )
    if (h, w) != (size, size):
        resized = Image.fromarray((gray * 255).astype(np.uint8)).resize((size, size), Image.NEAREST)
        gray = np.asarray(resized, dtype=np.float64) / 255.0
    known = (gray < 0.5).astype(np.float32)
    if known.all():
        raise MaskError(f"{path.name}: empty mask (no hole pixel)")
    if not known.any():
        raise MaskError(f"{path.name}: the mask covers the whole image (no known pixel)")
    return known


def load_mask_folder(
    folder: str | Path, size: int = 256, per_bucket: int | None = None, buckets_only: bool = True
) -> MaskSet:
    """Masks of a folder (NVIDIA irregular mask layout). The hole ratio is measured per file; masks
    outside the four buckets are left out (kept, labelled OUTSIDE, with buckets_only=False, as for
    training); with `per_bucket`, the first masks by file name of each bucket are kept. Bad files
    are skipped and listed in `skipped`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MaskError(f"mask folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MASK_SUFFIXES)
    if not files:
        raise MaskError(f"mask folder {folder} holds no mask image ({', '.join(MASK_SUFFIXES)})")
    masks, ids, ratios, labels, skipped = [], [], [], [], []
    counts: dict[str, int] = {}
    for path, mask_id in zip(files, unique_ids(files, folder, "mask"), strict=True):
        try:
            known = read_mask_file(path, size)
        except (MaskError, OSError) as error:
            skipped.append((display_name(path.name), display_name(str(error))))
            continue
        label = bucket_of(hole_ratio(known))
        if label is None and buckets_only:
            skipped.append((mask_id, f"hole ratio {hole_ratio(known):.3f} is outside every bucket"))
            continue
        label = label or OUTSIDE
        if per_bucket is not None and counts.get(label, 0) >= per_bucket:
            continue
        counts[label] = counts.get(label, 0) + 1
        masks.append(known)
        ids.append(mask_id)
        ratios.append(hole_ratio(known))
        labels.append(label)
    if not masks:
        wanted = " with a hole ratio in (0.1, 0.5]" if buckets_only else ""
        raise MaskError(f"mask folder {folder}: no usable mask{wanted} ({len(skipped)} skipped)")
    if per_bucket is not None:
        check_bucket_counts(folder, counts, per_bucket)
    order = np.argsort([BUCKET_ORDER.get(label, len(BUCKETS)) for label in labels], kind="stable")
    return MaskSet(
        f"folder:{display_name(folder)}",
        np.stack([masks[i] for i in order]),
        [ids[i] for i in order],
        [ratios[i] for i in order],
        [labels[i] for i in order],
        skipped,
    )


def check_bucket_counts(folder: Path, counts: dict[str, int], per_bucket: int) -> None:
    """Refuse a mask folder that cannot fill every bucket with `per_bucket` masks (the report would
    claim a count the run does not have)."""
    short = [f"{b}: {counts.get(b, 0)}" for b in BUCKET_ORDER if counts.get(b, 0) < per_bucket]
    if short:
        raise MaskError(
            f"mask folder {display_name(folder)} has fewer than --masks-per-bucket {per_bucket} masks in "
            f"{len(short)} bucket(s) ({'; '.join(short)}); lower --masks-per-bucket or add masks"
        )
