from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import reordering_tolerance
from test_tf_bundle import official_variables, random_tensors

from bench import methods
from bench.methods.ca.network import tf_names
from bench.methods.ca.ops import (
    contextual_attention,
    conv2d_same,
    extract_patches,
    nearest_indices,
    same_padding,
)
from bench.methods.checkpoints import CheckpointError
from bench.methods.tf_bundle import write_bundle


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [
        (8, 3, 2, 1, (0, 1)),  # even size, stride 2: the extra row goes after
        (7, 3, 2, 1, (1, 1)),
        (8, 5, 1, 1, (2, 2)),
        (8, 3, 1, 16, (16, 16)),  # conv10_atrous
        (8, 4, 2, 1, (1, 1)),  # the attention's 4×4 patches with stride 2
        (9, 4, 2, 1, (1, 2)),
    ],
)
def test_same_padding_hand_computed(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


def test_stride_two_conv_pads_only_bottom_and_right():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = conv2d_same(x, torch.ones(1, 1, 3, 3), None, stride=2)[0, 0]
    grid = x[0, 0]
    expected = [[grid[0:3, 0:3].sum(), grid[0:3, 2:4].sum()], [grid[2:4, 0:3].sum(), grid[2:4, 2:4].sum()]]
    assert torch.equal(out, torch.tensor(expected))


def test_nearest_indices_follow_tf_align_corners():
    # round(y·(in − 1)/(out − 1)), halves away from zero
    down = nearest_indices(64, 32)
    assert (down[0], down[1], down[15], down[16], down[31]) == (0, 2, 30, 33, 63)
    assert nearest_indices(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert nearest_indices(66, 33)[16] == 33  # 16·65/32 = 32.5 → 33, not banker's 32
    assert nearest_indices(5, 1).tolist() == [0]


def test_extract_patches_rows_are_tf_patches_in_row_major_order():
    x = torch.arange(16.0).reshape(1, 4, 4)
    patches = extract_patches(x, 3, 1)
    assert patches.shape == (16, 1, 3, 3)
    assert patches[0, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 4, 5]]
    assert patches[5, 0].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]


def diagonal_sums(scores: np.ndarray) -> np.ndarray:
    out = np.zeros_like(scores)
    for d in (-1, 0, 1):
        shifted = np.zeros_like(scores)
        rows, cols = scores.shape
        src = scores[max(d, 0) : rows + min(d, 0), max(d, 0) : cols + min(d, 0)]
        shifted[max(-d, 0) : rows + min(-d, 0), max(-d, 0) : cols + min(-d, 0)] = src
        out += shifted
    return out


