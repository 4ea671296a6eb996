"""The method interface's contract, checked on every registered method (present and future):
a method registered without an entry in TINY fails here until one is added."""

from __future__ import annotations

import json

import pytest
import torch
from reference import reordering_tolerance

from bench import methods

# Small, fast instances; every option given here must be recorded as given.
TINY: dict[str, dict[str, object]] = {
    "telea": {"radius": 4},
    "ns": {"radius": 4},
    "patchmatch": {"seed": 1},
    "lbam": {"width": 0.0625},
    "pconv": {"width": 0.0625},
    "gl": {"width": 0.0625, "postprocess": "poisson"},
    "ca": {"width": 0.0625},
}
SIZE = 128  # divisible by every method's size multiple


def test_every_registered_method_has_a_contract_entry():
    assert sorted(TINY) == methods.available()


def create(name: str) -> methods.Method:
    torch.manual_seed(0)  # learned methods without a checkpoint draw their weights
    return methods.create(name, **TINY[name])


def pairs(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    smooth = torch.rand(count, 3, SIZE // 16, SIZE // 16, generator=generator)
    image = torch.nn.functional.interpolate(smooth, size=(SIZE, SIZE), mode="bilinear").clamp(0, 1)
    mask = torch.ones(count, 1, SIZE, SIZE)
    for i in range(count):  # a different rectangular hole per image
        top, left = 16 + 8 * i, 24 + 4 * i
        mask[i, :, top : top + 40, left : left + 32] = 0
    return image, mask


@pytest.fixture(scope="module", params=sorted(TINY))
def method(request) -> methods.Method:
    return create(request.param)


def test_known_pixels_are_unchanged_and_outputs_are_images(method):
    image, mask = pairs(2)
    with torch.inference_mode():
        out = method.inpaint(image, mask)
    assert out.shape == image.shape and out.dtype == torch.float32
    known = mask.bool().expand_as(image)
    assert torch.equal(out[known], image[known])
    assert torch.isfinite(out).all() and 0 <= float(out.min()) and float(out.max()) <= 1


def test_a_batch_equals_its_images_one_by_one(method):
    image, mask = pairs(3)
    with torch.inference_mode():
        batched = method.inpaint(image, mask)
        alone = torch.cat([method.inpaint(image[i : i + 1], mask[i : i + 1]) for i in range(3)])
    net = getattr(method, "net", None)  # learned: oneDNN's blocking differs by batch size
    tolerance = 0.0 if net is None else reordering_tolerance(net, alone)
    torch.testing.assert_close(batched, alone, rtol=0, atol=tolerance)


def test_the_same_instance_options_give_the_same_output(method):
    image, mask = pairs(1)
    again = create(method.name)
    with torch.inference_mode():
        torch.testing.assert_close(method.inpaint(image, mask), again.inpaint(image, mask), rtol=0, atol=0)


def test_the_untimed_warm_up_leaves_the_next_output_as_it_was(method):
    image, mask = pairs(1)
    fresh = create(method.name)
    with torch.inference_mode():
        method.warm_up(image, mask)
        torch.testing.assert_close(method.inpaint(image, mask), fresh.inpaint(image, mask), rtol=0, atol=0)


def test_per_image_fills_warm_up_on_a_small_corner_with_a_hole(monkeypatch):
    seen = []
    fill = methods.create("telea")
    monkeypatch.setattr(fill, "fill_uint8", lambda rgb, hole: seen.append((rgb.shape, hole.sum())) or rgb)
    image, mask = pairs(2)
    fill.warm_up(image, mask)
    assert seen == [((32, 32, 3), 16 * 16)]  # one image, not the batch; a 16×16 hole
    fill.warm_up(image[..., :12, :20], mask[..., :12, :20])
    assert seen[-1] == ((12, 12, 3), 6 * 6)


def test_options_are_recorded_as_given_and_serialisable(method):
    described = method.describe()
    assert described["name"] == method.name
    recorded = json.loads(json.dumps(described["options"]))
    for key, value in TINY[method.name].items():
        assert recorded[key] == value, key


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda image, mask: (image * 2, mask), r"\[0, 1\]"),
        (lambda image, mask: (image, mask * 0.5), "binary"),
        (lambda image, mask: (image[:, :2], mask), "N×3×H×W"),
        (lambda image, mask: (image, mask[..., :-8]), "does not match"),
        (lambda image, mask: (image.double(), mask), "float32"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(method, change, message):
    with pytest.raises(ValueError, match=message):
        method.inpaint(*change(*pairs(1)))


def test_unknown_options_are_refused_with_the_accepted_ones(method):
    with pytest.raises(methods.MethodError, match="its options are"):
        methods.create(method.name, no_such_option=1)
