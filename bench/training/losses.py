"""Training objectives, each a named reading of its source, every term returned separately:

- `lbam_paper`: LBAM paper (Xie et al. ICCV 2019) Eqs. 14–18;
- `lbam_official`: the release (Vious/LBAM_Pytorch, loss/InpaintingLoss.py) as written;
- `pconv_paper`: PConv paper (Liu et al. ECCV 2018) Eqs. 1–7, terms in [0,1] image space;
- `pconv_community`: naoto0804/pytorch-inpainting-with-partial-conv loss.py + opt.py, every term on
  ImageNet-normalised tensors.

The weights are data (`WEIGHTS`); the VGG16 input (`raw` [0,1] or `imagenet` mean/std) is an option
of the objective (`DEFAULT_VGG_INPUT`). See docs/objectives.md for the measured differences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.tensors import IMAGENET_MEAN, IMAGENET_STD, composite, default_weights_dir

VGG16_FILE = "vgg16-397923af.pth"
POOL_ENDS = (5, 10, 17)  # torchvision vgg16.features[:5] ends at pool1, [:10] pool2, [:17] pool3

OBJECTIVES = ("lbam_paper", "lbam_official", "pconv_paper", "pconv_community")
VGG_INPUTS = ("raw", "imagenet")
WEIGHTS: dict[str, dict[str, float]] = {
    # LBAM Eq. 18: λ1 = 1, λ2 = 0.1 (adversarial), λ3 = 0.05 (perceptual), λ4 = 120 (style).
    "lbam_paper": {"l1": 1.0, "adversarial": 0.1, "perceptual": 0.05, "style": 120.0},
    # The release: 6·hole + valid, 0.01 per perceptual layer, 120 per style layer, 0.1·D(fake).
    "lbam_official": {"hole": 6.0, "valid": 1.0, "perceptual": 0.01, "style": 120.0, "adversarial": 0.1},
    # PConv Eq. 7; the community opt.py LAMBDA_DICT has the same numbers.
    "pconv_paper": {"hole": 6.0, "valid": 1.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1},
    "pconv_community": {"hole": 6.0, "valid": 1.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1},
}
# The release feeds raw [0,1] images to its VGG16 (models/LBAMModel.py); the papers use an ImageNet
# VGG16, whose inputs are ImageNet-normalised; the community code normalises every tensor.
DEFAULT_VGG_INPUT = {
    "lbam_paper": "imagenet",
    "lbam_official": "raw",
    "pconv_paper": "imagenet",
    "pconv_community": "imagenet",
}


class VGGWeightsMissing(FileNotFoundError):
    pass


def check_objective(name: str) -> str:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; use one of {', '.join(OBJECTIVES)}")
    return name


def default_vgg_weights() -> Path:
    """torchvision's cache file for ImageNet VGG16: $TORCH_HOME/hub/checkpoints/vgg16-397923af.pth."""
    return default_weights_dir() / VGG16_FILE


def vgg_missing_message(path: Path) -> str:
    return (
        f"the perceptual and style losses need ImageNet VGG16 weights at {path} "
        f"(torchvision's {VGG16_FILE}). "
        "Copy the file there or pass --vgg-weights PATH; on a machine with internet: "
        "python -c 'import torchvision; torchvision.models.vgg16(weights=\"IMAGENET1K_V1\")' "
        "writes it to that cache."
    )


def imagenet_normalise(image: Tensor) -> Tensor:
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


class VGG16Features(nn.Module):
    """Frozen VGG16 pool1–pool3 features of images in [0,1]; `vgg_input="imagenet"` normalises them
    with the ImageNet mean/std first, `"raw"` feeds them as they are (the LBAM release)."""

    def __init__(self, weights: Path | None = None, vgg_input: str = "imagenet") -> None:
        super().__init__()
        import torchvision

        if vgg_input not in VGG_INPUTS:
            raise ValueError(f"unknown VGG input {vgg_input!r}; use one of {', '.join(VGG_INPUTS)}")
        path = Path(weights) if weights else default_vgg_weights()
        if not path.is_file():
            raise VGGWeightsMissing(vgg_missing_message(path))
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            vgg = torchvision.models.vgg16()
        vgg.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), assign=True)
        self.source = str(path)
        self.vgg_input = vgg_input
        self.slices = nn.ModuleList(
            vgg.features[start:end] for start, end in zip((0, *POOL_ENDS[:-1]), POOL_ENDS, strict=True)
        )
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # always frozen

    def forward(self, image: Tensor) -> list[Tensor]:
        features, x = [], imagenet_normalise(image) if self.vgg_input == "imagenet" else image
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