def attention_by_loops(
    f: np.ndarray, b: np.ndarray, hole: np.ndarray, scale: float, fuse: bool, reading: str = "release"
) -> np.ndarray:
    """The v1.0.0 contextual attention written out position by position (C×H×W, rate 2, 3×3);
    reading="paper": cosine similarity (Eq. 1) and a softmax over background patches only (Eq. 2)."""
    channels, height, width = f.shape
    h, w = height // 2, width // 2
    rows, cols = nearest_indices(height, h), nearest_indices(width, w)
    fs, bs, hs = (a[:, rows][:, :, cols] for a in (f, b, hole))
    fs, bs, hs = (np.pad(a, ((0, 0), (1, 1), (1, 1))) for a in (fs, bs, hs))
    scores = np.zeros((h, w, h, w))
    for p in range(h):
        for q in range(w):
            patch = bs[:, p : p + 3, q : q + 3]
            patch = patch / max(np.sqrt((patch**2).sum()), 1e-4)
            for i in range(h):
                for j in range(w):
                    foreground = fs[:, i : i + 3, j : j + 3]
                    if reading == "paper":
                        foreground = foreground / max(np.sqrt((foreground**2).sum()), 1e-4)
                    scores[i, j, p, q] = (foreground * patch).sum()
    if fuse:
        scores = diagonal_sums(scores.reshape(h * w, h * w)).reshape(h, w, h, w)
        scores = diagonal_sums(scores.transpose(1, 0, 3, 2).reshape(w * h, w * h))
        scores = scores.reshape(w, h, w, h).transpose(1, 0, 3, 2)
    valid = np.array([[hs[0, p : p + 3, q : q + 3].max() == 0 for q in range(w)] for p in range(h)], float)
    logits = scores * valid * scale
    weights = np.exp(logits - logits.max(axis=(2, 3), keepdims=True))
    if reading == "paper":
        weights = weights * valid  # masked patches leave the denominator
    weights = weights / weights.sum(axis=(2, 3), keepdims=True) * valid
    padded_b = np.pad(b, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((channels, height + 2, width + 2))
    for i in range(h):
        for j in range(w):
            for p in range(h):
                for q in range(w):
                    patch = padded_b[:, 2 * p : 2 * p + 4, 2 * q : 2 * q + 4]
                    out[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += weights[i, j, p, q] * patch
    return out[:, 1:-1, 1:-1] / 4


@pytest.mark.parametrize(("fuse", "reading"), [(True, "release"), (False, "release"), (True, "paper")])
def test_contextual_attention_equals_the_loops(fuse, reading):
    generator = torch.Generator().manual_seed(0)
    f, b = torch.randn(2, 2, 3, 12, 12, generator=generator)
    hole = torch.zeros(2, 1, 12, 12)
    hole[0, :, 2:7, 3:9] = 1
    hole[1, :, 6:12, 0:5] = 1
    ours = contextual_attention(f, b, hole, fuse=fuse, reading=reading).double().numpy()
    for i in range(2):  # each image with its own mask
        f_i, b_i = f[i].double().numpy(), b[i].double().numpy()
        expected = attention_by_loops(f_i, b_i, hole[i].numpy(), 10.0, fuse, reading)
        np.testing.assert_allclose(ours[i], expected, rtol=0, atol=1e-5)


def test_attention_without_hole_reconstructs_the_background():
    """Each patch matches itself best; its 4×4 copies overlap twice per axis, /4: b comes back
    (halved on the border rows and columns, which one patch covers)."""
    b = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = contextual_attention(b, b, torch.zeros(1, 1, 16, 16), softmax_scale=1e3, fuse=False)
    coverage = torch.ones(16)
    coverage[[0, -1]] = 0.5
    torch.testing.assert_close(out, b * coverage[:, None] * coverage[None, :], rtol=0, atol=1e-5)


@pytest.mark.parametrize("reading", ["release", "paper"])
def test_attention_over_an_image_that_is_all_hole_is_zero(reading):
    f = torch.randn(1, 4, 8, 8)
    out = contextual_attention(f, f, torch.ones(1, 1, 8, 8), reading=reading)
    assert torch.equal(out, torch.zeros(1, 4, 8, 8))


def test_only_the_paper_reading_ignores_the_foregrounds_scale():
    """Eq. 1 normalises both patches; the release divides by the background patch's norm only."""
    generator = torch.Generator().manual_seed(2)
    f, b = torch.randn(2, 1, 3, 16, 16, generator=generator)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 4:10, 4:12] = 1
    for reading, invariant in (("paper", True), ("release", False)):
        once = contextual_attention(f, b, hole, reading=reading)
        scaled = contextual_attention(3 * f, b, hole, reading=reading)
        assert torch.allclose(once, scaled, atol=1e-5) == invariant, reading


def test_network_variables_are_the_releases():
    net = methods.create("ca").net
    ours = {}
    for module in net.layers.values():
        kernel, bias = tf_names(module.layer)
        ours[kernel] = tuple(module.weight.permute(2, 3, 1, 0).shape)
        ours[bias] = tuple(module.bias.shape)
    assert ours == official_variables()
    assert len(ours) == 84


def test_official_names_load_strictly_and_transpose(tmp_path):
    tensors = random_tensors(3)
    extras = {
        "discriminator/discriminator_local/conv1/kernel": np.zeros((5, 5, 3, 64), np.float32),
        "inpaint_net/conv1/kernel/Adam": np.zeros((5, 5, 5, 32), np.float32),
        "global_step": np.array(5, np.int64),
    }
    write_bundle(tmp_path / "snap-0", tensors | extras)
    method = methods.create("ca", checkpoint=tmp_path)
    assert method.trained and method.ignored_variables == 3
    assert "rectangular holes" in method.describe()["training"]["holes"]
    layers = method.net.layers
    conv13 = tensors["inpaint_net/conv13_upsample/conv13_upsample_conv/kernel"]
    assert np.array_equal(layers["conv13_upsample"].weight.detach().numpy(), conv13.transpose(3, 2, 0, 1))
    assert np.array_equal(layers["allconv17"].bias.detach().numpy(), tensors["inpaint_net/allconv17/bias"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", r"1 missing variable\(s\): inpaint_net/pmconv9/kernel"),
        ("reshape", r"1 misshaped variable\(s\): inpaint_net/pmconv9/kernel \(checkpoint \(3, 3, 128, 64\)"),
        ("extra", r"1 unexpected variable\(s\): inpaint_net/pmconv7/kernel"),
    ],
)
def test_a_bundle_that_does_not_fit_is_refused_with_the_name(tmp_path, change, message):
    tensors = random_tensors(4)
    name = "inpaint_net/pmconv9/kernel"
    if change == "drop":
        del tensors[name]
    elif change == "reshape":
        tensors[name] = tensors[name][..., :64]
    else:
        tensors["inpaint_net/pmconv7/kernel"] = tensors[name]
    write_bundle(tmp_path / "snap-0", tensors)
    with pytest.raises(CheckpointError, match=message):
        methods.create("ca", checkpoint=tmp_path / "snap-0.index")


def test_a_pytorch_file_is_refused_with_what_is_expected(tmp_path):
    (tmp_path / "ca.pth").write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(CheckpointError, match="TensorFlow V2 checkpoint"):
        methods.create("ca", checkpoint=tmp_path / "ca.pth")


def test_channels_are_flipped_to_bgr_and_back_and_holes_zeroed():
    method = methods.create("ca", width=0.0625)
    image = torch.rand(1, 3, 16, 16)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0
    x, hole = method.network_inputs(image, mask)
    torch.testing.assert_close(x[:, 0], ((image[:, 2] * 2 - 1) * mask[:, 0]))
    assert torch.equal(hole, 1 - mask)
    blue_first = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    assert method.to_image_space(blue_first)[0, :, 0, 0].tolist() == [0.0, 0.0, 1.0]


def test_batches_use_each_images_own_mask_and_sizes_must_divide_by_8():
    torch.manual_seed(0)
    method = methods.create("ca", width=0.25)
    image = torch.rand(2, 3, 32, 32)
    mask = torch.ones(2, 1, 32, 32)
    mask[0, :, 4:20, 8:24] = 0
    mask[1, :, 16:30, 2:12] = 0
    with torch.no_grad():
        batch = method.predict(image, mask)
        alone = torch.cat([method.predict(image[i : i + 1], mask[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batch, alone, rtol=0, atol=reordering_tolerance(method.net, alone))
    with pytest.raises(ValueError, match="divisible by 8"):
        method.predict(torch.rand(1, 3, 36, 32), torch.ones(1, 1, 36, 32))


def test_network_equals_the_same_maths_in_tensorflow_ops():
    pytest.importorskip("tensorflow", reason="the optional [tf] extra is not installed")
    from ca_tf_reference import inpaint_net

    torch.manual_seed(0)
    method = methods.create("ca")
    weights = {}
    for module in method.net.layers.values():  # activations of order 1 through all 42 layers
        torch.nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
        module.weight.data *= 1.2
        torch.nn.init.normal_(module.bias, std=0.05)
        kernel, bias = tf_names(module.layer)
        weights[kernel] = module.weight.detach().numpy().transpose(2, 3, 1, 0).copy()
        weights[bias] = module.bias.detach().numpy().copy()
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 16:35, 21:48] = 0
    x, hole = method.network_inputs(image, mask)
    with torch.no_grad():
        coarse, refined = method.net.stages(x, hole)
    nhwc = x.permute(0, 2, 3, 1).numpy(), hole.permute(0, 2, 3, 1).numpy()
    tf_coarse, tf_refined = inpaint_net(*nhwc, weights)
    assert float(tf_refined.std()) > 0.2  # the comparison is not between near-constant maps
    assert np.abs(coarse.permute(0, 2, 3, 1).numpy() - tf_coarse).max() <= 1e-4
    assert np.abs(refined.permute(0, 2, 3, 1).numpy() - tf_refined).max() <= 1e-4


def test_options_are_checked_and_recorded():
    with pytest.raises(methods.MethodError, match=r"attention must be one of \('release', 'paper'\)"):
        methods.create("ca", attention="cosine")
    with pytest.raises(methods.MethodError, match="width must give 2 to 128 channels"):
        methods.create("ca", width=0.01)
    options = methods.create("ca", width=0.0625, attention="paper").options()
    assert options["width"] == 0.0625 and options["attention"] == "paper" and options["trained"] is False


def test_bench_run_takes_the_index_and_records_the_release(tmp_path):
    import json

    import cv2

    from bench.run import main

    (tmp_path / "release_places2_256").mkdir()
    index = write_bundle(tmp_path / "release_places2_256" / "snap-0", random_tensors(5))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(photos / f"{i}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    argv = ["--methods", "ca", "--checkpoint", f"ca={index}", "--dataset", f"folder:{photos}", "--size", "64"]
    out = ["--masks-per-bucket", "1", "--no-progress", "--out", str(tmp_path / "run"), "--report", ""]
    assert main(argv + out) == 0
    provenance = json.loads((tmp_path / "run" / "run.json").read_text())
    described = provenance["methods"]["ca"]
    assert described["options"]["trained"] is True
    assert described["training"]["checkpoint"] == "release_places2_256/snap-0.index"
    assert "rectangular holes" in described["training"]["holes"]
    # the note says what was loaded (issue 20): its hash, never a claim to be the authors' release
    assert described["training"]["sha256"] == provenance["checkpoints_sha256"]["ca"]
    assert "release" not in described["training"]
