"""Test data: `load_test_set('demo' | 'folder:PATH' | 'paris' | 'places')` and masks."""

from __future__ import annotations

import os
from pathlib import Path

from bench.core.errors import DataNotFoundError
from bench.datasets.demo import load_demo
from bench.datasets.images import TestSet, broken_links, display_name, list_images
from bench.datasets.lazy import lazy_crops_from_files
from bench.datasets.paris import load_paris
from bench.datasets.places import load_places

DATASETS = ("demo", "folder:PATH", "paris", "places")


def resolve_data_root(data_root: str | Path | None) -> Path:
    value = data_root or os.environ.get("BENCH_DATA_ROOT")
    if not value:
        raise DataNotFoundError(
            "no data root given: pass --data-root DIR or set BENCH_DATA_ROOT=DIR "
            "(the folder that holds paris/ or places365/)"
        )
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"data root {root} does not exist")
    return root


def load_test_set(spec: str, data_root: str | Path | None = None, size: int = 256) -> TestSet:
    """The test split of a data set, as deterministic size×size uint8 crops."""
    if spec == "demo":
        return load_demo(size)
    if spec.startswith("folder:"):
        given = spec.removeprefix("folder:")
        if not given.strip():
            raise DataNotFoundError("--dataset folder: needs a path, e.g. folder:~/photos")
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"image folder {folder} does not exist")
        files = list_images(folder)
        if not files:
            raise DataNotFoundError(f"image folder {folder} holds no image (.jpg, .jpeg, .png, .webp, .bmp)")
        test_set = lazy_crops_from_files(  # read when scored: memory does not grow with the folder
            f"folder:{display_name(folder.name)}",
            files,
            folder,
            size,
            f"{len(files)} files of {display_name(folder)}; short side → {size}, centre crop",
        )
        test_set.skipped = broken_links(folder) + test_set.skipped
    elif spec == "paris":
        test_set = load_paris(resolve_data_root(data_root), size)
    elif spec == "places":
        test_set = load_places(resolve_data_root(data_root), size)
    else:
        raise DataNotFoundError(f"unknown data set {spec!r}; use one of {', '.join(DATASETS)}")
    if len(test_set) == 0:
        reasons = "; ".join(f"{name}: {why}" for name, why in test_set.skipped[:5])
        raise DataNotFoundError(f"no usable image in {spec} ({reasons})")
    return test_set


__all__ = ["DataNotFoundError", "TestSet", "load_test_set", "resolve_data_root"]
