"""Training objectives: LBAM paper (Eqs. 14–18), LBAM official release, PConv (Liu et al. 2018,
Eqs. 1–7). Every term is returned separately so it can be logged and tested."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import composite
from methods.pconv import IMAGENET_MEAN, IMAGENET_STD

VGG16_FILE = "vgg16-397923af.pth"
POOL_ENDS = (5, 10, 17)  # torchvision vgg16.features[:5] ends at pool1, [:10] pool2, [:17] pool3


class VGGWeightsMissing(FileNotFoundError):
    pass


def default_vgg_weights() -> Path:
    """torchvision's cache file for ImageNet VGG16: $TORCH_HOME/hub/checkpoints/vgg16-397923af.pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def vgg_missing_message(path: Path) -> str:
    return (
        f"the perceptual and style losses need ImageNet VGG16 weights at {path} "
        f"(torchvision's {VGG16_FILE}). "
        "Copy the file there or pass --vgg-weights PATH; on a machine with internet: "
        "python -c 'import torchvision; torchvision.models.vgg16(weights=\"IMAGENET1K_V1\")' "
        "writes it to that cache."
    )


class VGG16Features(nn.Module):
    """Frozen VGG16 pool1–pool3 features of images in [0,1] (ImageNet-normalised inside)."""

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__()
        import torchvision

        path = Path(weights) if weights else default_vgg_weights()
        if not path.is_file():
            raise VGGWeightsMissing(vgg_missing_message(path))
        vgg = torchvision.models.vgg16()
        vgg.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.source = str(path)
        self.slices = nn.ModuleList(
            vgg.features[start:end] for start, end in zip((0, *POOL_ENDS[:-1]), POOL_ENDS, strict=True)
        )
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # always frozen

    def forward(self, image: Tensor) -> list[Tensor]:
        features, x = [], (image - self.mean) / self.std
        for block in self.slices:
            x = block(x)
            features.append(x)
        return features


def gram(features: Tensor) -> Tensor:
    """φφᵀ / (C·H·W) per image (PConv Eq. 4's K_p; the release's gram_matrix)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def hole_valid_l1(gt: Tensor, mask: Tensor, output: Tensor) -> tuple[Tensor, Tensor]:
    """PConv Eqs. 1–2 / the release: means over the whole tensor of |(1−M)(out−gt)| and |M(out−gt)|."""
    diff = (output - gt).abs()
    return ((1 - mask) * diff).mean(), (mask * diff).mean()


def total_variation(gt: Tensor, mask: Tensor, output: Tensor) -> Tensor:
    """PConv Eq. 6 on I_comp over P, the hole dilated by one pixel, normalised by the element count."""
    comp = composite(gt, mask, output)
    region = F.max_pool2d(1 - mask, 3, 1, 1)
    horizontal = region[..., :, 1:] * region[..., :, :-1] * (comp[..., :, 1:] - comp[..., :, :-1]).abs()
    vertical = region[..., 1:, :] * region[..., :-1, :] * (comp[..., 1:, :] - comp[..., :-1, :]).abs()
    return (horizontal.sum() + vertical.sum()) / comp.numel()


def gradient_penalty(
    discriminator: Callable[[Tensor, Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    mask: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017; LBAM Eq. 17): E[(‖∇D(x̂)‖₂ − 1)²], x̂ = εx + (1−ε)x̃."""
    epsilon = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device, real.dtype)
    mixed = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    score = discriminator(mixed, mask)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def perceptual_and_style(
    vgg: VGG16Features, gt: Tensor, images: list[Tensor], distance: str
) -> tuple[Tensor, Tensor]:
    """Σ over pool1–3 and over `images` (raw and/or composite) of the feature and Gram distances.
    distance 'l1': mean |·| (PConv Eqs. 3–5, the release); 'l2': mean squared feature distance and
    ‖ΔGram‖²_F / C² (LBAM paper Eqs. 15–16)."""
    target = vgg(gt)
    perceptual = gt.new_zeros(())
    style = gt.new_zeros(())
    for image in images:
        for out_f, gt_f in zip(vgg(image), target, strict=True):
            delta_gram = gram(out_f) - gram(gt_f)
            if distance == "l1":
                perceptual = perceptual + (out_f - gt_f).abs().mean()
                style = style + delta_gram.abs().mean()
            else:
                channels = out_f.shape[1]
                perceptual = perceptual + (out_f - gt_f).pow(2).mean()
                style = style + delta_gram.pow(2).sum(dim=(1, 2)).mean() / channels**2
    return perceptual, style


OBJECTIVES = ("lbam_paper", "lbam_official", "pconv")


def generator_terms(
    objective: str, gt: Tensor, mask: Tensor, output: Tensor, vgg: VGG16Features | None
) -> dict[str, Tensor]:
    """Weighted generator terms except the adversarial one (which needs the discriminator)."""
    comp = composite(gt, mask, output)
    terms: dict[str, Tensor] = {}
    if objective == "lbam_paper":
        terms["l1"] = 1.0 * (output - gt).abs().mean()  # λ1 = 1, Eq. 14
        if vgg is not None:
            perceptual, style = perceptual_and_style(vgg, gt, [output], "l2")
            terms["perceptual"] = 0.05 * perceptual  # λ3, Eq. 15
            terms["style"] = 120.0 * style  # λ4, Eq. 16
        return terms
    hole, valid = hole_valid_l1(gt, mask, output)
    terms["hole"], terms["valid"] = 6.0 * hole, 1.0 * valid
    if vgg is not None:
        perceptual, style = perceptual_and_style(vgg, gt, [output, comp], "l1")
        terms["perceptual"] = (0.01 if objective == "lbam_official" else 0.05) * perceptual
        terms["style"] = 120.0 * style
    if objective == "pconv":
        terms["tv"] = 0.1 * total_variation(gt, mask, output)
    return terms


def discriminator_loss(objective: str, d_real: Tensor, d_fake: Tensor, penalty: Tensor) -> Tensor:
    """Paper (WGAN-GP, Eq. 17): E[D(fake)] − E[D(real)] + 10·GP. Release as written:
    E[D(fake)] + E[D(real)] + 10·GP (its real term's sign differs)."""
    sign = -1.0 if objective == "lbam_paper" else 1.0
    return d_fake.mean() + sign * d_real.mean() + 10.0 * penalty


def generator_adversarial(objective: str, d_fake: Tensor) -> Tensor:
    """Paper: λ2 = 0.1 · (−E[D(fake)]); release as written: +0.1 · E[D(fake)]."""
    sign = -1.0 if objective == "lbam_paper" else 1.0
    return 0.1 * sign * d_fake.mean()
