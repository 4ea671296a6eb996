"""PConv's inference path (methods/pconv_fast.py) gives the modules' outputs within 1e-5 of the
output's scale, for both variants, with BN statistics and masks that exercise every term."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench import methods
from bench.methods import pconv_fast
from bench.methods.pconv import PCBActiv

SIZE, WIDTH = 128, 0.125  # the smallest input the 7 stride-2 layers take; 8–64 channels


def lively(net: nn.Module, seed: int = 0) -> nn.Module:
    """He-scaled weights (activations stay O(1) through 14 layers) and BN statistics away from their
    initial values, so a wrong fold or a missed mask cannot hide in tiny outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, nn.Conv2d) and name.endswith("input_conv"):
                module.weight.normal_(0, (2 / module.weight[0].numel()) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.2, 0.2, generator=generator)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
    return net.eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two images with different holes: blocks of 8 px (some windows fully unknown deep in the
    encoder, so m' = 0 and sum(M) = 0 occur) and a thin stroke."""
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, SIZE, SIZE, generator=generator)
    blocks = (torch.rand(2, 1, SIZE // 8, SIZE // 8, generator=generator) > 0.35).float()
    mask = blocks.repeat_interleave(8, 2).repeat_interleave(8, 3)
    mask[1, :, 40:90, 20:23] = 0
    return image, mask


@pytest.mark.parametrize("variant", ["paper", "community"])
def test_fast_path_equals_the_modules_as_written(variant):
    fast = methods.create("pconv", variant=variant, width=WIDTH)
    lively(fast.net)
    eager = methods.create("pconv", variant=variant, width=WIDTH, kernels="eager")
    eager.net.load_state_dict(fast.net.state_dict())
    image, mask = inputs()
    calls, decoder_forms = [], []
    original, subpixel = pconv_fast.fast_forward, pconv_fast.subpixel_applies
    with torch.inference_mode():
        patch = pytest.MonkeyPatch()
        patch.setattr("bench.methods.pconv.fast_forward", lambda *a: calls.append(1) or original(*a))
        patch.setattr(
            pconv_fast, "subpixel_applies", lambda *a: decoder_forms.append(subpixel(*a)) or decoder_forms[-1]
        )
        try:
            got = fast.raw_output(image, mask)
        finally:
            patch.undo()
        expected = eager.raw_output(image, mask)
    assert calls, "the fast path did not run"
    assert decoder_forms == [False, False, False, True, True, True, True]  # 2², 4², 8² outputs concatenate
    scale = float(expected.abs().max())
    assert scale > 0.1
    assert float((got - expected).abs().max()) <= 1e-5 * scale
    assert fast.describe()["options"]["kernels"] == "fast"


def test_training_mode_and_autograd_use_the_modules():
    method = methods.create("pconv", width=WIDTH)
    image, mask = inputs()
    assert not pconv_fast.fast_available(method.net.train(), image)
    assert not pconv_fast.fast_available(method.net.eval(), image)  # autograd on here
    with torch.inference_mode():
        assert pconv_fast.fast_available(method.net, image) == pconv_fast.packed_ops_available(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 kernels: autocast runs the modules
            assert not pconv_fast.fast_available(method.net, image)


def test_unknown_kernels_are_refused():
    with pytest.raises(methods.MethodError, match="kernels"):
        methods.create("pconv", width=WIDTH, kernels="turbo")


def test_soft_or_unequal_masks_take_the_modules():
    """The fast path's arithmetic holds for 0/1 masks with equal channels; other masks given to the
    network directly run the modules as written (same outputs as kernels=eager)."""
    fast = methods.create("pconv", width=WIDTH)
    eager = methods.create("pconv", width=WIDTH, kernels="eager")
    eager.net.load_state_dict(fast.net.state_dict())
    image, mask = inputs()
    soft = mask.expand(-1, 3, -1, -1) * 0.5
    unequal = mask.expand(-1, 3, -1, -1).clone()
    unequal[:, 0, :8, :8] = 1 - unequal[:, 0, :8, :8]
    assert pconv_fast.one_binary_mask(mask.expand(-1, 3, -1, -1))
    with torch.inference_mode():
        for odd in (soft, unequal):
            assert not pconv_fast.one_binary_mask(odd)
            assert torch.equal(fast.net(image, odd), eager.net(image, odd))


@pytest.mark.parametrize("shape", [(1, 5, 4, 4), (2, 3, 3, 6)])
def test_sub_pixel_form_is_the_convolution_of_the_upsampled_map(shape):
    """The four 2×2 phase kernels on the map, interleaved, equal the 3×3 convolution (zero padding 1)
    of its nearest-×2 upsampling: float64, so only rounding (≈1e-16 of the sums) may differ."""
    generator = torch.Generator().manual_seed(2)
    low = torch.randn(*shape, generator=generator, dtype=torch.float64)
    weight = torch.randn(7, shape[1], 3, 3, generator=generator, dtype=torch.float64)
    expected = F.conv2d(F.interpolate(low, scale_factor=2, mode="nearest"), weight, padding=1)
    phases = F.conv2d(low, pconv_fast.phase_kernels(weight), padding=1)
    got = pconv_fast.interleaved(phases, 7)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= 1e-12 * float(expected.abs().max())


@pytest.mark.parametrize("variant", ["paper", "community"])
@pytest.mark.parametrize("last", [False, True])
def test_a_layers_sub_pixel_forward_is_its_forward_on_the_concatenation(variant, last):
    """PCBActiv.forward_subpixel(h, m_h, skip, m_skip) (the training path's) equals forward on
    [up(h), skip] and [up(m_h), m_skip], with holes in both masks (so that h ⊙ m_h matters), in
    train mode, float64: only rounding (≈1e-15 of the scale) may differ."""
    generator = torch.Generator().manual_seed(3)
    layer = PCBActiv(6, 5, 3, 1, variant, bn=not last, activation=None if last else "leaky", bias=last)
    layer = layer.double().train()
    h = torch.randn(2, 4, 6, 6, generator=generator, dtype=torch.float64)
    skip = torch.randn(2, 2, 12, 12, generator=generator, dtype=torch.float64)
    h_mask = (torch.rand(2, 1, 6, 6, generator=generator) > 0.75).double().expand(-1, 4, -1, -1)
    skip_mask = (torch.rand(2, 1, 12, 12, generator=generator) > 0.75).double().expand(-1, 2, -1, -1)
    joined = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], 1)
    joined_mask = torch.cat([F.interpolate(h_mask, scale_factor=2, mode="nearest"), skip_mask], 1)
    with torch.no_grad():
        expected, expected_mask = layer(joined, joined_mask)
        got, got_mask = layer.forward_subpixel(h, h_mask, skip, skip_mask)
    assert torch.equal(got_mask, expected_mask)
    assert bool((expected_mask == 0).any()) and bool((h_mask == 0).any())
    assert float((got - expected).abs().max()) <= 1e-12 * float(expected.abs().max())
