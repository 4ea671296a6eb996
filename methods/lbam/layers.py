"""LBAM building blocks (Xie et al., ICCV 2019, Sec. 3.2–3.3, Eqs. 8–12).

Module and attribute names mirror the official PyTorch release so that its state dict
(tests/data/reference/lbam_official_generator_state_dict.tsv) loads key for key.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

# Parameter ranges the official release clamps g_A to before every forward.
OFFICIAL_CLAMPS = {"a": (1.01, 6.0), "mu": (0.1, 3.0), "sigma1": (0.5, 2.0), "sigma2": (0.5, 2.0)}
MASK_UPDATE_ALPHA = 0.8  # Eq. 8


@dataclass(frozen=True)
class AttentionOptions:
    """What varies between the paper, the official release and the Table 2 ablations."""

    activation: str = "gauss"  # gauss (Eq. 9) | sigmoid | lrelu | relu | hard (Eqs. 4–5, 'unlearned')
    clamp: bool = False  # official: clamp g_A parameters before each forward
    learnable_mask_filters: bool = True  # False: fixed 1/|window| filters ('unlearned')
    mask_kernel: int = 4  # 3 for the 'mask3x3' ablation
    bn: bool = False  # paper: BN after re-normalisation; official: none


class GaussActivation(nn.Module):
    """g_A of Eq. 9: a·exp(−γl(x−μ)²) for x < μ, 1 + (a−1)·exp(−γr(x−μ)²) otherwise;
    one scalar a, μ, γl (sigma1), γr (sigma2) per layer, as in the release."""

    def __init__(self, a: float, mu: float, sigma1: float, sigma2: float, clamp: bool = False) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.mu = nn.Parameter(torch.tensor(mu))
        self.sigma1 = nn.Parameter(torch.tensor(sigma1))
        self.sigma2 = nn.Parameter(torch.tensor(sigma2))
        self.clamp = clamp

    def clamp_parameters(self) -> None:
        """In place, as the release does before every forward (ActivationFunction.py)."""
        with torch.no_grad():
            for name, (low, high) in OFFICIAL_CLAMPS.items():
                getattr(self, name).clamp_(low, high)

    def forward(self, x: Tensor) -> Tensor:
        if self.clamp and not torch.is_inference_mode_enabled():
            self.clamp_parameters()
        elif self.clamp:  # parameters cannot be written under inference mode: clamp a copy
            a, mu, s1, s2 = (getattr(self, n).clamp(*OFFICIAL_CLAMPS[n]) for n in OFFICIAL_CLAMPS)
            return _gauss(x, a, mu, s1, s2)
        return _gauss(x, self.a, self.mu, self.sigma1, self.sigma2)


def _gauss(x: Tensor, a: Tensor, mu: Tensor, sigma1: Tensor, sigma2: Tensor) -> Tensor:
    squared = (x - mu) ** 2
    left = a * torch.exp(-sigma1 * squared)
    right = 1 + (a - 1) * torch.exp(-sigma2 * squared)
    return torch.where(x < mu, left, right)


class HardRenormalisation(nn.Module):
    """Eq. 4 (PConv as a special case): g_A(x) = 1/x for x > 0, else 0."""

    def forward(self, x: Tensor) -> Tensor:
        positive = x > 0
        return torch.where(positive, 1.0 / torch.where(positive, x, torch.ones_like(x)), torch.zeros_like(x))


def attention_activation(options: AttentionOptions, init: tuple[float, float, float, float]) -> nn.Module:
    if options.activation == "gauss":
        return GaussActivation(*init, clamp=options.clamp)
    return {
        "sigmoid": nn.Sigmoid,
        "lrelu": lambda: nn.LeakyReLU(0.2),
        "relu": nn.ReLU,
        "hard": HardRenormalisation,
    }[options.activation]()


def update_mask(x: Tensor, options: AttentionOptions) -> Tensor:
    """g_M: Eq. 8, ReLU(x)^α with α = 0.8; Eq. 5 (x > 0 → 1, else 0) for 'unlearned'."""
    if options.activation == "hard":
        return (x > 0).to(x.dtype)
    return torch.relu(x) ** MASK_UPDATE_ALPHA


def mask_conv(in_channels: int, out_channels: int, options: AttentionOptions) -> nn.Conv2d:
    """k_M: stride 2, pad 1, no bias; 4×4 (3×3 for 'mask3x3'); N(0, 0.02) or fixed 1/|window|."""
    k = options.mask_kernel
    conv = nn.Conv2d(in_channels, out_channels, k, 2, 1, bias=False)
    if options.learnable_mask_filters:
        nn.init.normal_(conv.weight, 0.0, 0.02)
    else:
        # the ratio of known entries in the window (over the mask's channels too), as PConv's 1/sum(1)
        nn.init.constant_(conv.weight, 1.0 / (k * k * in_channels))
        conv.weight.requires_grad_(False)
    return conv


class ForwardAttentionLayer(nn.Module):
    """One encoder layer: W_e^T F (4×4/2/1 conv, no bias), k_M^T M, g_A and g_M (Eqs. 8–10)."""

    def __init__(
        self, in_channels: int, out_channels: int, mask_channels: int, options: AttentionOptions
    ) -> None:
        super().__init__()
        self.options = options
        self.conv = nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False)
        nn.init.normal_(self.conv.weight, 0.0, 0.02)
        self.maskConv = mask_conv(mask_channels, out_channels, options)
        self.activationFuncG_A = attention_activation(options, (1.1, 2.0, 1.0, 1.0))

    def forward(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        conv_features = self.conv(features)
        mask_features = self.maskConv(mask)
        attention = self.activationFuncG_A(mask_features)
        return conv_features * attention, update_mask(mask_features, self.options), conv_features, attention


class ForwardAttention(nn.Module):
    """Encoder layer with optional BN and LeakyReLU(0.2) after re-normalisation."""

    def __init__(
        self, in_channels: int, out_channels: int, mask_channels: int, options: AttentionOptions, bn: bool
    ) -> None:
        super().__init__()
        self.conv = ForwardAttentionLayer(in_channels, out_channels, mask_channels, options)
        if bn:
            self.bn = nn.BatchNorm2d(out_channels)
        self.activ = nn.LeakyReLU(0.2)

    def forward(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out, new_mask, skip, attention = self.conv(features, mask)
        if hasattr(self, "bn"):
            out = self.bn(out)
        return self.activ(out), new_mask, skip, attention


class ReverseMaskConv(nn.Module):
    """Reverse attention map on 1 − M (Eq. 11): k_M^r, g_A (release init 1.1, 1.0, 0.5, 0.5)."""

    def __init__(
        self, in_channels: int, out_channels: int, options: AttentionOptions, init: tuple[float, ...]
    ) -> None:
        super().__init__()
        self.options = options
        self.reverseMaskConv = mask_conv(in_channels, out_channels, options)
        self.activationFuncG_A = attention_activation(options, init)

    def forward(self, reverse_mask: Tensor) -> tuple[Tensor, Tensor]:
        mask_features = self.reverseMaskConv(reverse_mask)
        return self.activationFuncG_A(mask_features), update_mask(mask_features, self.options)


class ReverseAttention(nn.Module):
    """Decoder layer (Eq. 12): deconv (4×4/2/1, no bias), concat with the encoder skip features,
    times cat(forward map, reverse map); optional BN; LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, bn_channels: int, bn: bool) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False)
        nn.init.normal_(self.conv.weight, 0.0, 0.02)
        if bn:
            self.bn = nn.BatchNorm2d(bn_channels)
        self.activ = nn.LeakyReLU(0.2)

    def forward(self, skip: Tensor, features: Tensor, attention: Tensor | None) -> Tensor:
        out = torch.cat((skip, self.conv(features)), 1)
        if attention is not None:
            out = out * attention
        if hasattr(self, "bn"):
            out = self.bn(out)
        return self.activ(out)
