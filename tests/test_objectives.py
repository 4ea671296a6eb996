"""Each objective's every weighted term against numbers computed by hand on a 2×3×16×16 batch:
gt = 0, output = 0.5 everywhere, one 4×4 hole per image, and a VGG16Features whose three slices
are identities (so every 'layer' sees the image itself, raw or ImageNet-normalised)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.training import losses

A = 0.5  # the output's value; gt is 0
HOLE = 16 / 256  # one 4×4 hole in 16×16
INV_STD = sum(1 / s for s in (0.229, 0.224, 0.225))  # Σ_c 1/std_c of the ImageNet normalisation


def identity_vgg(vgg_input: str) -> losses.VGG16Features:
    """VGG16Features' own forward (and its ImageNet normalisation) over three identity slices."""
    vgg = losses.VGG16Features.__new__(losses.VGG16Features)
    nn.Module.__init__(vgg)
    vgg.vgg_input = vgg_input
    vgg.slices = nn.ModuleList([nn.Identity(), nn.Identity(), nn.Identity()])
    return vgg


def case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gt = torch.zeros(2, 3, 16, 16)
    mask = torch.ones(2, 3, 16, 16)
    mask[..., 6:10, 5:9] = 0
    return gt, mask, torch.full((2, 3, 16, 16), A)


# By hand, identity 'layers' on raw images: mean |out − gt| = A on the raw output and A·HOLE on the
# composite; every Gram entry of a constant-A image is A²·HW/(C·HW) = A²/3, of the composite
# A²·16/(3·256) = A²/48; gt's Gram is 0.
PERCEPTUAL_L1 = 3 * (A + A * HOLE)
STYLE_L1 = 3 * (A**2 / 3 + A**2 / 48)
# TV on the hole dilated by 1 px: 8 horizontal and 8 vertical steps of A per channel and image.
TV_DILATED = (2 * 3 * 16 * A) / (2 * 3 * 256)


def test_lbam_official_terms_and_weights():
    gt, mask, out = case()
    terms = losses.generator_terms("lbam_official", gt, mask, out, identity_vgg("raw"))
    assert set(terms) == {"hole", "valid", "perceptual", "style"}
    assert float(terms["hole"]) == pytest.approx(6.0 * A * HOLE)
    assert float(terms["valid"]) == pytest.approx(1.0 * A * (1 - HOLE))
    assert float(terms["perceptual"]) == pytest.approx(0.01 * PERCEPTUAL_L1)
    assert float(terms["style"]) == pytest.approx(120.0 * STYLE_L1)


def test_lbam_paper_terms_and_weights_with_one_over_n():
    gt, mask, out = case()
    terms = losses.generator_terms("lbam_paper", gt, mask, out, identity_vgg("raw"))
    assert set(terms) == {"l1", "perceptual", "style"}
    assert float(terms["l1"]) == pytest.approx(1.0 * A)
    # Eq. 15: (1/3) Σ mean squared distance = A²; Eq. 16: (1/3) Σ ‖ΔGram‖²_F / C² = (A²/3)².
    assert float(terms["perceptual"]) == pytest.approx(0.05 * A**2)
    assert float(terms["style"]) == pytest.approx(120.0 * (A**2 / 3) ** 2)


def test_pconv_paper_terms_and_weights():
    gt, mask, out = case()
    terms = losses.generator_terms("pconv_paper", gt, mask, out, identity_vgg("raw"))
    assert set(terms) == {"hole", "valid", "perceptual", "style", "tv"}
    assert float(terms["hole"]) == pytest.approx(6.0 * A * HOLE)
    assert float(terms["valid"]) == pytest.approx(1.0 * A * (1 - HOLE))
    assert float(terms["perceptual"]) == pytest.approx(0.05 * PERCEPTUAL_L1)
    assert float(terms["style"]) == pytest.approx(120.0 * STYLE_L1)
    assert float(terms["tv"]) == pytest.approx(0.1 * TV_DILATED)


def test_pconv_community_terms_on_normalised_tensors():
    gt, mask, out = case()
    terms = losses.generator_terms("pconv_community", gt, mask, out, identity_vgg("imagenet"))
    # every difference of A becomes A/std_c; means over channels give (1/3)·Σ 1/std_c
    scale = INV_STD / 3
    assert float(terms["hole"]) == pytest.approx(6.0 * A * HOLE * scale)
    assert float(terms["valid"]) == pytest.approx(1.0 * A * (1 - HOLE) * scale)
    assert float(terms["perceptual"]) == pytest.approx(0.05 * PERCEPTUAL_L1 * scale)
    # constant channels v_c give Gram entries v_i·v_j/3; the composite mixes HOLE of out, 1 − HOLE of gt
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    o = [(A - m) / s for m, s in zip(mean, std, strict=True)]
    g = [-m / s for m, s in zip(mean, std, strict=True)]
    gram_gap = sum(abs(o[i] * o[j] - g[i] * g[j]) / 3 for i in range(3) for j in range(3)) / 9
    assert float(terms["style"]) == pytest.approx(120.0 * 3 * (1 + HOLE) * gram_gap, rel=1e-5)
    # TV over the whole composite, a mean per direction: 2 images × 8 steps of A/std_c, per
    # direction, over 2·3·16·15 differences.
    assert float(terms["tv"]) == pytest.approx(0.1 * 2 * (2 * 8 * A * INV_STD) / (2 * 3 * 16 * 15))


def test_default_vgg_inputs():
    assert losses.DEFAULT_VGG_INPUT == {
        "lbam_paper": "imagenet",
        "lbam_official": "raw",
        "pconv_paper": "imagenet",
        "pconv_community": "imagenet",
    }


def test_adversarial_weight_is_a_tenth():
    fake = torch.tensor([0.2, 0.6])
    assert float(losses.generator_adversarial("lbam_official", fake)) == pytest.approx(0.1 * 0.4)
    assert float(losses.generator_adversarial("lbam_paper", fake)) == pytest.approx(-0.1 * 0.4)
