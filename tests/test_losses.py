from __future__ import annotations

import pytest
import torch
import torchvision
from reference import layout_of, read_layout
from torch import nn

from bench.methods.lbam.discriminator import TwoColumnDiscriminator
from bench.training import losses


def test_discriminator_has_the_released_layout_and_count():
    d = TwoColumnDiscriminator(256)
    assert sum(p.numel() for p in d.parameters()) == 22_316_417
    assert layout_of(d.state_dict()) == read_layout("lbam_official_discriminator_state_dict.tsv")
    assert d(torch.rand(2, 3, 256, 256), torch.ones(2, 3, 256, 256)).shape == (2, 1)


def test_hole_and_valid_l1_by_hand():
    gt = torch.zeros(1, 1, 2, 2)
    out = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    hole, valid = losses.hole_valid_l1(gt, mask, out)
    assert float(hole) == pytest.approx((2 + 3) / 4) and float(valid) == pytest.approx((1 + 4) / 4)


def test_total_variation_by_hand():
    gt = torch.zeros(1, 1, 1, 4)
    mask = torch.tensor([[[[1.0, 1.0, 0.0, 1.0]]]])  # one hole pixel; dilated region = columns 1–3
    out = torch.tensor([[[[9.0, 9.0, 2.0, 9.0]]]])
    # composite = [0, 0, 2, 0]; horizontal pairs inside the region: (1,2) → 2, (2,3) → 2
    assert float(losses.total_variation(gt, mask, out)) == pytest.approx(4 / 4)


def test_gram_by_hand():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # C = 2, H·W = 2
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    torch.testing.assert_close(losses.gram(features), expected)


class LinearCritic(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, images, masks):
        return (images * self.weight).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_of_a_linear_critic_is_its_norm_minus_one_squared():
    weight = torch.full((1, 3, 2, 2), 0.5)  # ‖∇‖ = sqrt(12 · 0.25) = sqrt(3)
    penalty = losses.gradient_penalty(
        LinearCritic(weight), torch.rand(4, 3, 2, 2), torch.rand(4, 3, 2, 2), torch.ones(4, 3, 2, 2)
    )
    assert penalty.item() == pytest.approx((3**0.5 - 1) ** 2, rel=1e-5)
    penalty.backward()  # differentiable w.r.t. the critic, as WGAN-GP needs


def test_adversarial_signs_paper_and_release():
    real, fake, gp = torch.tensor([0.8]), torch.tensor([0.3]), torch.tensor(0.01)
    assert float(losses.discriminator_loss("lbam_paper", real, fake, gp)) == pytest.approx(0.3 - 0.8 + 0.1)
    assert float(losses.discriminator_loss("lbam_official", real, fake, gp)) == pytest.approx(0.3 + 0.8 + 0.1)
    assert float(losses.generator_adversarial("lbam_paper", fake)) == pytest.approx(-0.03)
    assert float(losses.generator_adversarial("lbam_official", fake)) == pytest.approx(0.03)


@pytest.fixture(scope="module")
def vgg(tmp_path_factory) -> losses.VGG16Features:
    """A randomly initialised VGG16 placed where torchvision keeps the ImageNet file: the real
    loading path, without the real weights."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        torch.manual_seed(0)
        target = losses.default_vgg_weights()
        target.parent.mkdir(parents=True)
        torch.save(torchvision.models.vgg16().state_dict(), target)
        return losses.VGG16Features()


def test_vgg_features_load_from_the_torch_cache_and_stop_at_pool3(vgg):
    features = vgg(torch.rand(1, 3, 64, 64))
    assert [f.shape[1:] for f in features] == [(64, 32, 32), (128, 16, 16), (256, 8, 8)]
    assert not any(p.requires_grad for p in vgg.parameters())


def test_missing_vgg_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(losses.VGGWeightsMissing, match="vgg16-397923af.pth"):
        losses.VGG16Features()


def test_perceptual_and_style_terms(vgg):
    gt = torch.rand(2, 3, 32, 32)
    zero_p, zero_s = losses.perceptual_and_style(vgg, gt, [gt], "l1")
    assert float(zero_p) == 0 and float(zero_s) == 0
    other = torch.rand(2, 3, 32, 32)
    perceptual, style = losses.perceptual_and_style(vgg, gt, [other], "l2")
    expected_p = sum((a - b).pow(2).mean() for a, b in zip(vgg(other), vgg(gt), strict=True)) / 3
    expected_s = sum(
        (losses.gram(a) - losses.gram(b)).pow(2).sum(dim=(1, 2)).mean() / a.shape[1] ** 2
        for a, b in zip(vgg(other), vgg(gt), strict=True)
    )
    torch.testing.assert_close(perceptual, expected_p)  # LBAM Eq. 15: 1/N over N = 3 layers
    torch.testing.assert_close(style, expected_s / 3)  # Eq. 16


def test_vgg_input_raw_feeds_the_images_unnormalised(vgg):
    image = torch.rand(1, 3, 32, 32)
    raw = losses.VGG16Features(vgg.source, "raw")
    imagenet = losses.VGG16Features(vgg.source, "imagenet")
    torch.testing.assert_close(raw(image)[0], raw.slices[0](image))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(imagenet(image)[0], imagenet.slices[0]((image - mean) / std))
    with pytest.raises(ValueError, match="raw, imagenet"):
        losses.VGG16Features(vgg.source, "caffe")


def test_unknown_objective_is_refused_with_the_list():
    gt = torch.rand(1, 3, 4, 4)
    with pytest.raises(
        ValueError, match="lbam_papr.*lbam_paper, lbam_official, pconv_paper, pconv_community"
    ):
        losses.generator_terms("lbam_papr", gt, torch.ones_like(gt), gt, None)
