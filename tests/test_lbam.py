from __future__ import annotations

import math
from dataclasses import asdict

import pytest
import torch
from reference import layout_of, read_layout, reordering_tolerance
from torch import nn

from bench import methods
from bench.methods.checkpoints import OWN_FORMAT, CheckpointError
from bench.methods.lbam import ABLATIONS, LBAMConfig, LBAMNet
from bench.methods.lbam.layers import AttentionOptions, GaussActivation, ReverseMaskConv, update_mask

TINY = 0.0625  # 4 channels in the first layer


def inputs(size: int = 128, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=generator)
    mask = torch.ones(batch, 1, size, size)
    mask[..., size // 4 : size // 2, size // 3 : 2 * size // 3] = 0
    return image, mask


@pytest.fixture(scope="module")
def official_full() -> LBAMNet:
    torch.manual_seed(0)
    return LBAMNet(LBAMConfig("official")).eval()


def test_official_network_has_the_released_parameter_count_and_layout(official_full):
    assert sum(p.numel() for p in official_full.parameters()) == 68_304_948
    assert layout_of(official_full.state_dict()) == read_layout("lbam_official_generator_state_dict.tsv")


def test_official_checkpoint_round_trips_with_identical_outputs(official_full, tmp_path, monkeypatch):
    monkeypatch.setattr(official_full, "inference_kernels", "fast")  # the kernels predict() uses
    path = tmp_path / "LBAM_G.pth"
    torch.save(official_full.state_dict(), path)
    method = methods.create("lbam", checkpoint=path, variant="official")
    assert method.trained and method.options()["checkpoint_kind"] == "official"
    image, mask = inputs()
    with torch.inference_mode():
        expected = official_full(torch.cat((image * mask, mask), 1), mask.expand(-1, 3, -1, -1))
        got = method.predict(image, mask)
    assert torch.equal(got, expected.clamp(0, 1))


def corrupt(state: dict[str, torch.Tensor], how: str) -> object:
    state = dict(state)
    if how == "missing":
        del state["dc3.conv.weight"]
    elif how == "unexpected":
        state["dc8.conv.weight"] = torch.zeros(1)
    elif how == "misshaped":
        state["ec2.conv.maskConv.weight"] = torch.zeros(128, 64, 3, 3)
    elif how == "not a dict":
        return [torch.zeros(1)]
    return state


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing", "1 missing key.*dc3.conv.weight"),
        ("unexpected", "1 unexpected key.*dc8.conv.weight"),
        ("misshaped", r"ec2.conv.maskConv.weight \(checkpoint \(128, 64, 3, 3\), model \(128, 64, 4, 4\)\)"),
        ("not a dict", "not a state dict"),
    ],
)
def test_wrong_checkpoints_are_refused_with_the_key_named(official_full, tmp_path, how, message):
    path = tmp_path / "bad.pth"
    torch.save(corrupt(official_full.state_dict(), how), path)
    with pytest.raises(CheckpointError, match=message):
        methods.create("lbam", checkpoint=path)


class NotATensor:
    pass


