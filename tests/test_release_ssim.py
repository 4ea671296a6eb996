"""The SSIMs' fast paths on composites as the harness scores them (every known pixel equal, the map
exactly 1 away from the hole): the release's (bench/evaluation/release_ssim.py) against the
release's function as written (five zero-padded depthwise convolutions, float32 mean), the
per-image one against scikit-image."""

from __future__ import annotations

import pytest
import torch

from bench import methods
from bench.datasets.demo import load_demo
from bench.datasets.masks import bucketed_mask_set
from bench.evaluation.metrics import to_luma
from bench.evaluation.release_ssim import release_ssim, release_ssim_as_written
from bench.methods.base import composite


@pytest.fixture(scope="module")
def composites() -> tuple[torch.Tensor, torch.Tensor]:
    """telea's composites of 2 demo photos at 64 px with one mask of every bucket (8 pairs), and a
    hole in a corner (the window leaves the image)."""
    test_set = load_demo(64, ["astronaut", "coffee"])
    mask_set = bucketed_mask_set("free_form", 1, 0, 64)
    image = torch.stack([torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in test_set.images])
    masks = torch.stack([torch.from_numpy(m)[None].float() for m in mask_set.masks])
    corner = torch.ones(1, 1, 64, 64)
    corner[..., :9, 55:] = 0
    masks = torch.cat([masks, corner])
    image, masks = image.repeat_interleave(len(masks), 0), masks.repeat(len(test_set.images), 1, 1, 1)
    output = methods.create("telea").predict(image, masks)
    return composite(image, masks, output).clamp(0, 1), image


def test_fast_path_equals_the_function_as_written_on_composites(composites):
    prediction, target = composites
    expected = release_ssim_as_written(prediction, target)
    got = release_ssim(prediction, target)
    assert got.dtype == expected.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert bool((got < 1).all())  # every composite differs from its image somewhere


def test_fast_path_equals_the_function_as_written_on_luma_and_raw_outputs(composites):
    prediction, target = composites
    luma_p, luma_t = to_luma(prediction), to_luma(target)
    torch.testing.assert_close(
        release_ssim(luma_p, luma_t), release_ssim_as_written(luma_p, luma_t), rtol=0, atol=1e-6
    )
    generator = torch.Generator().manual_seed(0)
    noisy = (prediction + 0.01 * torch.randn(prediction.shape, generator=generator)).clamp(0, 1)
    expected = release_ssim_as_written(noisy, target)  # differs everywhere: the whole image computed
    torch.testing.assert_close(release_ssim(noisy, target), expected, rtol=0, atol=1e-6)


def test_identical_images_score_exactly_one_as_the_function_as_written(composites):
    _, target = composites
    assert bool((release_ssim_as_written(target, target) == 1).all())
    assert bool((release_ssim(target, target) == 1).all())


def test_per_image_ssim_on_composites_equals_skimage(composites):
    """The per-image SSIM is computed only around the hole (the map is exactly 1 elsewhere)."""
    from skimage.metrics import structural_similarity

    from bench.evaluation.metrics import ssim

    prediction, target = composites
    got = ssim(prediction, target)
    for i in range(len(got)):
        a, b = (t[i].permute(1, 2, 0).double().numpy() for t in (target, prediction))
        expected = structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=2,
        )
        assert float(got[i]) == pytest.approx(expected, abs=1e-6)
