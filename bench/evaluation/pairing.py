"""Which (test image, mask) pairs a run scores: `--pairing cross | per-image | by-name`.

- `cross`: every image with every mask (images × masks pairs), image-major.
- `per-image`: each image gets K masks of every bucket, drawn without replacement from that
  bucket's masks by a generator seeded with (seed, SHA-256 of the image id): the fixed image–mask
  pairs that later papers publish (one mask per 10 % bucket per image is common). images × 4 × K
  pairs; an image's masks do not depend on the other images or on their order.
- `by-name`: image `x.*` with mask `x.*` (object removal on real photos, as LBAM's Figure 6;
  released test pairs). An image id, or its last path component, matches a mask id equal to it,
  or equal to it plus an image extension (masks `a.png` and `a.jpg`: both match, and are refused);
  unpaired images and masks are listed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from bench.core.vocabulary import BUCKET_ORDER
from bench.datasets.images import IMAGE_SUFFIXES, TestSet
from bench.datasets.masks import MaskSet

PAIRINGS = ("cross", "per-image", "by-name")


class PairingError(ValueError):
    """Pairs cannot be formed as asked; the message says why."""


@dataclass
class Pairing:
    """The chosen pairs as (image index, mask index) and the files left without a partner."""

    name: str
    pairs: list[tuple[int, int]]
    unpaired_images: list[str] = field(default_factory=list)
    unpaired_masks: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pairs": len(self.pairs),
            "unpaired_images": self.unpaired_images,
            "unpaired_masks": self.unpaired_masks,
        }


def cross_pairs(test_set: TestSet, mask_set: MaskSet) -> list[tuple[int, int]]:
    return [(i, m) for i in range(len(test_set)) for m in range(len(mask_set))]


def image_seed(seed: int, image_id: str) -> list[int]:
    """A generator seed of (seed, image id) that no other image id shares (SHA-256, 4 words)."""
    digest = hashlib.sha256(image_id.encode()).digest()
    return [seed, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))]


def per_image_pairs(
    test_set: TestSet, mask_set: MaskSet, masks_per_bucket: int, seed: int
) -> list[tuple[int, int]]:
    """K masks of each bucket per image, drawn without replacement, in bucket order."""
    if masks_per_bucket < 1:
        raise PairingError(f"--masks-per-image must be at least 1, got {masks_per_bucket}")
    by_bucket: dict[str, list[int]] = {}
    for index, label in enumerate(mask_set.buckets):
        by_bucket.setdefault(label, []).append(index)
    ordered = sorted(by_bucket, key=lambda label: BUCKET_ORDER.get(label, len(BUCKET_ORDER)))
    for label in ordered:
        if len(by_bucket[label]) < masks_per_bucket:
            raise PairingError(
                f"per-image pairing: bucket {label} holds {len(by_bucket[label])} masks, fewer than "
                f"--masks-per-image {masks_per_bucket}; raise --masks-per-bucket"
            )
    pairs = []
    for i, image_id in enumerate(test_set.image_ids):
        rng = np.random.default_rng(image_seed(seed, image_id))
        for label in ordered:
            chosen = rng.choice(len(by_bucket[label]), size=masks_per_bucket, replace=False)
            pairs.extend((i, by_bucket[label][int(c)]) for c in chosen)
    return pairs


def mask_names(mask_ids: list[str]) -> dict[str, list[int]]:
    """The names each mask answers to: its id, and its id without an image extension (masks
    `a.png` and `a.jpg` keep their extensions as ids, and both answer to `a`)."""
    names: dict[str, list[int]] = {}
    for m, mask_id in enumerate(mask_ids):
        path = PurePosixPath(mask_id)
        keys = {mask_id}
        if path.suffix.lower() in IMAGE_SUFFIXES:
            keys.add(str(path.with_suffix("")))
        for key in keys:
            names.setdefault(key, []).append(m)
    return names


def image_names(image_id: str) -> list[str]:
    """The names an image id looks for, in order: itself, its last path component, and both
    without an image extension (images `a.png` and `a.jpg` keep theirs as ids)."""
    path = PurePosixPath(image_id)
    names = [image_id, path.name]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        names += [str(path.with_suffix("")), path.stem]
    return list(dict.fromkeys(names))


def by_name_pairs(test_set: TestSet, mask_set: MaskSet) -> Pairing:
    """Image id `x` (or `folder/x`) with the mask answering to `x`; a name two images share, or
    one image's name that several masks answer to, is refused with the files named."""
    masks = mask_names(mask_set.mask_ids)
    pairs, unpaired_images, used = [], [], set()
    for i, image_id in enumerate(test_set.image_ids):
        name = next((n for n in image_names(image_id) if n in masks), None)
        if name is None:
            unpaired_images.append(image_id)
            continue
        if len(masks[name]) > 1:
            shown = ", ".join(repr(mask_set.mask_ids[m]) for m in masks[name][:4])
            raise PairingError(
                f"by-name pairing: test image {image_id!r} matches {len(masks[name])} masks ({shown}); "
                "keep one mask per image name"
            )
        mask = masks[name][0]
        if mask in used:
            raise PairingError(
                f"by-name pairing: two test images are named {name!r} (the second: {image_id!r}); "
                "its mask is ambiguous"
            )
        used.add(mask)
        pairs.append((i, mask))
    unpaired_masks = [mask_id for m, mask_id in enumerate(mask_set.mask_ids) if m not in used]
    if not pairs:
        raise PairingError(
            "by-name pairing: no test image has a mask of the same name "
            f"(images e.g. {test_set.image_ids[:3]}, masks e.g. {mask_set.mask_ids[:3]})"
        )
    return Pairing("by-name", pairs, unpaired_images, unpaired_masks)


def choose_pairs(
    pairing: str, test_set: TestSet, mask_set: MaskSet, masks_per_image: int = 1, seed: int = 0
) -> Pairing:
    if pairing == "cross":
        return Pairing(pairing, cross_pairs(test_set, mask_set))
    if pairing == "per-image":
        return Pairing(pairing, per_image_pairs(test_set, mask_set, masks_per_image, seed))
    if pairing == "by-name":
        return by_name_pairs(test_set, mask_set)
    raise PairingError(f"unknown pairing {pairing!r}; use one of {', '.join(PAIRINGS)}")


def sample_pairs_among(
    pairs: list[tuple[int, int]], mask_set: MaskSet, per_bucket: int
) -> list[tuple[int, int]]:
    """The qualitative grid's pairs, taken from the scored ones: per bucket the first
    `per_bucket` pairs with images not shown yet (any image when every one was)."""
    chosen: list[tuple[int, int]] = []
    shown: set[int] = set()
    for label in sorted(set(mask_set.buckets), key=lambda b: BUCKET_ORDER.get(b, len(BUCKET_ORDER))):
        in_bucket = [p for p in pairs if mask_set.buckets[p[1]] == label]
        fresh = [p for p in in_bucket if p[0] not in shown]
        picked = (fresh + [p for p in in_bucket if p not in fresh])[:per_bucket]
        chosen.extend(picked)
        shown.update(p[0] for p in picked)
    return chosen