def test_checkpoints_with_code_objects_or_garbage_are_refused(tmp_path):
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": NotATensor()}, pickled)
    with pytest.raises(CheckpointError, match=r"weights_only=True.*NotATensor"):
        methods.create("lbam", checkpoint=pickled)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth: refused"):
        methods.create("lbam", checkpoint=garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        methods.create("lbam", checkpoint=tmp_path / "absent.pth")


def test_official_state_dict_is_refused_for_other_readings(official_full, tmp_path):
    path = tmp_path / "LBAM_G.pth"
    torch.save(official_full.state_dict(), path)
    with pytest.raises(CheckpointError, match="variant='official'"):
        methods.create("lbam", checkpoint=path, variant="paper")


def test_own_checkpoint_restores_options_and_outputs(tmp_path):
    torch.manual_seed(1)
    original = methods.create("lbam", variant="paper", ablation="sigmoid", width=TINY)
    path = tmp_path / "own.pth"
    torch.save(
        {
            "format": OWN_FORMAT,
            "method": "lbam",
            "options": asdict(original.config),
            "generator": original.net.state_dict(),
        },
        path,
    )
    loaded = methods.create("lbam", checkpoint=path)
    assert loaded.config == original.config and loaded.trained
    image, mask = inputs()
    with torch.inference_mode():
        assert torch.equal(loaded.predict(image, mask), original.predict(image, mask))
    with pytest.raises(CheckpointError, match="variant='paper', not 'official'"):
        methods.create("lbam", checkpoint=path, variant="official")


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_known_pixels_are_unchanged(variant):
    method = methods.create("lbam", variant=variant, width=TINY)
    image, mask = inputs(batch=2)
    with torch.inference_mode():
        out = method.inpaint(image, mask)
    assert torch.equal(out * mask, image * mask)
    assert out.shape == image.shape and 0 <= float(out.min()) and float(out.max()) <= 1


def test_sizes_must_be_divisible_by_128():
    with pytest.raises(ValueError, match="divisible by 128"):
        methods.create("lbam", width=TINY).predict(torch.rand(1, 3, 96, 96), torch.ones(1, 1, 96, 96))


def test_gauss_activation_matches_equation_9_by_hand():
    g_a = GaussActivation(1.1, 2.0, 1.0, 1.0)
    x = torch.tensor([1.0, 2.0, 3.0, 0.0])
    expected = [1.1 * math.exp(-1), 1.1, 1 + 0.1 * math.exp(-1), 1.1 * math.exp(-4)]
    torch.testing.assert_close(g_a(x), torch.tensor(expected))


def test_official_clamp_is_applied_before_the_forward():
    g_a = GaussActivation(10.0, 0.0, 0.1, 5.0, clamp=True)
    x = torch.tensor([0.0, 1.0])
    # clamped: a = 6, μ = 0.1, γl = 0.5, γr = 2
    expected = torch.tensor([6 * math.exp(-0.5 * 0.01), 1 + 5 * math.exp(-2 * 0.81)])
    with torch.inference_mode():
        torch.testing.assert_close(g_a(x), expected)
    assert float(g_a.a.detach()) == 10.0  # inference mode clamps a copy
    torch.testing.assert_close(g_a(x), expected)
    assert [float(getattr(g_a, n).detach()) for n in ("a", "mu", "sigma1", "sigma2")] == pytest.approx(
        [6, 0.1, 0.5, 2]
    )
    unclamped = GaussActivation(10.0, 0.0, 0.1, 5.0, clamp=False)
    assert float(unclamped(torch.tensor([1.0])).detach()) == pytest.approx(1 + 9 * math.exp(-5))


def test_mask_update_matches_equations_8_and_5():
    x = torch.tensor([-1.0, 0.0, 2.0])
    torch.testing.assert_close(update_mask(x, AttentionOptions()), torch.tensor([0.0, 0.0, 2**0.8]))
    torch.testing.assert_close(
        update_mask(x, AttentionOptions(activation="hard")), torch.tensor([0.0, 0.0, 1.0])
    )


def test_gradients_reach_every_attention_parameter():
    torch.manual_seed(0)
    net = LBAMNet(LBAMConfig("paper", width=TINY)).train()
    for name, param in net.named_parameters():  # mask responses of std ≈ 6 fall on both sides of μ
        if "maskConv" in name or "reverseMaskConv" in name:
            bound = 6 * math.sqrt(3 / param[0].numel())
            nn.init.uniform_(param, -bound, bound)
    image, mask = inputs(batch=2)
    out = net(image * mask.expand(-1, 3, -1, -1) * 2 - 1, mask.expand(-1, 3, -1, -1))
    out.square().mean().backward()
    g_a = {n: p for n, p in net.named_parameters() if "activationFuncG_A" in n}
    assert len(g_a) == 13 * 4
    for name, param in g_a.items():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert float(param.grad.abs()) > 0, name


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_every_ablation_builds_runs_forward_and_backward(ablation):
    torch.manual_seed(0)
    method = methods.create("lbam", ablation=ablation, width=TINY)
    method.net.train()
    image, mask = inputs(batch=2)
    out = method.predict(image, mask)
    assert out.shape == image.shape and torch.isfinite(out).all()
    out.mean().backward()
    trainable = [p for p in method.net.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)
    names = dict(method.net.named_parameters())
    if ablation == "unlearned":
        assert not names["ec2.conv.maskConv.weight"].requires_grad
        assert torch.allclose(names["ec2.conv.maskConv.weight"], torch.tensor(1 / (16 * 4)))
    if ablation == "forward":
        assert not any(n.startswith("reverseConv") for n in names)
    if ablation == "mask3x3":
        assert names["ec2.conv.maskConv.weight"].shape[-1] == 3
    if ablation in ("sigmoid", "lrelu", "relu", "unlearned"):
        assert not any("activationFuncG_A.a" in n for n in names)


def test_forward_ablation_is_eq_12_with_a_reverse_map_of_ones(monkeypatch):
    """Table 2 'forward': the full network with every reverse map replaced by 1 (Eq. 12 with
    cat(forward map, 1)); fails if the decoder drops the forward map from the encoder skip."""
    torch.manual_seed(0)
    ablated = LBAMNet(LBAMConfig("official", "forward", width=TINY)).eval()
    full = LBAMNet(LBAMConfig("official", "full", width=TINY)).eval()
    missing, unexpected = full.load_state_dict(ablated.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("reverseConv") for k in missing)

    def ones_maps(self, reverse_mask):
        features = self.reverseMaskConv(reverse_mask)
        return torch.ones_like(features), update_mask(features, self.options)

    monkeypatch.setattr(ReverseMaskConv, "forward", ones_maps)
    image, mask = inputs(batch=2)
    image_input = torch.cat((image * mask, mask), 1)
    with torch.no_grad():
        expected = full(image_input, mask.expand(-1, 3, -1, -1))
        got = ablated(image_input, mask.expand(-1, 3, -1, -1))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    ablated.inference_kernels = "fast"
    with torch.inference_mode():
        fast = ablated(image_input, mask.expand(-1, 3, -1, -1))
    torch.testing.assert_close(fast, expected, rtol=0, atol=reordering_tolerance(ablated, expected))


def test_paper_reading_has_batch_norm_and_a_three_channel_input():
    state = LBAMNet(LBAMConfig("paper", width=TINY)).state_dict()
    assert "ec2.bn.running_mean" in state and "dc1.bn.weight" in state and "ec1.bn.weight" not in state
    assert state["ec1.conv.conv.weight"].shape[1] == 3
    official = LBAMNet(LBAMConfig("official", width=TINY)).state_dict()
    assert not any(".bn." in k for k in official) and official["ec1.conv.conv.weight"].shape[1] == 4
    assert float(official["reverseConv1.activationFuncG_A.mu"]) == 1.0
    assert float(state["reverseConv1.activationFuncG_A.mu"]) == 2.0


def test_intermediates_for_figures_7_and_8():
    method = methods.create("lbam", width=TINY)
    image, mask = inputs()
    found = method.intermediates(image, mask)
    c = method.config.channels()
    assert found["encoder1_features"].shape == (1, c[0], 64, 64)
    assert found["decoder13_features"].shape == (1, 2 * c[0], 64, 64)
    assert [m.shape[1] for m in found["forward_masks"]] == [c[0], c[1], c[2]]
    assert [m.shape[1] for m in found["reverse_masks"]] == [c[2], c[1], c[0]]  # layers 11, 12, 13


def test_bad_options_are_refused():
    with pytest.raises(methods.MethodError, match="variant"):
        methods.create("lbam", variant="nope")
    with pytest.raises(methods.MethodError, match="ablation"):
        methods.create("lbam", ablation="nope")
