"""LBAM: Image Inpainting with Learnable Bidirectional Attention Maps (Xie et al., ICCV 2019).

The 14-layer U-Net of supplement Table 4 (7 forward-attention encoder layers, 6 reverse-attention
decoder layers, a last deconvolution), in two readings (docs/paper_vs_release.md):
- variant="official": the public PyTorch release: no BN, 4-channel input (RGB·M, M), output
  (tanh+1)/2, reverse g_A init (1.1, 1.0, 0.5, 0.5), g_A parameters clamped before each forward;
- variant="paper": BN + LeakyReLU after re-normalisation, RGB·M input in [−1, 1], tanh output,
  g_A init (1.1, 2.0, 1.0, 1.0) everywhere, unconstrained.
Table 2 ablations: ablation = full | unlearned | forward | sigmoid | lrelu | relu | mask3x3.
'forward' ("without reverse attention map") drops the reverse branch only: the decoder is Eq. 12
with cat(forward map, 1), so the encoder skip still carries its forward map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.core.errors import MethodError
from bench.methods.checkpoints import CheckpointError, merge_options, own_checkpoint
from bench.methods.lbam.fast import fast_forward
from bench.methods.lbam.layers import AttentionOptions, ForwardAttention, ReverseAttention, ReverseMaskConv
from bench.methods.learned import LearnedMethod, given_options, read_checkpoint
from bench.methods.registry import register

VARIANTS = ("official", "paper")
KERNELS = ("fast", "compiled", "eager")  # inference: methods/lbam/fast.py (+ torch.compile), or the modules
ABLATIONS = ("full", "unlearned", "forward", "sigmoid", "lrelu", "relu", "mask3x3")
SIZE_MULTIPLE = 2**7
ENCODER_CHANNELS = (64, 128, 256, 512, 512, 512, 512)


@dataclass(frozen=True)
class LBAMConfig:
    variant: str = "official"
    ablation: str = "full"
    width: float = 1.0  # channel multiplier; 1.0 is the paper's network

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise MethodError(f"lbam: variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.ablation not in ABLATIONS:
            raise MethodError(f"lbam: ablation must be one of {ABLATIONS}, got {self.ablation!r}")
        if not 0 < self.width <= 4:
            raise MethodError(f"lbam: width must be in (0, 4], got {self.width}")

    @property
    def attention(self) -> AttentionOptions:
        activation = {"sigmoid": "sigmoid", "lrelu": "lrelu", "relu": "relu", "unlearned": "hard"}
        return AttentionOptions(
            activation=activation.get(self.ablation, "gauss"),
            clamp=self.variant == "official",
            learnable_mask_filters=self.ablation != "unlearned",
            mask_kernel=3 if self.ablation == "mask3x3" else 4,
        )

    @property
    def reverse_init(self) -> tuple[float, float, float, float]:
        return (1.1, 1.0, 0.5, 0.5) if self.variant == "official" else (1.1, 2.0, 1.0, 1.0)

    def channels(self) -> list[int]:
        return [max(1, round(c * self.width)) for c in ENCODER_CHANNELS]


class LBAMNet(nn.Module):
    """The generator. forward(image_input, mask) with image_input 4-channel (official: RGB·M, M)
    or 3-channel (paper: RGB·M) and a 3-channel mask M (1 = known)."""

    def __init__(self, config: LBAMConfig = LBAMConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels()
        options, bn = config.attention, config.variant == "paper"
        image_channels = 4 if config.variant == "official" else 3
        self.ec1 = ForwardAttention(image_channels, c[0], 3, options, bn=False)
        for i in range(1, 7):
            setattr(self, f"ec{i + 1}", ForwardAttention(c[i - 1], c[i], c[i - 1], options, bn=bn))
        self.use_reverse = config.ablation != "forward"
        if self.use_reverse:
            reverse_in = [3, *c[:5]]
            for i in range(6):
                setattr(
                    self,
                    f"reverseConv{i + 1}",
                    ReverseMaskConv(reverse_in[i], c[i], options, config.reverse_init),
                )
        # dc1 … dc6: deconv from the layer below to c[5 - i], concatenated with skip c[5 - i]
        decoder_in = [c[6], *(2 * c[k] for k in (5, 4, 3, 2, 1))]
        for i in range(6):
            out_channels = c[5 - i]
            setattr(
                self, f"dc{i + 1}", ReverseAttention(decoder_in[i], out_channels, 2 * out_channels, bn=bn)
            )
        self.dc7 = nn.ConvTranspose2d(2 * c[0], 3, 4, 2, 1, bias=False)
        nn.init.normal_(self.dc7.weight, 0.0, 0.02)
        self.inference_kernels = "eager"

    def forward(
        self, image_input: Tensor, mask: Tensor, return_intermediates: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor | list[Tensor]]]:
        inference = not self.training and not torch.is_grad_enabled() and not return_intermediates
        inference = inference and not torch.is_autocast_enabled(image_input.device.type)  # fast: float32
        if inference and self.inference_kernels != "eager":
            return fast_forward(self, image_input, mask, self.inference_kernels == "compiled")
        features, current_mask = image_input, mask
        skips, forward_maps = [], []
        for i in range(1, 8):
            features, current_mask, skip, attention = getattr(self, f"ec{i}")(features, current_mask)
            skips.append(skip)
            forward_maps.append(attention)
            if i == 1:
                first_encoder = features
        reverse_maps: list[Tensor] = []
        if self.use_reverse:
            reverse_mask = 1 - mask
            for i in range(1, 7):
                attention, reverse_mask = getattr(self, f"reverseConv{i}")(reverse_mask)
                reverse_maps.append(attention)
        for i in range(1, 7):
            level = 6 - i  # dc1 uses layer 6's skip and maps, dc6 layer 1's
            # 'forward' ablation: Eq. 12 with cat(forward map, 1), the skip keeps its forward map
            reverse = reverse_maps[level] if self.use_reverse else torch.ones_like(forward_maps[level])
            maps = torch.cat((forward_maps[level], reverse), 1)
            features = getattr(self, f"dc{i}")(skips[level], features, maps)
        output = torch.tanh(self.dc7(features))
        if self.config.variant == "official":
            output = (output + 1) / 2
        if not return_intermediates:
            return output
        return (
            output,
            {
                "encoder1_features": first_encoder,
                "decoder13_features": features,
                "forward_masks": forward_maps[:3],  # after g_A, layers 1–3 (Fig. 8)
                "reverse_masks": reverse_maps[2::-1] if reverse_maps else [],  # layers 11, 12, 13
            },
        )


class LBAM(LearnedMethod):
    name = "lbam"
    size_multiple = SIZE_MULTIPLE

    def __init__(self, config: LBAMConfig, device: str = "cpu", kernels: str = "fast") -> None:
        if kernels not in KERNELS:
            raise MethodError(f"lbam: kernels must be one of {KERNELS}, got {kernels!r}")
        super().__init__(config, LBAMNet(config), device)
        self.net.inference_kernels = kernels

    def options(self) -> dict[str, Any]:
        return {**super().options(), "kernels": self.net.inference_kernels}

    def network_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The common interface → the network's inputs (official: RGB·M ⊕ M in [0,1])."""
        self.check_size(image)
        mask3 = mask.expand(-1, 3, -1, -1)
        if self.config.variant == "official":
            return torch.cat((image * mask3, mask), 1), mask3
        return (image * 2 - 1) * mask3, mask3

    def to_image_space(self, output: Tensor) -> Tensor:
        return (output + 1) / 2 if self.config.variant == "paper" else output  # paper: tanh in [−1, 1]

    def intermediates(self, image: Tensor, mask: Tensor) -> dict[str, Any]:
        """Feature maps and attention maps for the report's Figures 7–8."""
        with torch.inference_mode():
            _, found = self.net(*self.network_inputs(image.to(self.device), mask.to(self.device)), True)
        return found


@register("lbam")
def create_lbam(
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    variant: str | None = None,
    ablation: str | None = None,
    width: float | None = None,
    kernels: str = "fast",
) -> LBAM:
    data, stored = read_checkpoint("lbam", checkpoint)
    given = given_options(variant=variant, ablation=ablation, width=width)
    config = LBAMConfig(**merge_options("lbam", asdict(LBAMConfig()), stored, given))
    method = LBAM(config, device, kernels)
    if data is None:
        return method
    source = Path(checkpoint).name
    if own_checkpoint(data):
        method.load(data["generator"], source, "inpaint-bench", data)
    elif config.variant != "official" or config.ablation != "full" or config.width != 1.0:
        raise CheckpointError(
            f"{source} is a plain state dict, the official release's format: "
            "it loads only into variant='official', ablation='full', width=1"
        )
    else:
        method.load(data, f"{source} (official release layout)", "official")
    return method
