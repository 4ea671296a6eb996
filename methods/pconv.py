"""PConv: Image Inpainting for Irregular Holes Using Partial Convolutions (Liu et al., ECCV 2018).

The U-Net for 256×256 inputs: encoder 7×7, 5×5, 5×5, 3×3 ×4 (stride 2; 64–512 channels; BN from
layer 2; ReLU); decoder nearest ×2 upsampling of features and masks, skip concatenation, 3×3
partial conv, BN, LeakyReLU(0.2); last layer without BN/activation, with bias. Module names follow
the widely used community reimplementation (tests/data/reference/pconv_unet_naoto0804_state_dict.tsv).
- variant="paper" (default): x' = W^T(X⊙M)·sum(1)/(sum(M)+1e-8) + b where sum(M) > 0, else 0;
  m' = 1 where sum(M) > 0 (LBAM paper Eqs. 1–3; PConv paper Eqs. 1–2); images in [0,1].
- variant="community": divides by sum(M) instead of multiplying by sum(1)/sum(M), and normalises
  inputs with the ImageNet mean/std (outputs are de-normalised), so its checkpoints give its outputs.
Inference (eval mode, no autograd, CPU float32) runs methods/pconv_fast.py unless kernels="eager".
With subpixel_decoder (training's --subpixel-decoder) the modules' decoder layers compute the
upsampled part's convolution in the sub-pixel form of that file: the same maths, other rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.errors import MethodError
from bench.core.tensors import IMAGENET_MEAN, IMAGENET_STD
from bench.methods.checkpoints import CheckpointError, merge_options, own_checkpoint
from bench.methods.learned import LearnedMethod, given_options, read_checkpoint
from bench.methods.pconv_fast import (
    fast_available,
    fast_forward,
    interleaved,
    one_binary_mask,
    phase_kernels,
    subpixel_applies,
)
from bench.methods.registry import register

VARIANTS = ("paper", "community")
KERNELS = ("fast", "eager")  # inference in eval mode on the CPU: methods/pconv_fast.py, or the modules

LAYERS = 7
SIZE_MULTIPLE = 2**LAYERS


@dataclass(frozen=True)
class PConvConfig:
    variant: str = "paper"
    width: float = 1.0
    freeze_encoder_bn: bool = False  # the fine-tuning stage (PConv paper Sec. 4.1)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise MethodError(f"pconv: variant must be one of {VARIANTS}, got {self.variant!r}")
        if not 0 < self.width <= 4:
            raise MethodError(f"pconv: width must be in (0, 4], got {self.width}")


class PartialConv(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, bias: bool, variant: str
    ) -> None:
        super().__init__()
        padding = kernel // 2
        self.variant = variant
        self.input_conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=bias)
        nn.init.kaiming_normal_(self.input_conv.weight, a=0, mode="fan_in")
        self.mask_conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False)
        nn.init.constant_(self.mask_conv.weight, 1.0)
        self.mask_conv.weight.requires_grad_(False)
        self.window = in_channels * kernel * kernel  # sum(1) over the sliding window

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        bias = self.input_conv.bias
        raw = self.input_conv(x * mask)
        if bias is not None:
            raw = raw - bias.view(1, -1, 1, 1)
        with torch.no_grad():
            mask_sum = self.mask_sums(mask)
        return self.renormalised(raw, mask_sum)

    def forward_subpixel(
        self, h: Tensor, h_mask: Tensor, skip: Tensor, skip_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """forward(cat([up(h), skip]), cat([up(h_mask), skip_mask])) with up = nearest ×2, 3×3
        stride 1 and all-ones mask weights: the convolution of the upsampled part in the sub-pixel
        form (methods/pconv_fast.py), the skip part's added; no upsampled copy or concatenation."""
        weight = self.input_conv.weight
        up_channels = h.shape[1]
        phases = F.conv2d(h * h_mask, phase_kernels(weight[:, :up_channels]), padding=1)
        raw = interleaved(phases, weight.shape[0]) + F.conv2d(
            skip * skip_mask, weight[:, up_channels:], padding=1
        )
        with torch.no_grad():
            up_sum = F.interpolate(h_mask.sum(dim=1, keepdim=True), scale_factor=2, mode="nearest")
            mask_sum = self.window_sums(up_sum + skip_mask.sum(dim=1, keepdim=True))
        return self.renormalised(raw, mask_sum)

    def renormalised(self, raw: Tensor, mask_sum: Tensor) -> tuple[Tensor, Tensor]:
        """(W^T(X⊙M)·r + b) ⊙ m' and m' from the bias-free convolution and sum(M)."""
        bias = self.input_conv.bias
        updated = (mask_sum > 0).to(raw.dtype)
        if self.variant == "paper":
            out = raw * (self.window / (mask_sum + 1e-8))
        else:
            out = raw / mask_sum.masked_fill(mask_sum == 0, 1.0)
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
        return out * updated, updated.expand_as(raw)

    def mask_weights_all_ones(self) -> bool:
        """Whether mask_conv's weights are all ones (as made and as the checkpoints hold them);
        checked again only when they change."""
        weight = self.mask_conv.weight
        key = (weight.data_ptr(), weight._version, weight.device)
        if getattr(self, "_ones_key", None) != key:
            self._all_ones = bool((weight == 1).all())
            self._ones_key = key
        return self._all_ones

    def mask_sums(self, mask: Tensor) -> Tensor:
        """sum(M) over each window: mask_conv(M). Its weights are all ones, so every output channel
        is the window sum of M's channel sum: one channel (broadcast), a 1/C_in of the convolution's
        work, and for 0/1 masks the same integers exactly. Other weights: the convolution itself."""
        if not self.mask_weights_all_ones():
            return self.mask_conv(mask)
        return self.window_sums(mask.sum(dim=1, keepdim=True))

    def window_sums(self, channel_sum: Tensor) -> Tensor:
        """sum(M) over each of the convolution's windows, from M's one-channel sum over channels."""
        k, stride, padding = self.mask_conv.kernel_size, self.mask_conv.stride, self.mask_conv.padding
        return F.avg_pool2d(channel_sum, k, stride, padding, count_include_pad=True, divisor_override=1)


