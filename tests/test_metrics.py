from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import to_nchw
from scipy.ndimage import gaussian_filter1d
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.core.vocabulary import MetricProtocol
from bench.evaluation import metrics
from bench.evaluation.metrics import score_batch


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=2,
    )


@pytest.mark.parametrize("size", [16, 37, 64])
def test_gaussian_matrix_equals_scipy_reflect_filter(rng, size):
    signal = rng.random(size)
    expected = gaussian_filter1d(signal, sigma=1.5, mode="reflect", truncate=3.5)
    matrix = metrics.gaussian_filter_matrix(size).double().numpy()
    np.testing.assert_allclose(matrix @ signal, expected, atol=1e-6)


@pytest.mark.parametrize(("h", "w"), [(70, 45), (256, 256), (11, 64)])
def test_block_banded_blur_equals_the_full_matrices(rng, h, w):
    x = torch.from_numpy(rng.random((2, 3, h, w))).float()
    dense = metrics.gaussian_filter_matrix(h) @ x @ metrics.gaussian_filter_matrix(w).T
    banded = metrics._blur(x, metrics.gaussian_band(h, 0, h), metrics.gaussian_band(w, 0, w))
    torch.testing.assert_close(banded, dense, atol=1e-6, rtol=0)


def test_psnr_matches_skimage_on_random_and_real_pairs(rng, real_pair):
    pairs = [(rng.random((40, 50, 3)), rng.random((40, 50, 3))), real_pair]
    for a, b in pairs:
        ours = float(metrics.psnr(to_nchw(b), to_nchw(a)))
        reference = peak_signal_noise_ratio(a, b.astype(np.float32).astype(np.float64), data_range=1.0)
        assert ours == pytest.approx(reference, abs=1e-5)


@pytest.mark.parametrize("length", [100, 4096, 3 * 256 * 256 + 7])
def test_sum_of_squares_matches_float64(rng, length):
    rows = torch.from_numpy(rng.normal(0, 0.1, (3, length))).float()
    expected = (rows.double() ** 2).sum(dim=1)
    torch.testing.assert_close(metrics.sum_of_squares(rows), expected, rtol=1e-6, atol=0)


def test_ssim_matches_skimage_on_random_and_real_pairs(rng, real_pair):
    smooth = np.clip(rng.random((48, 33, 3)) * 0.2 + 0.4, 0, 1)
    pairs = [
        (rng.random((32, 32, 3)), rng.random((32, 32, 3))),
        (smooth, np.clip(smooth + rng.normal(0, 0.05, smooth.shape), 0, 1)),
        real_pair,
    ]
    for a, b in pairs:
        ours = float(metrics.ssim(to_nchw(b), to_nchw(a)))
        assert ours == pytest.approx(skimage_ssim(a, b), abs=1e-4)


def test_ssim_and_psnr_are_per_image_in_a_batch(rng):
    a, b = rng.random((2, 24, 24, 3)), rng.random((2, 24, 24, 3))
    batch_a = torch.cat([to_nchw(x) for x in a])
    batch_b = torch.cat([to_nchw(x) for x in b])
    ssim = metrics.ssim(batch_b, batch_a)
    for i in range(2):
        assert float(ssim[i]) == pytest.approx(skimage_ssim(a[i], b[i]), abs=1e-4)


def test_batches_larger_than_a_cpu_chunk_give_the_per_image_scores(rng):
    count = 2 * metrics.CPU_CHUNK + 1  # two full chunks and a remainder
    prediction = torch.from_numpy(rng.random((count, 3, 24, 24))).float()
    target = torch.from_numpy(rng.random((count, 3, 24, 24))).float()
    for function in (metrics.psnr, metrics.ssim, metrics.mean_l1_percent):
        batched = function(prediction, target)
        one_by_one = torch.cat([function(prediction[i : i + 1], target[i : i + 1]) for i in range(count)])
        assert batched.shape == (count,)
        torch.testing.assert_close(batched, one_by_one, rtol=0, atol=1e-6)


def test_identical_images_give_infinite_psnr_unit_ssim_zero_l1(real_pair):
    image = to_nchw(real_pair[0])
    assert math.isinf(float(metrics.psnr(image, image)))
    assert float(metrics.ssim(image, image)) == pytest.approx(1.0, abs=1e-6)
    assert float(metrics.mean_l1_percent(image, image)) == 0.0


def test_mean_l1_percent_hand_computed():
    a = torch.zeros(1, 3, 2, 2)
    b = torch.zeros(1, 3, 2, 2)
    b[0, 0, 0, 0] = 0.6  # one value of 12 off by 0.6 → mean 0.05 → 5 %
    assert float(metrics.mean_l1_percent(a, b)) == pytest.approx(5.0)


def test_ssim_refuses_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_luma_matches_skimage_rgb2ycbcr(rng):
    rgb = rng.random((5, 6, 3))
    expected = rgb2ycbcr(rgb)[..., 0] / 255
    np.testing.assert_allclose(metrics.to_luma(to_nchw(rgb))[0, 0].numpy(), expected, atol=1e-5)


def test_composite_protocol_ignores_output_on_known_pixels_and_raw_does_not():
    image = torch.full((1, 3, 16, 16), 0.5)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 0
    output = torch.zeros_like(image)  # wrong everywhere
    composite = score_batch(image, mask, output, MetricProtocol(target="composite"))
    raw = score_batch(image, mask, output, MetricProtocol(target="raw"))
    # composite: only 16 of 256 pixels are off by 0.5 → MSE = 0.25·16/256
    assert float(composite["psnr"][0]) == pytest.approx(10 * math.log10(256 / (0.25 * 16)), abs=1e-4)
    assert float(raw["psnr"][0]) == pytest.approx(10 * math.log10(1 / 0.25), abs=1e-4)
    assert math.isnan(float(composite["lpips"][0]))


def test_quantize_protocol_rounds_to_8_bit():
    image = torch.full((1, 3, 16, 16), 100 / 255)
    output = image + 0.4 / 255  # rounds back to the same 8-bit value
    mask = torch.zeros(1, 1, 16, 16)
    quantized = score_batch(image, mask, output, MetricProtocol(quantize_8bit=True))
    assert math.isinf(float(quantized["psnr"][0]))
    assert not math.isinf(float(score_batch(image, mask, output, MetricProtocol())["psnr"][0]))


def test_lpips_without_backbone_weights_is_unavailable_not_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(metrics.LpipsUnavailable, match="alexnet-owt-7be5be79.pth"):
        metrics.load_lpips()


def test_lpips_loads_the_backbone_it_is_given(tmp_path):
    import torchvision

    torch.manual_seed(0)
    backbone = torchvision.models.alexnet()
    target = tmp_path / "alexnet-random.pth"  # not torchvision's file: its name carries no hash
    torch.save(backbone.state_dict(), target)
    model = metrics.load_lpips(target)
    assert torch.equal(model.net.slice1[0].weight, backbone.features[0].weight)
    assert torch.equal(model.net.slice5[0].weight, backbone.features[10].weight)  # slice5 = 10, 11
    image = torch.rand(1, 3, 64, 64)
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 10:30, 10:30] = 0
    scores = score_batch(image, mask, torch.zeros_like(image), MetricProtocol(), model)
    assert float(scores["lpips"][0]) > 0
    same = score_batch(image, torch.ones_like(mask), torch.zeros_like(image), MetricProtocol(), model)
    assert float(same["lpips"][0]) == pytest.approx(0.0, abs=1e-6)
