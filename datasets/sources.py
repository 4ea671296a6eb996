"""The one table of data sources: `data_source('demo' | 'folder:PATH' | 'paris' | 'places', root,
split)` says which images a data set's split holds, in which order and under which ids, for every
reader: the eager and lazy test loaders (`load_test_set`), the release crop
(datasets/release_crop.py) and training (datasets/training.py). Ids are made once here
(images.unique_ids: a.png and a.jpg get ids a.png and a.jpg, never both a)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import DataNotFoundError
from bench.datasets.demo import DEMO_PHOTOS, DEMO_TRAIN_PHOTOS, load_demo
from bench.datasets.images import (
    TestSet,
    broken_links,
    crops_from_files,
    display_name,
    list_images,
    unique_ids,
)
from bench.datasets.lazy import lazy_crops_from_files

DATASETS = ("demo", "folder:PATH", "paris", "places")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSource:
    """One split of one data set: demo photographs by name (root None) or image files below root."""

    name: str  # the test set's name: demo, folder:<folder name>, paris, places
    root: Path | None
    items: tuple  # photograph names (demo) or image paths, in the order every reader uses
    description: str

    @property
    def ids(self) -> list[str]:
        return list(self.items) if self.root is None else unique_ids(list(self.items), self.root)


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


def demo_source(data_root: str | Path | None, split: str) -> DataSource:
    """The test photographs, or (train) the scikit-image photographs disjoint from them."""
    if split == "val":
        raise DataNotFoundError("the demo data set has no validation split; give folder:PATH")
    names = tuple(DEMO_PHOTOS) if split == "test" else DEMO_TRAIN_PHOTOS
    return DataSource("demo", None, names, "photographs shipped with scikit-image and scikit-learn")


def folder_source(given: str, split: str) -> DataSource:
    """Every image below the folder, whatever the split."""
    if not given.strip():
        raise DataNotFoundError("--dataset folder: needs a path, e.g. folder:~/photos")
    folder = Path(given).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder {folder} does not exist")
    files = list_images(folder)
    if not files:
        raise DataNotFoundError(f"image folder {folder} holds no image (.jpg, .jpeg, .png, .webp, .bmp)")
    description = f"{len(files)} files of {display_name(folder)}"
    return DataSource(f"folder:{display_name(folder.name)}", folder, tuple(files), description)


def paris_source(data_root: str | Path | None, split: str) -> DataSource:
    from bench.datasets.paris import split_files

    root, files = split_files(resolve_data_root(data_root), split)
    return DataSource("paris", root, tuple(files), f"Paris StreetView {split} split ({len(files)} files)")


def places_source(data_root: str | Path | None, split: str) -> DataSource:
    from bench.datasets.places import CATEGORIES, category_files

    root, per_category = category_files(resolve_data_root(data_root), split)
    files = tuple(path for category in CATEGORIES for path in per_category[category])
    description = f"Places365-standard, 10 LBAM categories, {split} split ({len(files)} files)"
    return DataSource("places", root, files, description)


SOURCES: dict[str, Callable[[str | Path | None, str], DataSource]] = {
    "demo": demo_source,
    "paris": paris_source,
    "places": places_source,
}


def data_source(spec: str, data_root: str | Path | None = None, split: str = "test") -> DataSource:
    """The images of `spec`'s split (the table above; 'folder:PATH' is every image below PATH)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if spec.startswith("folder:"):
        return folder_source(spec.removeprefix("folder:"), split)
    if spec not in SOURCES:
        raise DataNotFoundError(f"unknown data set {spec!r}; use one of {', '.join(DATASETS)}")
    return SOURCES[spec](data_root, split)


def load_test_set(spec: str, data_root: str | Path | None = None, size: int = 256) -> TestSet:
    """The test split of a data set, as deterministic size×size uint8 crops (short side → size,
    centre crop); a folder is read lazily, so memory does not grow with it."""
    source = data_source(spec, data_root, "test")
    if source.root is None:
        return load_demo(size, list(source.items))
    files = list(source.items)
    if spec.startswith("folder:"):
        description = f"{source.description}; short side → {size}, centre crop"
        test_set = lazy_crops_from_files(source.name, files, source.root, size, description)
        test_set.skipped = broken_links(source.root) + test_set.skipped
    else:
        test_set = crops_from_files(source.name, files, source.root, size, source.description)
    if len(test_set) == 0:
        reasons = "; ".join(f"{name}: {why}" for name, why in test_set.skipped[:5])
        raise DataNotFoundError(f"no usable image in {spec} ({reasons})")
    return test_set


__all__ = ["DataNotFoundError", "DataSource", "TestSet", "data_source", "load_test_set", "resolve_data_root"]
