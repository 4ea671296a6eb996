"""GL: Globally and Locally Consistent Image Completion (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017).

The completion network of the paper's Table 1, run with the authors' released Torch7 weights
(satoshiiizuka/siggraph2017_inpainting, CC BY-NC-SA 4.0; methods/gl_torch7.py reads them). The
inference contract is the official inpaint.lua's: RGB in [0,1], sides multiples of 4, hole =
(1 − M) ≥ 0.2 (its masks are 1 = hole), the file's per-channel mean subtracted, hole pixels set to
0, input = image ⊕ hole (4 channels), sigmoid output in [0,1], composited into the holes.
postprocess="poisson" is its `--postproc` (the 2017 default; "none" is the 2020 script's default
and mmagic's): Telea with radius 1 on the 8-bit composite, then cv2.seamlessClone(NORMAL_CLONE)
centred on the bounding box of all holes (official utils.lua for the 8-bit BGR conversions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from bench.core.errors import MethodError
from bench.methods.base import composite
from bench.methods.checkpoints import strict_load
from bench.methods.gl_torch7 import completion_state, read_torch7
from bench.methods.learned import LearnedMethod
from bench.methods.registry import register

POSTPROCESSING = ("none", "poisson")
SIZE_MULTIPLE = 4  # two stride-2 convolutions, two ×2 transposed ones (inpaint.lua rounds to 4)
HOLE_THRESHOLD = 0.2  # inpaint.lua: M:ge(0.2)
UNTRAINED_MEAN = (0.5, 0.5, 0.5)  # random weights only; a .t7 brings its own data.mean

# The paper's Table 1, top to bottom: (type, output channels, kernel, stride, dilation); the
# 4 input channels are RGB and the hole mask, the last layer gives RGB through a sigmoid.
LAYERS = (
    ("conv", 64, 5, 1, 1),
    ("conv", 128, 3, 2, 1),
    ("conv", 128, 3, 1, 1),
    ("conv", 256, 3, 2, 1),
    ("conv", 256, 3, 1, 1),
    ("conv", 256, 3, 1, 1),
    ("conv", 256, 3, 1, 2),
    ("conv", 256, 3, 1, 4),
    ("conv", 256, 3, 1, 8),
    ("conv", 256, 3, 1, 16),
    ("conv", 256, 3, 1, 1),
    ("conv", 256, 3, 1, 1),
    ("deconv", 128, 4, 2, 1),
    ("conv", 128, 3, 1, 1),
    ("deconv", 64, 4, 2, 1),
    ("conv", 32, 3, 1, 1),
    ("conv", 3, 3, 1, 1),
)


@dataclass(frozen=True)
class GLConfig:
    postprocess: str = "none"
    width: float = 1.0  # channel multiplier; 1.0 is the released network (random-weight tests only)

    def __post_init__(self) -> None:
        if self.postprocess not in POSTPROCESSING:
            raise MethodError(f"gl: postprocess must be one of {POSTPROCESSING}, got {self.postprocess!r}")
        if not 0 < self.width <= 4:
            raise MethodError(f"gl: width must be in (0, 4], got {self.width}")


def completion_network(width: float = 1.0) -> nn.Sequential:
    """The official model's module list (Python index i = Lua index i + 1): conv, BN, ReLU per layer;
    the last convolution is followed by a sigmoid only."""
    modules: list[nn.Module] = []
    channels = 4
    for index, (kind, out, kernel, stride, dilation) in enumerate(LAYERS):
        last = index == len(LAYERS) - 1
        out = out if last else max(1, round(out * width))
        if kind == "deconv":
            modules.append(nn.ConvTranspose2d(channels, out, kernel, stride, padding=1))
        else:
            padding = dilation * (kernel - 1) // 2
            modules.append(nn.Conv2d(channels, out, kernel, stride, padding, dilation))
        modules += [nn.Sigmoid()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    return nn.Sequential(*modules)


def to_bgr_bytes(image: Tensor) -> np.ndarray:
    """utils.lua tensor2cvimg: 3×H×W in [0,1] → H×W×3 BGR bytes, ×255 then truncated (Torch's :byte())."""
    return np.ascontiguousarray((image * 255).to(torch.uint8).permute(1, 2, 0).numpy()[:, :, ::-1])


def holes_centre(hole: np.ndarray) -> tuple[int, int]:
    """inpaint.lua's seamlessClone point: the middle of the holes' bounding box, rounded down, (x, y)."""
    rows, cols = np.nonzero(hole)
    return int(cols.min() + (cols.max() - cols.min()) // 2), int(rows.min() + (rows.max() - rows.min()) // 2)


def poisson_postprocess(filled: Tensor, hole: Tensor) -> Tensor:
    """inpaint.lua --postproc on one composite (3×H×W in [0,1]) and its hole map (H×W, 1 = hole)."""
    hole_bytes = hole.to(torch.uint8).numpy() * 255
    if not hole_bytes.any():
        return filled
    source = to_bgr_bytes(filled)
    telea = cv2.inpaint(source, hole_bytes, 1, cv2.INPAINT_TELEA)
    blended = cv2.seamlessClone(source, telea, hole_bytes, holes_centre(hole_bytes), cv2.NORMAL_CLONE)
    return torch.from_numpy(np.ascontiguousarray(blended[:, :, ::-1])).permute(2, 0, 1).float() / 255


class GL(LearnedMethod):
    name = "gl"
    size_multiple = SIZE_MULTIPLE

    def __init__(self, config: GLConfig, device: str = "cpu") -> None:
        super().__init__(config, completion_network(config.width), device)
        self.mean = torch.tensor(UNTRAINED_MEAN, device=self.device).view(1, 3, 1, 1)

    def network_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor]:
        """inpaint.lua: I − mean per channel, hole pixels set to 0, cat(I, M_hole)."""
        self.check_size(image)
        hole = ((1 - mask) >= HOLE_THRESHOLD).to(image.dtype)
        return (torch.cat(((image - self.mean) * (1 - hole), hole), 1),)

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """The sigmoid output; with postprocess="poisson", inpaint.lua's post-processed composite."""
        output = super().predict(image, mask)
        if self.config.postprocess == "none":
            return output
        filled = composite(image, mask, output.to(image.device)).cpu()
        hole = (1 - mask[:, 0]).cpu() >= HOLE_THRESHOLD
        blended = [poisson_postprocess(f, h) for f, h in zip(filled, hole, strict=True)]
        return torch.stack(blended).to(output.device)

    def load_torch7(self, path: Path) -> None:
        state, mean = completion_state(read_torch7(path), self.net, path.name)
        strict_load(self.net, state, f"{path.name} (Torch7 release layout)")
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.trained, self.checkpoint_kind = True, "official-torch7"
        self.net.to(self.device)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "mean": [round(float(v), 6) for v in self.mean.flatten()]}


@register("gl")
def create_gl(
    device: str = "cpu", checkpoint: str | Path | None = None, postprocess: str = "none", width: float = 1.0
) -> GL:
    """`checkpoint`: a .t7 file (through methods.create also a catalogue name: places2,
    places2_freeform, celeba; methods/released.py)."""
    method = GL(GLConfig(postprocess, width), device)
    if checkpoint is not None:
        method.load_torch7(Path(checkpoint))
    return method
