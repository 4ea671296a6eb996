"""Places365-standard (Zhou et al. 2017) with the LBAM protocol (paper Sec. 4.1 and supplement):
the 10 categories below, at most 5,000 training images each; each category's validation images
are split in half into validation and test by `splits.split_validation_test`.

Note: Places365-standard has 100 validation images per category (the paper speaks of 1,000), so
the rule gives 50 validation / 50 test per category on the standard release.
"""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import DataNotFoundError
from bench.datasets.images import IMAGE_SUFFIXES
from bench.datasets.splits import split_validation_test

CATEGORIES = (
    "apartment_building_outdoor",
    "beach",
    "house",
    "ocean",
    "sky",
    "throne_room",
    "tower",
    "tundra",
    "valley",
    "wheat_field",
)
TRAIN_PER_CATEGORY = 5000

LAYOUT = """expected one of these layouts under <data-root>/places365 (or <data-root>):
  (a) folders per category:  train/<category>/*.jpg  and  val/<category>/*.jpg
      (<category> as 'beach', 'b/beach', 'apartment_building/outdoor' or 'apartment_building_outdoor')
  (b) the official file lists: categories_places365.txt, places365_val.txt, val_256/ (or val_large/),
      places365_train_standard.txt and data_256/ (or data_large/) for training
Download Places365-standard from http://places2.csail.mit.edu/download.html, then pass --data-root
or set BENCH_DATA_ROOT."""


def category_key(name: str) -> str:
    """'/a/apartment_building/outdoor', 'a/apartment_building/outdoor' → 'apartment_building_outdoor'."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if len(parts) > 1 and len(parts[0]) == 1:
        parts = parts[1:]
    return "_".join(parts).replace("-", "_")


def find_root(data_root: Path) -> Path:
    for candidate in (data_root / "places365", data_root / "places", data_root):
        if (candidate / "val").is_dir() or (candidate / "places365_val.txt").is_file():
            return candidate
    raise DataNotFoundError(f"Places365 not found under {data_root}.\n{LAYOUT}")


def _files_from_folders(split_dir: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in split_dir.rglob("*"):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            key = category_key(path.parent.relative_to(split_dir).as_posix())
            if key in CATEGORIES:
                found.setdefault(key, []).append(path)
    return found


def _files_from_lists(root: Path, list_name: str, image_dirs: tuple[str, ...]) -> dict[str, list[Path]]:
    names = {}
    for line in (root / "categories_places365.txt").read_text().splitlines():
        if line.strip():
            name, index = line.rsplit(maxsplit=1)
            names[int(index)] = category_key(name)
    image_dir = next((root / d for d in image_dirs if (root / d).is_dir()), None)
    if image_dir is None:
        raise DataNotFoundError(f"none of {', '.join(image_dirs)} exists in {root}.\n{LAYOUT}")
    found: dict[str, list[Path]] = {}
    for line in (root / list_name).read_text().splitlines():
        if not line.strip():
            continue
        relative, index = line.rsplit(maxsplit=1)
        key = names.get(int(index))
        if key in CATEGORIES:
            found.setdefault(key, []).append(image_dir / relative.lstrip("/"))
    return found


def category_files(data_root: Path, split: str) -> tuple[Path, dict[str, list[Path]]]:
    """Files per category for split 'train', 'val' or 'test' under the protocol above."""
    root = find_root(data_root)
    source = "train" if split == "train" else "val"
    if (root / source).is_dir():
        found = _files_from_folders(root / source)
    elif source == "val" and (root / "places365_val.txt").is_file():
        found = _files_from_lists(root, "places365_val.txt", ("val_256", "val_large"))
    elif source == "train" and (root / "places365_train_standard.txt").is_file():
        found = _files_from_lists(root, "places365_train_standard.txt", ("data_256", "data_large"))
    else:
        raise DataNotFoundError(f"no {source} images for Places365 under {root}.\n{LAYOUT}")
    missing = [c for c in CATEGORIES if not found.get(c)]
    if missing:
        raise DataNotFoundError(
            f"Places365 {source} under {root} lacks the categories: {', '.join(missing)}.\n{LAYOUT}"
        )
    chosen = {}
    for category in CATEGORIES:
        files = sorted(found[category])
        if split == "train":
            chosen[category] = files[:TRAIN_PER_CATEGORY]
        else:
            validation, test = split_validation_test(files)
            chosen[category] = validation if split == "val" else test
    return root, chosen
