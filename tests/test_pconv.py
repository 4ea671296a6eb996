from __future__ import annotations

import pytest
import torch
from reference import layout_of, read_layout
from torch import nn

from bench import methods
from bench.methods.checkpoints import CheckpointError
from bench.methods.pconv import IMAGENET_MEAN, IMAGENET_STD, PartialConv, PConvConfig, PConvUNet

TINY = 0.0625


def inputs(size: int = 128, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=generator)
    mask = torch.ones(batch, 1, size, size)
    mask[..., 20:70, 30:90] = 0
    return image, mask


def test_full_network_has_the_community_key_layout():
    net = PConvUNet(PConvConfig())
    assert layout_of(net.state_dict()) == read_layout("pconv_unet_naoto0804_state_dict.tsv")


def hand_case(variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    layer = PartialConv(1, 1, 3, 1, bias=True, variant=variant)
    with torch.no_grad():
        layer.input_conv.weight.fill_(1.0)
        layer.input_conv.bias.fill_(0.5)
    x = torch.full((1, 1, 5, 5), 2.0)
    mask = torch.zeros(1, 1, 5, 5)
    mask[0, 0, 1, 1] = mask[0, 0, 1, 2] = mask[0, 0, 2, 1] = 1  # 3 known pixels in the top-left corner
    with torch.no_grad():
        return layer(x, mask)


def test_partial_conv_paper_renormalisation_by_hand():
    out, new_mask = hand_case("paper")
    # centre (2, 2): window holds 3 known pixels of value 2 → 6 · 9/3 + 0.5
    assert float(out[0, 0, 2, 2]) == pytest.approx(18.5, rel=1e-6)
    # (0, 0): window rows 0–1, cols 0–1 hold one known pixel (1, 1) → 2 · 9/1 + 0.5
    assert float(out[0, 0, 0, 0]) == pytest.approx(18.5, rel=1e-6)
    # (4, 4): no known pixel in its window → 0 and a hole in the updated mask
    assert float(out[0, 0, 4, 4]) == 0.0 and float(new_mask[0, 0, 4, 4]) == 0.0
    assert float(new_mask[0, 0, 2, 2]) == 1.0


def test_partial_conv_community_divides_by_the_mask_sum():
    out, _ = hand_case("community")
    assert float(out[0, 0, 2, 2]) == pytest.approx(6 / 3 + 0.5)
    assert float(out[0, 0, 0, 0]) == pytest.approx(2 / 1 + 0.5)
    assert float(out[0, 0, 4, 4]) == 0.0


@pytest.mark.parametrize(("in_channels", "kernel", "stride"), [(3, 7, 2), (67, 3, 1), (16, 5, 2)])
def test_mask_sums_equal_the_all_ones_mask_convolution_exactly(in_channels, kernel, stride):
    torch.manual_seed(0)
    layer = PartialConv(in_channels, 8, kernel, stride, bias=False, variant="paper")
    generator = torch.Generator().manual_seed(1)
    mask = (torch.rand(2, in_channels, 40, 36, generator=generator) > 0.4).float()
    with torch.no_grad():
        expected = layer.mask_conv(mask)
        got = layer.mask_sums(mask)
        assert got.shape == (2, 1, *expected.shape[2:])
        assert torch.equal(got.expand_as(expected), expected)  # integers: bit for bit
        layer.mask_conv.weight.mul_(2)  # weights that are not all ones: the convolution itself
        torch.testing.assert_close(layer.mask_sums(mask), layer.mask_conv(mask))


def test_community_checkpoint_gives_the_community_outputs(tmp_path):
    torch.manual_seed(0)
    net = PConvUNet(PConvConfig("community")).eval()
    path = tmp_path / "1000000.pth"
    torch.save({"n_iter": 1000000, "model": net.state_dict(), "optimizer": {}}, path)
    method = methods.create("pconv", checkpoint=path)
    assert method.config.variant == "community" and method.trained
    image, mask = inputs(256)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = net((image - mean) / std, mask.expand(-1, 3, -1, -1)) * std + mean
        torch.testing.assert_close(method.predict(image, mask), expected.clamp(0, 1))
    with pytest.raises(CheckpointError, match="variant='community', not 'paper'"):
        methods.create("pconv", checkpoint=path, variant="paper")


def test_community_checkpoint_with_wrong_keys_is_refused(tmp_path):
    state = PConvUNet(PConvConfig()).state_dict()
    del state["enc_3.bn.running_var"]
    torch.save({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="enc_3.bn.running_var"):
        methods.create("pconv", checkpoint=tmp_path / "bad.pth")
    torch.save({"weights": state}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="community layout"):
        methods.create("pconv", checkpoint=tmp_path / "odd.pth")


@pytest.mark.parametrize("variant", ["paper", "community"])
def test_known_pixels_unchanged_and_backward_works(variant):
    method = methods.create("pconv", variant=variant, width=TINY)
    image, mask = inputs(batch=2)
    with torch.inference_mode():
        out = method.inpaint(image, mask)
    assert torch.equal(out * mask, image * mask)
    method.net.train()
    method.predict(image, mask).mean().backward()
    assert all(p.grad is not None for p in method.net.parameters() if p.requires_grad)
    assert not any(p.requires_grad for n, p in method.net.named_parameters() if "mask_conv" in n)


def test_freezing_encoder_batch_norm_for_fine_tuning():
    net = PConvUNet(PConvConfig(width=TINY, freeze_encoder_bn=True)).train()
    norms = {n: m for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert all(not m.training for n, m in norms.items() if n.startswith("enc_"))
    assert all(m.training for n, m in norms.items() if n.startswith("dec_"))
    assert PConvUNet(PConvConfig(width=TINY)).train().enc_2.bn.training  # not frozen by default


def test_untrained_learned_method_is_marked():
    method = methods.create("pconv", width=TINY)
    assert method.learned and not method.trained
    assert method.describe()["options"]["trained"] is False
