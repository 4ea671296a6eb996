"""Training data: an index-addressed stream of (image crop, mask) pairs.

Item i is a pure function of (seed, i): epoch e = i // n visits the n training images in the
permutation default_rng([seed, e]); its crop, flip and mask come from default_rng([seed, 1, i]).
A run resumed at step k therefore sees exactly the items it would have seen, and ranks under
DistributedSampler(shuffle=False) see disjoint items.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from bench.core.errors import DataNotFoundError
from bench.datasets.demo import _skimage
from bench.datasets.images import ImageReadError, read_rgb
from bench.datasets.masks import MaskSet, free_form_mask, random_shape_mask
from bench.datasets.sources import data_source

ImageSource = Callable[[], np.ndarray]
# How a photo becomes a training image: "crop" (LBAM Sec. 4.1 and its release: short side resized,
# random size² crop, horizontal flip) or "squash" (the community PConv's train.py + places2.py:
# torchvision Resize((size, size)) of the whole photo, PIL bilinear, no crop, no flip).
DATA_READINGS = ("crop", "squash")


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


def squash(rgb: np.ndarray, size: int) -> np.ndarray:
    """The community PConv's reading: the whole photo to size×size as torchvision's
    Resize((size, size)) does on the 8-bit PIL image it opens (bilinear, aspect ratio not kept)."""
    as_uint8 = Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    return np.asarray(as_uint8.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


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
        crop_scale_max: float = 1.0,
        free_form_fraction: float = 0.0,
        reading: str = "crop",
    ) -> None:
        if not sources:
            raise DataNotFoundError("no training images")
        self.sources, self.size, self.resize_short, self.seed = sources, size, resize_short, seed
        self.start, self.length = start, length
        self.mask_folder, self.mask_folder_fraction = mask_folder, mask_folder_fraction
        self.crop_scale_max, self.free_form_fraction = crop_scale_max, free_form_fraction
        if reading not in DATA_READINGS:
            raise ValueError(f"unknown data reading {reading!r}; use one of {', '.join(DATA_READINGS)}")
        self.reading = reading
        # every prepared image stays in memory while that is under ~2 GB (float32, 16:9 at most)
        cache_size = len(sources) if len(sources) * resize_short**2 * 16 / 9 * 12 < 2e9 else 0
        self._prepared = lru_cache(maxsize=cache_size)(self._prepare)

    def __len__(self) -> int:
        return self.length

    def _prepare(self, source_index: int) -> np.ndarray:
        if self.reading == "squash":
            return squash(self.sources[source_index](), self.size)
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
        """Draws from default_rng([seed, 1, index]) in this order: the crop window's scale (only when
        crop_scale_max > 1), its position, the flip, the mask folder (only with one), free-form
        (only when free_form_fraction > 0); so the older streams are unchanged. The squash reading
        draws no window and no flip."""
        index = self.start + item
        rng = np.random.default_rng([self.seed, 1, index])
        image = self._image(index)
        crop = image if self.reading == "squash" else self._window(image, rng)
        if self.mask_folder is not None and rng.random() < self.mask_folder_fraction:
            mask = self.mask_folder.masks[int(rng.integers(len(self.mask_folder)))]
        elif self.free_form_fraction > 0 and rng.random() < self.free_form_fraction:
            mask = free_form_mask(self.seed, index, self.size)
        else:
            mask = random_shape_mask(self.seed, index, self.size)
        image_t = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float()
        return image_t.clamp(0, 1), torch.from_numpy(np.ascontiguousarray(mask))[None].float()

    def _window(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        window = self.size
        if self.crop_scale_max > 1:  # a window of size·s, s log-uniform in [1, scale_max], resized down
            largest = min(self.crop_scale_max, min(h, w) / self.size)
            window = min(min(h, w), round(self.size * math.exp(rng.uniform(0, math.log(largest)))))
        top, left = int(rng.integers(0, h - window + 1)), int(rng.integers(0, w - window + 1))
        crop = image[top : top + window, left : left + window]
        if window != self.size:
            crop = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return crop[:, ::-1] if rng.random() < 0.5 else crop
