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
from bench.datasets.demo import demo_photo
from bench.datasets.images import ImageReadError, TestSet, display_name, read_rgb

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


def load_release_test_set(spec: str, data_root: str | Path | None, size: int, seed: int) -> TestSet:
    """The test split of `spec` (the files and ids of the table of data sources, as
    load_test_set's) through release_test_crop; unreadable files are skipped and listed."""
    from bench.datasets.sources import data_source

    source = data_source(spec, data_root, "test")
    images, ids, skipped = [], [], []
    for position, (item, image_id) in enumerate(zip(source.items, source.ids, strict=True)):
        try:
            rgb = demo_photo(item) if source.root is None else read_rgb(item)
        except (ImageReadError, OSError) as error:
            skipped.append((display_name(item.relative_to(source.root)), str(error)))
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
    return TestSet(source.name, np.stack(images), ids, description, skipped)
