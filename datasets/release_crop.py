"""The LBAM release's test-image pipeline, seeded (`--test-crop release`; docs/evaluation_protocols.md).

The release's test loader (data/basicFunction.py `ImageTransform`, used by test_random_batch.py)
squashes every image to 350×350 with PIL's bicubic resize (aspect ratio not kept), takes a random
256×256 crop (torchvision RandomCrop: offsets 0..94) and flips it horizontally with probability
0.5. Here the crop offsets and the flip of image i are drawn from numpy.random.default_rng([seed,
i]) instead of an unseeded generator. Other sizes scale the 350 by size/256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.core.errors import DataNotFoundError
from bench.datasets.demo import DEMO_PHOTOS, demo_photo
from bench.datasets.images import ImageReadError, TestSet, display_name, list_images, read_rgb, unique_ids

RELEASE_LOAD_SIZE = 350  # test_random_batch.py --loadSize


def release_load_size(size: int) -> int:
    return round(RELEASE_LOAD_SIZE * size / 256)


def release_test_crop(rgb: np.ndarray, size: int, seed: int, index: int) -> np.ndarray:
    """float32 H×W×3 in [0,1] → uint8 size×size×3: squash to 350² (PIL bicubic), crop at seeded
    offsets in 0..350−size (both ends included), flip left-right with probability 0.5."""
    load = release_load_size(size)
    as_uint8 = (np.clip(rgb, 0.0, 1.0) * 255).round().astype(np.uint8)
    squashed = np.asarray(Image.fromarray(as_uint8).resize((load, load), Image.BICUBIC))
    rng = np.random.default_rng([seed, index])
    top, left = (int(v) for v in rng.integers(0, load - size, size=2, endpoint=True))
    crop = squashed[top : top + size, left : left + size]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def _sources(spec: str, data_root: str | Path | None) -> tuple[str, Path | None, list]:
    """(name, root, items): items are demo names or image paths, in the order load_test_set uses."""
    from bench.datasets.paris import split_files
    from bench.datasets.places import CATEGORIES, category_files
    from bench.datasets.sources import resolve_data_root

    if spec == "demo":
        return "demo", None, list(DEMO_PHOTOS)
    if spec.startswith("folder:"):
        folder = Path(spec.removeprefix("folder:")).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"image folder {folder} does not exist")
        return f"folder:{folder.name}", folder, list_images(folder)
    if spec == "paris":
        root, files = split_files(resolve_data_root(data_root), "test")
        return "paris", root, files
    if spec == "places":
        root, per_category = category_files(resolve_data_root(data_root), "test")
        return "places", root, [path for category in CATEGORIES for path in per_category[category]]
    raise DataNotFoundError(f"unknown data set {spec!r}; use demo, folder:PATH, paris or places")


def load_release_test_set(spec: str, data_root: str | Path | None, size: int, seed: int) -> TestSet:
    """The test split of `spec` (same files and ids as load_test_set) through release_test_crop;
    unreadable files are skipped and listed."""
    name, root, items = _sources(spec, data_root)
    images, ids, skipped = [], [], []
    names = list(items) if root is None else unique_ids(items, root)  # the ids of load_test_set
    for position, (item, image_id) in enumerate(zip(items, names, strict=True)):
        try:
            rgb = demo_photo(item) if root is None else read_rgb(item)
        except ImageReadError as error:
            skipped.append((display_name(item.relative_to(root)), str(error)))
            continue
        images.append(release_test_crop(rgb, size, seed, position))
        ids.append(image_id)
    if not images:
        raise DataNotFoundError(f"no usable image in {spec} ({len(skipped)} skipped)")
    load = release_load_size(size)
    description = (
        f"{spec}, the release's test pipeline: squashed to {load}×{load} (PIL bicubic), "
        f"{size}×{size} crop and horizontal flip drawn from seed {seed}"
    )
    return TestSet(name, np.stack(images), ids, description, skipped)
