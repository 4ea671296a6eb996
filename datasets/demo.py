"""The built-in demo data set: real photographs shipped inside scikit-image and scikit-learn.

Only loaders that read files inside the installed packages are used (never the network).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.datasets.images import TestSet, test_crop


def _skimage(name: str, part: int | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        data = getattr(skimage.data, name)()
        return data[part] if part is not None else data

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

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
