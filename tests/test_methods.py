from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import reordering_tolerance

from bench import methods
from bench.methods.base import check_inputs, composite

CLASSICAL = ["telea", "ns", "patchmatch"]


def photo_and_mask(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    import skimage.data

    photo = skimage.data.chelsea()[:size, 100 : 100 + size].astype(np.float32) / 255
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous()
    mask = torch.ones(1, 1, size, size)
    mask[..., size // 4 : size // 2, size // 3 : 2 * size // 3] = 0
    return image, mask


def test_registry_lists_the_classical_methods():
    assert set(CLASSICAL) <= set(methods.available())
    assert methods.available() == sorted(methods.available())


def test_unknown_method_suggests_close_names():
    with pytest.raises(methods.UnknownMethodError, match="Did you mean patchmatch"):
        methods.create("patchmach")
    with pytest.raises(methods.UnknownMethodError, match="Available: "):
        methods.create("zzzz")


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(methods.MethodError, match="radius"):
        methods.create("telea", radious=4)


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_methods_refuse_a_checkpoint(name, tmp_path):
    with pytest.raises(methods.MethodError, match="no checkpoint"):
        methods.create(name, checkpoint=tmp_path / "x.pth")


@pytest.mark.parametrize("name", CLASSICAL)
def test_known_pixels_unchanged_and_holes_filled(name):
    image, mask = photo_and_mask()
    out = methods.create(name).inpaint(image, mask)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert torch.equal(out * mask, image * mask)
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    hole = mask.expand_as(image) == 0
    # a fill is close to the photo's colours: far better than leaving zeros in the hole
    assert float((out - image)[hole].abs().mean()) < 0.5 * float(image[hole].abs().mean())


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_opencv_fill_of_a_constant_image_is_that_constant(name):
    image = torch.full((1, 3, 32, 32), 120 / 255)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:20, 10:22] = 0
    out = methods.create(name).inpaint(image, mask)
    # OpenCV's Telea weights are rounded to 8 bit on the way, which costs up to 2 levels
    torch.testing.assert_close(out, image, atol=2.5 / 255, rtol=0)


def test_patchmatch_is_deterministic_for_a_seed_and_changes_with_it():
    image, mask = photo_and_mask()
    first = methods.create("patchmatch", seed=3).predict(image, mask)
    again = methods.create("patchmatch", seed=3).predict(image, mask)
    other = methods.create("patchmatch", seed=4).predict(image, mask)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_batch_is_processed_per_image():
    image, mask = photo_and_mask()
    batch_image = torch.cat([image, image.flip(-1)])
    batch_mask = torch.cat([mask, mask.flip(-1)])
    fill = methods.create("telea")
    out = fill.inpaint(batch_image, batch_mask)
    torch.testing.assert_close(out[1:], fill.inpaint(image.flip(-1), mask.flip(-1)))


LEARNED = ["lbam", "pconv", "gl", "ca"]


@pytest.mark.parametrize("name", LEARNED)
def test_learned_methods_keep_known_pixels_and_say_they_are_untrained(name):
    torch.manual_seed(0)
    method = methods.create(name, width=0.0625)
    image, mask = photo_and_mask(128)
    with torch.inference_mode():
        out = method.inpaint(image, mask)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert torch.equal(out * mask, image * mask)
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert method.learned and not method.trained
    assert method.describe()["options"]["trained"] is False


@pytest.mark.parametrize("name", LEARNED)
def test_learned_methods_refuse_a_missing_checkpoint(name, tmp_path):
    with pytest.raises(methods.MethodError, match="does not exist"):
        methods.create(name, checkpoint=tmp_path / "missing.pth")


@pytest.mark.parametrize("name", LEARNED)
def test_learned_methods_split_cpu_batches_without_changing_outputs(name, monkeypatch):
    """At inference on the CPU a batch goes through CPU_BATCH images at a time; training keeps it whole."""
    from bench.methods import learned

    calls = []
    torch.manual_seed(0)
    method = methods.create(name, width=0.0625)
    real_forward = method.net.forward
    monkeypatch.setattr(method.net, "forward", lambda *a: calls.append(a[0].shape[0]) or real_forward(*a))
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(5, 3, 128, 128, generator=generator)
    mask = (torch.rand(5, 1, 128, 128, generator=generator) > 0.3).float()
    with torch.inference_mode():
        batched = method.predict(image, mask)
        one_by_one = torch.cat([method.predict(image[i : i + 1], mask[i : i + 1]) for i in range(5)])
    assert calls[:3] == [learned.CPU_BATCH, learned.CPU_BATCH, 5 % learned.CPU_BATCH]
    tolerance = reordering_tolerance(method.net, one_by_one)  # oneDNN's blocking differs by batch size
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=tolerance)
    calls.clear()
    method.raw_output(image, mask)  # autograd on: one forward for the whole batch
    assert calls == [5]


def test_composite_copies_known_pixels():
    image, output = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    mask = (torch.rand(1, 1, 4, 4) > 0.5).float()
    result = composite(image, mask, output)
    assert torch.equal(torch.where(mask.bool().expand_as(image), image, output), result)


@pytest.mark.parametrize(
    ("image", "mask", "message"),
    [
        (torch.rand(3, 8, 8), torch.ones(1, 1, 8, 8), "N×3×H×W"),
        (torch.rand(1, 4, 8, 8), torch.ones(1, 1, 8, 8), "N×3×H×W"),
        (torch.rand(1, 3, 8, 8), torch.ones(1, 3, 8, 8), "N×1×H×W"),
        (torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 9), "does not match"),
        (torch.rand(1, 3, 8, 8).double(), torch.ones(1, 1, 8, 8), "float32"),
        (torch.rand(1, 3, 8, 8) * 255, torch.ones(1, 1, 8, 8), r"\[0, 1\]"),
        (torch.rand(1, 3, 8, 8), torch.full((1, 1, 8, 8), 0.5), "binary"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(image, mask, message):
    with pytest.raises(ValueError, match=message):
        check_inputs(image, mask)
    with pytest.raises(ValueError, match=message):
        methods.create("telea").inpaint(image, mask)
