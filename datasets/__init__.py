"""Test data: `load_test_set('demo' | 'folder:PATH' | 'paris' | 'places')` and masks."""

from __future__ import annotations

import os
from pathlib import Path

from datasets.demo import load_demo
from datasets.images import TestSet, list_images
from datasets.lazy import lazy_crops_from_files
from datasets.paris import load_paris
from datasets.places import load_places
from datasets.splits import DataNotFoundError

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
        folder = Path(spec.removeprefix("folder:")).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"image folder {folder} does not exist")
        files = list_images(folder)
        if not files:
            raise DataNotFoundError(f"image folder {folder} holds no image (.jpg, .jpeg, .png, .webp, .bmp)")
        test_set = lazy_crops_from_files(  # read when scored: memory does not grow with the folder
            f"folder:{folder.name}",
            files,
            folder,
            size,
            f"{len(files)} files of {folder}; short side → {size}, centre crop",
        )
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
