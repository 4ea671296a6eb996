"""Shared plumbing of the classical (per-image, uint8) fills."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bench.methods.base import Method


class PerImageUint8Method(Method):
    """Runs `fill_uint8(rgb HxWx3 uint8, hole HxW uint8 with 1 = hole)` on each image."""

    def fill_uint8(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        rgb = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        rgb = rgb.permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().cpu()[:, 0] < 0.5).numpy().astype(np.uint8)
        filled = [self.fill_uint8(np.ascontiguousarray(r), h) for r, h in zip(rgb, holes, strict=True)]
        out = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).float() / 255.0
        return out.to(image.device)
