"""Training data: an index-addressed stream of (image crop, mask) pairs.

Item i is a pure function of (seed, i): epoch e = i // n visits the n training images in the
permutation default_rng([seed, e]); its crop, flip and mask come from default_rng([seed, 1, i]).
A run resumed at step k therefore sees exactly the items it would have seen, and ranks under
DistributedSampler(shuffle=False) see disjoint items.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from bench.core.errors import DataNotFoundError
from bench.datasets.demo import _skimage
from bench.datasets.images import ImageReadError, read_rgb
from bench.datasets.masks import MaskSet, random_shape_mask
from bench.datasets.sources import data_source

ImageSource = Callable[[], np.ndarray]


def _file_source(path: Path) -> ImageSource:
    return lambda: read_rgb(path)


def _photo_source(name: str) -> ImageSource:
    load = _skimage(name)

    def rgb() -> np.ndarray:
        data = load().astype(np.float32)
        data = data / (65535.0 if data.max() > 255 else 255.0)
        return np.repeat(data[..., None], 3, axis=2) if data.ndim == 2 else data[..., :3]

    return rgb


def training_sources(
    dataset: str, data_root: str | Path | None = None
) -> tuple[list[str], list[ImageSource]]:
    """(ids, loaders) of the training split of the table of data sources (datasets/sources.py):
    demo = scikit-image photos disjoint from the demo test photos; folder:PATH = every image
    below PATH; paris/places = their training splits. Ids are the image paths."""
    source = data_source(dataset, data_root, "train")
    if source.root is None:
        return list(source.items), [_photo_source(name) for name in source.items]
    if not source.items:
        raise DataNotFoundError(f"no training image found for {dataset}")
    return [str(p) for p in source.items], [_file_source(p) for p in source.items]


def resize_short_side(rgb: np.ndarray, short: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)


class TrainingStream(Dataset):
    """Items start … start + length − 1 of the stream; each is (image 3×S×S, mask 1×S×S)."""

    def __init__(
        self,
        sources: list[ImageSource],
        size: int,
        resize_short: int,
        seed: int,
        start: int,
        length: int,
        mask_folder: MaskSet | None = None,
        mask_folder_fraction: float = 0.4,
    ) -> None:
        if not sources:
            raise DataNotFoundError("no training images")
        self.sources, self.size, self.resize_short, self.seed = sources, size, resize_short, seed
        self.start, self.length = start, length
        self.mask_folder, self.mask_folder_fraction = mask_folder, mask_folder_fraction
        cache_size = len(sources) if len(sources) <= 64 else 0
        self._prepared = lru_cache(maxsize=cache_size)(self._prepare)

    def __len__(self) -> int:
        return self.length

    def _prepare(self, source_index: int) -> np.ndarray:
        return resize_short_side(self.sources[source_index](), self.resize_short)

    def _image(self, index: int) -> np.ndarray:
        n = len(self.sources)
        order = np.random.default_rng([self.seed, index // n]).permutation(n)
        for attempt in range(n):  # an unreadable file gives way to the next one in the order
            source = int(order[(index % n + attempt) % n])
            try:
                return self._prepared(source)
            except ImageReadError as error:
                warnings.warn(f"training image skipped: {error}", stacklevel=2)
        raise DataNotFoundError("no readable training image")

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.start + item
        rng = np.random.default_rng([self.seed, 1, index])
        image = self._image(index)
        h, w = image.shape[:2]
        top, left = int(rng.integers(0, h - self.size + 1)), int(rng.integers(0, w - self.size + 1))
        crop = image[top : top + self.size, left : left + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if self.mask_folder is not None and rng.random() < self.mask_folder_fraction:
            mask = self.mask_folder.masks[int(rng.integers(len(self.mask_folder)))]
        else:
            mask = random_shape_mask(self.seed, index, self.size)
        image_t = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float()
        return image_t.clamp(0, 1), torch.from_numpy(np.ascontiguousarray(mask))[None].float()
