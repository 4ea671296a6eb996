"""OpenCV fills: Telea 2004 (`telea`) and Navier–Stokes, Bertalmio et al. 2001 (`ns`), via cv2.inpaint."""

from __future__ import annotations

import cv2
import numpy as np

from bench.core.errors import MethodError
from bench.methods.classical import PerImageUint8Method
from bench.methods.registry import register

_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class OpenCVFill(PerImageUint8Method):
    def __init__(self, name: str, device: str = "cpu", radius: float = 3.0) -> None:
        super().__init__(device)
        if radius <= 0:
            raise MethodError(f"{name}: radius must be positive, got {radius}")
        self.name = name
        self.flag = _FLAGS[name]  # kept apart from the name, which a run relabels (telea@r5)
        self.radius = float(radius)

    def fill_uint8(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        # cv2.inpaint fills the non-zero pixels of its mask; channels are filled independently.
        return cv2.inpaint(rgb, hole, self.radius, self.flag)

    def options(self) -> dict[str, float]:
        return {"radius": self.radius}


@register("telea")
def create_telea(device: str = "cpu", radius: float = 3.0) -> OpenCVFill:
    return OpenCVFill("telea", device, radius)


@register("ns")
def create_ns(device: str = "cpu", radius: float = 3.0) -> OpenCVFill:
    return OpenCVFill("ns", device, radius)