def total_variation_everywhere(image: Tensor) -> Tensor:
    """The community loss.py's total_variation_loss: mean |horizontal step| + mean |vertical step|
    over the whole image."""
    horizontal = (image[..., :, :-1] - image[..., :, 1:]).abs().mean()
    return horizontal + (image[..., :-1, :] - image[..., 1:, :]).abs().mean()


def gradient_penalty(
    discriminator: Callable[[Tensor, Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    mask: Tensor,
    epsilon: Tensor | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017; LBAM Eq. 17): E[(‖∇D(x̂)‖₂ − 1)²], x̂ = εx + (1−ε)x̃, one ε per
    image (drawn here when not given)."""
    epsilon = torch.rand(real.shape[0]) if epsilon is None else epsilon
    epsilon = epsilon.view(-1, 1, 1, 1).to(real.device, real.dtype)
    mixed = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    score = discriminator(mixed, mask)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def perceptual_and_style(
    vgg: VGG16Features, gt: Tensor, images: list[Tensor], distance: str
) -> tuple[Tensor, Tensor]:
    """Feature and Gram distances over pool1–3, summed over `images` (raw and/or composite).
    distance 'l1': Σ over layers of mean |·| (PConv Eqs. 3–5, the release); 'l2': (1/N) Σ over the
    N = 3 layers of the mean squared feature distance and of ‖ΔGram‖²_F / C² (LBAM Eqs. 15–16)."""
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
                perceptual = perceptual + (out_f - gt_f).pow(2).mean() / len(target)
                style = style + delta_gram.pow(2).sum(dim=(1, 2)).mean() / channels**2 / len(target)
    return perceptual, style


def generator_terms(
    objective: str, gt: Tensor, mask: Tensor, output: Tensor, vgg: VGG16Features | None
) -> dict[str, Tensor]:
    """Weighted generator terms of `objective` except the adversarial one (it needs D). Images in
    [0,1]; `mask` 1 = known, with the images' channel count."""
    weight = WEIGHTS[check_objective(objective)]
    comp = composite(gt, mask, output)
    terms: dict[str, Tensor] = {}
    if objective == "lbam_paper":
        terms["l1"] = weight["l1"] * (output - gt).abs().mean()
    elif objective == "pconv_community":
        hole, valid = hole_valid_l1(imagenet_normalise(gt), mask, imagenet_normalise(output))
        terms["hole"], terms["valid"] = weight["hole"] * hole, weight["valid"] * valid
    else:
        hole, valid = hole_valid_l1(gt, mask, output)
        terms["hole"], terms["valid"] = weight["hole"] * hole, weight["valid"] * valid
    if vgg is not None:
        if objective == "lbam_paper":
            perceptual, style = perceptual_and_style(vgg, gt, [output], "l2")
        else:
            perceptual, style = perceptual_and_style(vgg, gt, [output, comp], "l1")
        terms["perceptual"], terms["style"] = weight["perceptual"] * perceptual, weight["style"] * style
    if objective == "pconv_paper":
        terms["tv"] = weight["tv"] * total_variation(gt, mask, output)
    elif objective == "pconv_community":
        terms["tv"] = weight["tv"] * total_variation_everywhere(imagenet_normalise(comp))
    return terms


def discriminator_loss(objective: str, d_real: Tensor, d_fake: Tensor, penalty: Tensor) -> Tensor:
    """Paper (WGAN-GP, Eq. 17): E[D(fake)] − E[D(real)] + 10·GP. Release as written:
    E[D(fake)] + E[D(real)] + 10·GP (its real term's sign differs)."""
    sign = -1.0 if check_objective(objective) == "lbam_paper" else 1.0
    return d_fake.mean() + sign * d_real.mean() + 10.0 * penalty


def generator_adversarial(objective: str, d_fake: Tensor) -> Tensor:
    """Paper: λ2 · (−E[D(fake)]); release as written: +0.1 · E[D(fake)]."""
    sign = -1.0 if check_objective(objective) == "lbam_paper" else 1.0
    return WEIGHTS[objective]["adversarial"] * sign * d_fake.mean()
