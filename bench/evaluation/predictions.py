"""Predictions made elsewhere, scored under this suite's protocol: `--methods predictions:PATH`.

PATH holds one image per (test image, mask) pair named `<image_id>__<mask_id>.png` (also .bmp,
.tif, .tiff), as `--save-outputs` writes them: any code's outputs, at the test crop size, RGB,
8 or 16 bit. The file is the method's output; the harness composites and scores it as any other.
Missing, unreadable and mis-sized files are listed before anything is scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from bench.core.errors import MethodError
from bench.datasets.images import ImageReadError, read_rgb
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

    def file_of(self, image_id: str, mask_id: str) -> Path | None:
        for suffix in PREDICTION_SUFFIXES:
            path = self.folder / prediction_name(image_id, mask_id, suffix)
            if path.is_file():
                return path
        return None

    def problems(self, pairs: list[tuple[str, str]], size: int) -> list[str]:
        """Every pair whose file is missing, unreadable or not size×size, one line each."""
        found = []
        for image_id, mask_id in pairs:
            path = self.file_of(image_id, mask_id)
            if path is None:
                found.append(f"missing: {prediction_name(image_id, mask_id)}")
                continue
            try:
                with Image.open(path) as image:
                    width, height = image.size
            except Exception as error:  # PIL raises many types for broken files
                found.append(f"unreadable: {path.name} ({error})")
                continue
            if (width, height) != (size, size):
                found.append(f"mis-sized: {path.name} is {width}×{height}, expected {size}×{size}")
        return found

    def select_pairs(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def read(self, image_id: str, mask_id: str, shape: tuple[int, int]) -> np.ndarray:
        path = self.file_of(image_id, mask_id)
        if path is None:
            missing = prediction_name(image_id, mask_id)
            raise MethodError(f"{self.name}: no prediction {missing} in {self.folder}")
        try:
            rgb = read_rgb(path)
        except ImageReadError as error:
            raise MethodError(f"{self.name}: {error}") from error
        if rgb.shape[:2] != shape:
            found, expected = f"{rgb.shape[1]}×{rgb.shape[0]}", f"{shape[1]}×{shape[0]}"
            raise MethodError(f"{self.name}: {path.name} is {found}, expected {expected}")
        return rgb

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