class PCBActiv(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        variant: str,
        bn: bool = True,
        activation: str | None = "relu",
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.conv = PartialConv(in_channels, out_channels, kernel, stride, bias, variant)
        if bn:
            self.bn = nn.BatchNorm2d(out_channels)
        self.activation = {"relu": nn.ReLU(), "leaky": nn.LeakyReLU(0.2), None: nn.Identity()}[activation]

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.activated(*self.conv(x, mask))

    def forward_subpixel(
        self, h: Tensor, h_mask: Tensor, skip: Tensor, skip_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self.activated(*self.conv.forward_subpixel(h, h_mask, skip, skip_mask))

    def activated(self, out: Tensor, new_mask: Tensor) -> tuple[Tensor, Tensor]:
        if hasattr(self, "bn"):
            out = self.bn(out)
        return self.activation(out), new_mask


class PConvUNet(nn.Module):
    """forward(image, mask) with a 3-channel image and a 3-channel mask (1 = known)."""

    def __init__(self, config: PConvConfig = PConvConfig()) -> None:
        super().__init__()
        self.config = config
        self.freeze_encoder_bn = config.freeze_encoder_bn  # switched on for the fine-tuning stage
        v = config.variant
        c = [max(1, round(k * config.width)) for k in (64, 128, 256, 512, 512, 512, 512)]
        kernels = (7, 5, 5, 3, 3, 3, 3)
        self.enc_1 = PCBActiv(3, c[0], 7, 2, v, bn=False)
        for i in range(1, LAYERS):
            setattr(self, f"enc_{i + 1}", PCBActiv(c[i - 1], c[i], kernels[i], 2, v))
        skip = [3, *c]  # what layer i of the decoder concatenates: the encoder output below it
        for i in range(LAYERS, 1, -1):
            setattr(self, f"dec_{i}", PCBActiv(c[i - 1] + skip[i - 1], c[i - 2], 3, 1, v, activation="leaky"))
        self.dec_1 = PCBActiv(c[0] + 3, 3, 3, 1, v, bn=False, activation=None, bias=True)
        self.inference_kernels = "fast"
        # the modules' decoder layers in the sub-pixel form (same maths, other float32 rounding; a
        # training option: `python -m bench.train --subpixel-decoder`)
        self.subpixel_decoder = False

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        if self.inference_kernels == "fast" and fast_available(self, image):
            if self.mask_weights_all_ones() and one_binary_mask(mask):
                return fast_forward(self, image, mask)
        features, masks = [image], [mask]
        for i in range(1, LAYERS + 1):
            out, out_mask = getattr(self, f"enc_{i}")(features[-1], masks[-1])
            features.append(out)
            masks.append(out_mask)
        h, h_mask = features[-1], masks[-1]
        subpixel = self.subpixel_decoder and self.mask_weights_all_ones()
        for i in range(LAYERS, 0, -1):
            layer = getattr(self, f"dec_{i}")
            if subpixel and subpixel_applies(layer, h):
                h, h_mask = layer.forward_subpixel(h, h_mask, features[i - 1], masks[i - 1])
                continue
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), features[i - 1]], 1)
            h_mask = torch.cat([F.interpolate(h_mask, scale_factor=2, mode="nearest"), masks[i - 1]], 1)
            h, h_mask = layer(h, h_mask)
        return h

    def mask_weights_all_ones(self) -> bool:
        return all(m.mask_weights_all_ones() for m in self.modules() if isinstance(m, PartialConv))

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if mode and self.freeze_encoder_bn:
            for name, module in self.named_modules():
                if isinstance(module, nn.BatchNorm2d) and name.startswith("enc_"):
                    module.eval()
        return self


