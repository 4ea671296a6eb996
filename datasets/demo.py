"""The built-in demo data set: real photographs shipped inside scikit-image and scikit-learn.

Only loaders that read files inside the installed packages are used (never the network).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.datasets.images import TestSet, test_crop


def _skimage(name: str, part: int | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        data = getattr(skimage.data, name)()
        return data[part] if part is not None else data

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    """sklearn.datasets.load_sample_image(filename) (np.asarray of the PIL image), read from the
    installed package's folder without importing scikit-learn (≈ 1–2 s of imports)."""

    def load() -> np.ndarray:
        spec = importlib.util.find_spec("sklearn")  # finds the package without running it
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("the demo photos china and flower need scikit-learn installed")
        path = Path(spec.submodule_search_locations[0]) / "datasets" / "images" / filename
        with Image.open(path) as image:
            return np.asarray(image)

    return load


DEMO_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "motorcycle_left": _skimage("stereo_motorcycle", 0),
    "motorcycle_right": _skimage("stereo_motorcycle", 1),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}


# Photographs shipped inside scikit-image that are not among the demo test photos.
DEMO_TRAIN_PHOTOS = (
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "camera",
    "coins",
    "moon",
    "brick",
    "grass",
    "gravel",
    "text",
    "page",
    "cell",
    "clock",
)


def demo_photo(name: str) -> np.ndarray:
    """A demo photograph as float32 H×W×3 in [0,1]."""
    return DEMO_PHOTOS[name]().astype(np.float32) / 255.0


def load_demo(size: int = 256, names: list[str] | None = None) -> TestSet:
    names = names or list(DEMO_PHOTOS)
    images = np.stack([test_crop(demo_photo(name), size) for name in names])
    return TestSet(
        "demo",
        images,
        list(names),
        "photographs shipped with scikit-image and scikit-learn; "
        f"short side → {size} (bicubic/area), centre crop",
    )
