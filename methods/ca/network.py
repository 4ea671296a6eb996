"""DeepFill v1's generator (`InpaintCAModel.build_inpaint_net`, generative_inpainting v1.0.0
`inpaint_model.py`; Yu et al., CVPR 2018, Fig. 2 and Sec. 3), module names = TF layer names.

`gen_conv` (v1.0.0 `inpaint_ops.py`) = tf.layers.conv2d, "SAME" padding, bias, ELU unless stated;
`gen_deconv` = nearest ×2 (align_corners=True) then a 3×3 `gen_conv` named `<name>_conv`.
Input x in [−1, 1] with holes zeroed and a hole mask (1 = missing); 5 channels [x, 1, mask].
Coarse: conv1–conv17 (conv7–10 dilated 2, 4, 8, 16), clipped to [−1, 1]. Refinement on
x1·mask + x·(1 − mask): a dilated branch xconv1–10 and an attention branch pmconv1–6 (pmconv6
ReLU) → contextual attention (3×3, rate 2, fuse 3, scale 10) → pmconv9–10, concatenated, then
allconv11–17, clipped. Variables: `inpaint_net/<name>/kernel` [kh, kw, in, out] and `/bias`
(upsampling layers: `inpaint_net/<name>/<name>_conv/...`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.methods.ca.ops import contextual_attention, conv2d_same, resize_nearest

CHANNELS = 32  # cnum in build_inpaint_net


@dataclass(frozen=True)
class Layer:
    name: str
    out: int  # in multiples of cnum; 0.5 → cnum // 2; 3 channels are written as out=0
    kernel: int = 3
    stride: int = 1
    rate: int = 1
    activation: str = "elu"  # "elu", "relu" or "none"
    upsample: bool = False


def branch(prefix: str, widths: tuple[float, ...]) -> tuple[Layer, ...]:
    """The shared encoder pattern: 5×5, down, 3×3, down, 3×3, 3×3 (names as in v1.0.0)."""
    names = ("1", "2_downsample", "3", "4_downsample", "5", "6")
    return tuple(
        Layer(f"{prefix}{n}", w, kernel=5 if n == "1" else 3, stride=2 if "down" in n else 1)
        for n, w in zip(names, widths, strict=True)
    )


def atrous(prefix: str, first: int) -> tuple[Layer, ...]:
    return tuple(Layer(f"{prefix}{first + i}_atrous", 4, rate=2 ** (i + 1)) for i in range(4))


def decoder(prefix: str, first: int) -> tuple[Layer, ...]:
    n = first
    return (
        Layer(f"{prefix}{n}", 4),
        Layer(f"{prefix}{n + 1}", 4),
        Layer(f"{prefix}{n + 2}_upsample", 2, upsample=True),
        Layer(f"{prefix}{n + 3}", 2),
        Layer(f"{prefix}{n + 4}_upsample", 1, upsample=True),
        Layer(f"{prefix}{n + 5}", 0.5),
        Layer(f"{prefix}{n + 6}", 0, activation="none"),
    )


COARSE = branch("conv", (1, 2, 2, 4, 4, 4)) + atrous("conv", 7) + decoder("conv", 11)
HALLUCINATION = branch("xconv", (1, 1, 2, 2, 4, 4)) + atrous("xconv", 7)
ATTENTION_IN = branch("pmconv", (1, 1, 2, 4, 4, 4))[:-1] + (Layer("pmconv6", 4, activation="relu"),)
ATTENTION_OUT = (Layer("pmconv9", 4), Layer("pmconv10", 4))
REFINE = decoder("allconv", 11)
INPUT_CHANNELS = 5  # [x, ones, ones·mask]


class GenConv(nn.Conv2d):
    """gen_conv / gen_deconv of v1.0.0 with TF "SAME" padding."""

    def __init__(self, layer: Layer, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, layer.kernel, layer.stride, 0, layer.rate)
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        if self.layer.upsample:
            x = resize_nearest(x, 2 * x.shape[-2], 2 * x.shape[-1])
        x = conv2d_same(x, self.weight, self.bias, self.layer.stride, self.layer.rate)
        if self.layer.activation == "elu":
            return F.elu(x)
        return F.relu(x) if self.layer.activation == "relu" else x


def tf_names(layer: Layer) -> tuple[str, str]:
    """The checkpoint's kernel and bias names of a layer."""
    scope = f"inpaint_net/{layer.name}/{layer.name}_conv" if layer.upsample else f"inpaint_net/{layer.name}"
    return f"{scope}/kernel", f"{scope}/bias"


class DeepFillV1(nn.Module):
    """stages(x, hole) → (coarse x1, refined x2), both N×3×H×W in [−1, 1], channels as fed (BGR for
    the released weights); forward gives x2. x: N×3×H×W in [−1, 1], holes zeroed; hole: 1 = missing."""

    def __init__(self, channels: int = CHANNELS, attention: str = "release") -> None:
        super().__init__()
        self.channels = channels
        self.attention = attention
        self.layers = nn.ModuleDict()
        self.sequences: dict[str, list[str]] = {}
        for key, layers, width_in in (
            ("coarse", COARSE, INPUT_CHANNELS),
            ("hallucination", HALLUCINATION, INPUT_CHANNELS),
            ("attention_in", ATTENTION_IN, INPUT_CHANNELS),
            ("attention_out", ATTENTION_OUT, 4 * channels),
            ("refine", REFINE, 8 * channels),
        ):
            for layer in layers:
                width_out = 3 if layer.out == 0 else int(layer.out * channels)
                self.layers[layer.name] = GenConv(layer, width_in, width_out)
                width_in = width_out
            self.sequences[key] = [layer.name for layer in layers]

    def run(self, key: str, x: Tensor) -> Tensor:
        for name in self.sequences[key]:
            x = self.layers[name](x)
        return x

    def stages(self, x: Tensor, hole: Tensor) -> tuple[Tensor, Tensor]:
        ones = torch.ones_like(hole)
        coarse = self.run("coarse", torch.cat([x, ones, hole], 1)).clamp(-1, 1)
        x_now = torch.cat([coarse * hole + x * (1 - hole), ones, hole], 1)
        hallucinated = self.run("hallucination", x_now)
        features = self.run("attention_in", x_now)
        hole_small = resize_nearest(hole, *features.shape[-2:])  # resize_mask_like(mask, x)
        attended = contextual_attention(features, features, hole_small, 3, 2, reading=self.attention)
        attended = self.run("attention_out", attended)
        refined = self.run("refine", torch.cat([hallucinated, attended], 1)).clamp(-1, 1)
        return coarse, refined

    def forward(self, x: Tensor, hole: Tensor) -> Tensor:
        return self.stages(x, hole)[1]