class PConv(LearnedMethod):
    name = "pconv"
    size_multiple = SIZE_MULTIPLE

    def __init__(self, config: PConvConfig, device: str = "cpu", kernels: str = "fast") -> None:
        if kernels not in KERNELS:
            raise MethodError(f"pconv: kernels must be one of {KERNELS}, got {kernels!r}")
        super().__init__(config, PConvUNet(config), device)
        self.net.inference_kernels = kernels
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "kernels": self.net.inference_kernels}

    def network_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        self.check_size(image)
        if self.config.variant == "community":
            image = (image - self.mean) / self.std
        return image, mask.expand(-1, 3, -1, -1)

    def to_image_space(self, output: Tensor) -> Tensor:
        return output * self.std + self.mean if self.config.variant == "community" else output


@register("pconv")
def create_pconv(
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    variant: str | None = None,
    width: float | None = None,
    freeze_encoder_bn: bool | None = None,
    kernels: str = "fast",
) -> PConv:
    data, stored = read_checkpoint("pconv", checkpoint)
    if data is not None and not stored:
        stored = {"variant": "community", "width": 1.0}  # the community format: {'model': state_dict, …}
    given = given_options(variant=variant, width=width, freeze_encoder_bn=freeze_encoder_bn)
    config = PConvConfig(**merge_options("pconv", asdict(PConvConfig()), stored, given))
    method = PConv(config, device, kernels)
    if data is None:
        return method
    source = Path(checkpoint).name
    if own_checkpoint(data):
        method.load(data["generator"], source, "inpaint-bench", data)
    elif isinstance(data, dict) and isinstance(data.get("model"), dict):
        method.load(data["model"], f"{source} (community layout {{'model': state_dict}})", "community")
    else:
        raise CheckpointError(
            f"{source}: expected an inpaint-bench checkpoint "
            "or the community layout {'model': state_dict, …}"
        )
    return method
