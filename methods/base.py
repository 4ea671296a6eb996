"""The one method interface: N×3×H×W images in [0,1], N×1×H×W masks with 1 = known, 0 = hole."""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import Tensor

from bench.core.errors import MethodError
from bench.core.tensors import composite, in_chunks  # noqa: F401  (their home was here)


def resolve_device(name: str) -> str:
    """The one device rule: 'auto' is CUDA when a GPU is present, else the CPU; any other name must
    be cpu, cuda or cuda:N of a GPU that exists (a MethodError says which does not)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise MethodError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise MethodError(f"--device {name}: only auto, cpu and cuda[:N] are supported")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MethodError(f"--device {name}: no CUDA device is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MethodError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    return name


def check_inputs(image: Tensor, mask: Tensor) -> None:
    """Raise a ValueError that names the problem when inputs break the interface."""
    if not isinstance(image, Tensor) or not isinstance(mask, Tensor):
        raise TypeError("image and mask must be torch tensors")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be N×3×H×W, got shape {tuple(image.shape)}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N×1×H×W, got shape {tuple(mask.shape)}")
    if mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}")
    if image.dtype != torch.float32 or mask.dtype != torch.float32:
        raise ValueError(f"image and mask must be float32, got {image.dtype} and {mask.dtype}")
    if image.numel() and (image.min() < 0 or image.max() > 1):
        raise ValueError("image values must lie in [0, 1]")
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("mask must be binary: 1 = known pixel, 0 = hole")


class Method(abc.ABC):
    """An inpainting method. Subclasses implement `predict`; `inpaint` composites."""

    name: str = "method"
    learned: bool = False
    trained: bool = True  # learned methods: False until weights are loaded

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @abc.abstractmethod
    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """The method's raw output (N×3×H×W in [0,1]) before known pixels are copied back."""

    def warm_up(self, image: Tensor, mask: Tensor) -> None:
        """One untimed call before the timed ones (the harness's, on its first batch): kernels chosen
        and weights packed for this shape, so that no pair's latency includes them."""
        self.predict(image, mask)

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        check_inputs(image, mask)
        return composite(image, mask, self.predict(image, mask))

    def options(self) -> dict[str, Any]:
        """Every option that changes the output; recorded with the results."""
        return {}

    training: dict[str, Any] | None = None  # how the loaded checkpoint was trained, when known

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "learned": self.learned,
            "options": self.options(),
            "training": self.training,
        }
