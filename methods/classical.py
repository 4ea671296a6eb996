"""Shared plumbing of the classical (per-image, uint8) fills."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bench.methods.base import Method

WARM_UP_SIDE = 32


class PerImageUint8Method(Method):
    """Runs `fill_uint8(rgb HxWx3 uint8, hole HxW uint8 with 1 = hole)` on each image."""

    def fill_uint8(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def warm_up(self, image: Tensor, mask: Tensor) -> None:
        """A corner of at most 32×32 pixels with a square hole: these fills keep nothing between
        calls that depends on the size, so this loads their code as a full-size call would, which
        for PatchMatch costs 0.25–0.6 s and leaves the next call's time as it was."""
        side = min(WARM_UP_SIDE, *image.shape[-2:])
        hole = torch.ones_like(mask[:1, :, :side, :side])
        hole[..., side // 4 : side - side // 4, side // 4 : side - side // 4] = 0
        self.predict(image[:1, :, :side, :side], hole)

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        rgb = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        rgb = rgb.permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().cpu()[:, 0] < 0.5).numpy().astype(np.uint8)
        filled = [self.fill_uint8(np.ascontiguousarray(r), h) for r, h in zip(rgb, holes, strict=True)]
        out = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).float() / 255.0
        return out.to(image.device)
