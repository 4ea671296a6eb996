"""Paris StreetView (Doersch et al. 2012) as distributed by its authors for Context Encoders.

Protocol (LBAM paper Sec. 4.1): the 100 images of `paris_eval_gt/` are the test set; 100
validation images are carved from `paris_train_original/` by `splits.hash_order` (the first
100), the rest train.
"""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import DataNotFoundError
from bench.datasets.images import list_images
from bench.datasets.splits import hash_order

LAYOUT = """expected layout (as distributed by the data set's authors):
  <data-root>/paris/paris_train_original/*.png   (14,900 training images)
  <data-root>/paris/paris_eval_gt/*.png          (100 test images)
The data set is not public: request it from the authors of Doersch et al., 'What makes Paris
look like Paris?' (SIGGRAPH 2012), then pass --data-root or set BENCH_DATA_ROOT."""

VALIDATION_COUNT = 100


def find_root(data_root: Path) -> Path:
    for candidate in (data_root / "paris", data_root / "paris_streetview", data_root):
        if (candidate / "paris_eval_gt").is_dir():
            return candidate
    raise DataNotFoundError(f"Paris StreetView not found under {data_root}.\n{LAYOUT}")


def split_files(data_root: Path, split: str) -> tuple[Path, list[Path]]:
    root = find_root(data_root)
    if split == "test":
        files = list_images(root / "paris_eval_gt")
    else:
        train_dir = root / "paris_train_original"
        if not train_dir.is_dir():
            raise DataNotFoundError(f"{train_dir} is missing.\n{LAYOUT}")
        ordered = hash_order(list_images(train_dir))
        files = ordered[:VALIDATION_COUNT] if split == "val" else ordered[VALIDATION_COUNT:]
        files = sorted(files)
    if not files:
        raise DataNotFoundError(f"Paris StreetView {split} split under {root} holds no image.\n{LAYOUT}")
    return root, files
