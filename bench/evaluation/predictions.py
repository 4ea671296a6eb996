"""Predictions made elsewhere, scored under this suite's protocol: `--methods predictions:PATH`.

PATH holds one image per (test image, mask) pair named `<image_id>__<mask_id>.png` (also .bmp,
.tif, .tiff), as `--save-outputs` writes them: any code's outputs, at the test crop size, RGB,
8 or 16 bit integers, or float in [0, 1]. The file is the method's output; the harness composites
and scores it as any other. Its pixels are read as stored: an EXIF orientation is never applied
(photos follow it, method outputs never do). Missing, unreadable, mis-sized, greyscale,
translucent, out-of-range files, 8-bit values in a 16-bit file, two files for one pair (a.png and
a.tif) and pairs whose file names coincide are listed before anything is scored.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from bench.core.errors import MethodError
from bench.datasets.images import MAX_PIXELS, display_name
from bench.methods.base import Method

PREDICTION_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")  # lossless formats only


def prediction_name(image_id: str, mask_id: str, suffix: str = ".png") -> str:
    return f"{image_id}__{mask_id}{suffix}"


class Predictions(Method):
    """Reads the output of each pair from a folder; `select_pairs` names the pairs of the next
    `predict` call (the harness does so as it loads a batch)."""

    learned = False

    def __init__(self, name: str, folder: str | Path, device: str = "cpu") -> None:
        super().__init__(device)
        self.name = name
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise MethodError(f"{name}: predictions folder {self.folder} does not exist")
        self.pairs: list[tuple[str, str]] = []

    def files_of(self, image_id: str, mask_id: str) -> list[Path]:
        return [
            path
            for suffix in PREDICTION_SUFFIXES
            if (path := self.folder / prediction_name(image_id, mask_id, suffix)).is_file()
        ]

    def file_of(self, image_id: str, mask_id: str) -> Path | None:
        found = self.files_of(image_id, mask_id)
        return found[0] if len(found) == 1 else None

    def problems(self, pairs: list[tuple[str, str]], size: int) -> list[str]:
        """Every pair whose file is missing, ambiguous, or cannot be read as a size×size RGB
        output, one line each; pairs whose file names coincide (image `a__b` with mask `c`, image
        `a` with mask `b__c`) first."""
        owners: dict[str, list[tuple[str, str]]] = {}
        for pair in pairs:
            owners.setdefault(prediction_name(*pair), []).append(pair)
        found = [
            f"ambiguous: {display_name(name)} is the file of {len(shared)} pairs ({shared[0]}, {shared[1]})"
            for name, shared in owners.items()
            if len(shared) > 1
        ]
        for image_id, mask_id in pairs:
            files = self.files_of(image_id, mask_id)
            if len(files) != 1:
                shown = ", ".join(display_name(f.name) for f in files)
                missing = f"missing: {display_name(prediction_name(image_id, mask_id))}"
                found.append(f"ambiguous: {shown} are all files of one pair" if files else missing)
                continue
            try:
                read_prediction(files[0], (size, size))
            except MethodError as error:
                found.append(str(error))
        return found

    def select_pairs(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def read(self, image_id: str, mask_id: str, shape: tuple[int, int]) -> np.ndarray:
        path = self.file_of(image_id, mask_id)
        if path is None:
            missing = display_name(prediction_name(image_id, mask_id))
            raise MethodError(f"{self.name}: no single prediction {missing} in {self.folder}")
        return read_prediction(path, shape, self.name)

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        if len(self.pairs) != image.shape[0]:
            raise MethodError(
                f"{self.name}: {image.shape[0]} images but {len(self.pairs)} pairs selected; "
                "call select_pairs with the batch's (image_id, mask_id) first"
            )
        shape = (image.shape[2], image.shape[3])
        arrays = [self.read(image_id, mask_id, shape) for image_id, mask_id in self.pairs]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(image.device)

    def options(self) -> dict[str, str]:
        return {"folder": str(self.folder)}


def decoded_pixels(path: Path) -> np.ndarray:
    """The stored pixels as they are (cv2.IMREAD_UNCHANGED never applies an EXIF orientation),
    the size checked from the header first."""
    from PIL import Image  # only for the header

    name = display_name(path.name)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as error:  # PIL raises many types for broken files
        if path.suffix.lower() not in (".tif", ".tiff"):  # PIL cannot read float RGB TIFFs, OpenCV can
            raise MethodError(f"unreadable: {name} ({str(error).replace(str(path), path.name)})") from error
        width = height = 0  # OpenCV's own pixel limit applies
    if width * height > MAX_PIXELS:
        raise MethodError(f"unreadable: {name} is {width}×{height}, over the limit of {MAX_PIXELS:,} pixels")
    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise MethodError(f"unreadable: {name} (OpenCV cannot decode it)")
    return data


def read_prediction(path: Path, shape: tuple[int, int], method: str = "") -> np.ndarray:
    """A prediction file as float32 H×W×3 RGB in [0,1], refused (MethodError, one line) unless it is
    an opaque RGB image of `shape` holding 8-bit, 16-bit or [0, 1] float values."""
    data, name = decoded_pixels(path), display_name(path.name)
    prefix = f"{method}: " if method else ""

    def refuse(why: str) -> MethodError:
        return MethodError(f"{prefix}{why}: {name}")

    if data.shape[:2] != shape:
        found, expected = f"{data.shape[1]}×{data.shape[0]}", f"{shape[1]}×{shape[0]}"
        raise MethodError(f"{prefix}mis-sized: {name} is {found}, expected {expected}")
    if data.ndim == 2 or data.shape[2] < 3:
        raise refuse("greyscale (a method's output must be RGB)")
    if data.shape[2] == 4:
        opaque = np.iinfo(data.dtype).max if data.dtype.kind == "u" else 1.0
        if (data[..., 3] != opaque).any():
            raise refuse("translucent (its alpha channel is not opaque everywhere)")
    rgb = np.ascontiguousarray(data[..., 2::-1])  # BGR(A) → RGB
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if rgb.dtype == np.uint16:
        if rgb.max() <= 255 and rgb.max() > 0:
            raise refuse("16-bit file holding only values up to 255 (8-bit values stored as 16-bit?)")
        return rgb.astype(np.float32) / 65535.0
    if rgb.dtype.kind == "f":
        if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 1:
            low, high = float(rgb.min()), float(rgb.max())  # NaN shows as nan
            raise refuse(f"float values outside [0, 1] (from {low:.4g} to {high:.4g}; never clipped)")
        return rgb.astype(np.float32)
    raise refuse(f"unsupported sample type {rgb.dtype} (use 8 or 16 bit integers or float in [0, 1])")
