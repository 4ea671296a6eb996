"""Lazy test sets: the eager loader's crops, ids, skips and hash, with memory that does not grow."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from bench.datasets import sources as datasets
from bench.datasets.images import crops_from_files, list_images
from bench.datasets.lazy import LazyImages, lazy_crops_from_files


def write_photos(folder: Path, count: int, shape: tuple[int, int] = (90, 120)) -> None:
    rng = np.random.default_rng(count)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(folder / f"p{k:03d}.png")


def test_lazy_set_equals_the_eager_one(tmp_path):
    write_photos(tmp_path / "sub", 5)
    Image.new("RGB", (5, 5)).save(tmp_path / "tiny.png")
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    files = list_images(tmp_path)
    eager = crops_from_files("f", files, tmp_path, 64)
    lazy = lazy_crops_from_files("f", files, tmp_path, 64)
    assert lazy.image_ids == eager.image_ids and lazy.skipped == eager.skipped
    assert lazy.sha256 == eager.sha256 and lazy.images.shape == eager.images.shape
    for k in (3, 0, 4, 3):
        np.testing.assert_array_equal(lazy.images[k], eager.images[k])
    assert isinstance(datasets.load_test_set(f"folder:{tmp_path}", size=64).images, LazyImages)


def test_lazy_images_keep_only_the_last_few(tmp_path):
    write_photos(tmp_path, 12)
    images = LazyImages(list_images(tmp_path), tmp_path, 32, keep=3)
    assert len(list(images)) == 12 and list(images._cache) == [9, 10, 11]


def peak_bytes_while_streaming(folder: Path) -> int:
    tracemalloc.start()
    test_set = lazy_crops_from_files("f", list_images(folder), folder, 128)
    for image in test_set.images:
        image.sum()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    write_photos(tmp_path / "few", 10, (160, 160))
    write_photos(tmp_path / "many", 40, (160, 160))
    few, many = peak_bytes_while_streaming(tmp_path / "few"), peak_bytes_while_streaming(tmp_path / "many")
    crop = 128 * 128 * 3
    assert many < few + 4 * crop  # eager: 30 more crops
