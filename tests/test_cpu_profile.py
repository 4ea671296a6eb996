"""The cpu training profile: its stream (multi-scale crops, free-form masks), its schedule, its
validation curve, and a short run that has to learn (and does not with the learning rate at 0)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.datasets.masks import free_form_mask, random_shape_mask
from bench.datasets.training import TrainingStream
from bench.training.config import TrainConfig
from bench.training.trainer import Trainer
from bench.training.validation import VAL_LOG


def coordinate_image(height: int = 300, width: int = 400) -> np.ndarray:
    """R = column / width, G = row / height: a crop's values tell where it was cut from."""
    columns, rows = np.meshgrid(np.arange(width) / width, np.arange(height) / height)
    return np.stack([columns, rows, np.full_like(rows, 0.5)], axis=2).astype(np.float32)


def stream(**options) -> TrainingStream:
    settings = {"size": 64, "resize_short": 300, "seed": 5, "start": 0, "length": 40, **options}
    return TrainingStream([coordinate_image], **settings)


def test_plain_stream_keeps_its_draws_crop_position_then_flip():
    """crop_scale_max=1 and no free-form masks: item i is the size² window at the drawn position,
    flipped on the third draw, with the random-shape mask (the streams before the cpu profile)."""
    image = coordinate_image()
    for index in range(12):
        rng = np.random.default_rng([5, 1, index])
        top, left = int(rng.integers(0, 300 - 64 + 1)), int(rng.integers(0, 400 - 64 + 1))
        expected = image[top : top + 64, left : left + 64]
        if rng.random() < 0.5:
            expected = expected[:, ::-1]
        got, mask = stream()[index]
        np.testing.assert_array_equal(got.numpy(), expected.transpose(2, 0, 1))
        np.testing.assert_array_equal(mask[0].numpy(), random_shape_mask(5, index, 64))


def test_multi_scale_windows_cover_up_to_scale_max_and_are_deterministic():
    multi = stream(crop_scale_max=3.0)
    spans = []
    for index in range(40):
        crop, _ = multi[index]
        assert crop.shape == (3, 64, 64)
        spans.append(float(crop[1, -1, 0] - crop[1, 0, 0]) * 300)  # rows covered (G), top to bottom
        torch.testing.assert_close(crop, stream(crop_scale_max=3.0)[index][0], rtol=0, atol=0)
    spans = np.array(spans)
    assert spans.max() > 1.8 * 63 and spans.max() <= 3.0 * 64  # windows up to 3× the crop, resized
    assert spans.min() < 1.2 * 63  # and near 1×


def test_resumed_stream_sees_the_same_items():
    whole, later = (
        stream(crop_scale_max=2.0, free_form_fraction=0.5),
        stream(crop_scale_max=2.0, free_form_fraction=0.5, start=17, length=5),
    )
    for offset in range(5):
        for a, b in zip(whole[17 + offset], later[offset], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_free_form_fraction_one_gives_only_free_form_masks():
    only = stream(free_form_fraction=1.0)
    for index in range(8):
        np.testing.assert_array_equal(only[index][1][0].numpy(), free_form_mask(5, index, 64))


def test_squash_reading_is_torchvisions_resize_of_the_whole_photo_without_flip():
    """The community PConv's train.py: transforms.Resize((size, size)) on the 8-bit PIL photo,
    ToTensor; no crop, no flip (torchvision is the reference here). The mask is the stream's first draw."""
    from torchvision import transforms

    photo = (coordinate_image(90, 170) * 255).round().astype(np.uint8)
    reference = transforms.Compose([transforms.Resize(size=(64, 64)), transforms.ToTensor()])
    expected = reference(Image.fromarray(photo))
    squashed = TrainingStream(
        [lambda: photo.astype(np.float32) / 255],
        size=64,
        resize_short=300,
        seed=5,
        start=0,
        length=12,
        reading="squash",
        free_form_fraction=0.5,
    )
    kinds = set()
    for index in range(12):
        image, mask = squashed[index]
        torch.testing.assert_close(image, expected, rtol=0, atol=0.5 / 255)
        free_form = np.random.default_rng([5, 1, index]).random() < 0.5  # the first and only draw
        kinds.add(free_form)
        drawn = (free_form_mask if free_form else random_shape_mask)(5, index, 64)
        np.testing.assert_array_equal(mask[0].numpy(), drawn)
    assert kinds == {True, False}
    with pytest.raises(ValueError, match="unknown data reading"):
        TrainingStream([coordinate_image], 64, 300, 5, 0, 1, reading="stretch")


def test_community_variant_reads_like_the_community_code_and_others_crop():
    community = TrainConfig(method="pconv", variant="community", profile="paper").resolve()
    assert (community.data_reading, community.batch_size, community.crop_scale_max) == ("squash", 16, 1.0)
    on_cpu = TrainConfig(method="pconv", variant="community", profile="cpu").resolve()
    assert (on_cpu.data_reading, on_cpu.batch_size) == ("squash", 8)
    assert TrainConfig(method="pconv", profile="paper").resolve().data_reading == "crop"
    assert TrainConfig(method="lbam", profile="paper").resolve().batch_size == 48
    chosen = TrainConfig(method="pconv", variant="community", data_reading="crop", batch_size=4)
    assert (chosen.resolve().data_reading, chosen.batch_size) == ("crop", 4)
    with pytest.raises(ValueError, match="crop-scale-max must be 1"):
        TrainConfig(method="pconv", data_reading="squash", crop_scale_max=2.0).resolve()


def test_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(method="lbam", profile="cpu", steps=110, warmup_steps=10).resolve()
    assert config.lr_factor(0) == pytest.approx(0.1) and config.lr_factor(9) == pytest.approx(1.0)
    assert config.lr_factor(10) == pytest.approx(1.0)
    assert config.lr_factor(60) == pytest.approx(0.5)  # half way through the cosine
    assert config.lr_factor(35) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    assert config.lr_factor(110) == pytest.approx(0.0, abs=1e-12)
    constant = TrainConfig(method="lbam", profile="mini", steps=110).resolve()
    assert constant.lr_factor(0) == 1.0 and constant.lr_factor(100) == 1.0


def test_cpu_profile_gives_both_methods_one_budget_and_explicit_values_win():
    lbam = TrainConfig(method="lbam", profile="cpu").resolve()
    pconv = TrainConfig(method="pconv", profile="cpu").resolve()
    lbam.resolve_steps(100), pconv.resolve_steps(100)
    shared = (
        "size",
        "width",
        "batch_size",
        "steps",
        "lr_g",
        "lr_schedule",
        "warmup_steps",
        "dataset",
        "crop_scale_max",
        "free_form_fraction",
        "perceptual",
        "val_dataset",
        "finetune_steps",
    )
    for name in shared:
        assert getattr(lbam, name) == getattr(pconv, name), name
    assert lbam.no_adv is True and lbam.perceptual == "none" and pconv.finetune_steps == 0
    assert TrainConfig(method="lbam", profile="cpu", lr_g=1e-4, no_adv=False).resolve().lr_g == 1e-4
    assert TrainConfig(method="lbam", profile="mini").resolve().no_adv is False  # other profiles: as before


def write_photos(folder: Path, seeds: list[int]) -> str:
    """Smooth images of one tint (a shared colour plus small variations): what there is to learn
    from them is the tint, which a grey initial output lacks and the validation images share."""
    folder.mkdir(parents=True)
    tint = np.array([40.0, 160.0, 80.0])
    for seed in seeds:
        rng = np.random.default_rng(seed)
        small = np.clip(tint + rng.uniform(-30, 30, (5, 5, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(small).resize((160, 140), Image.BICUBIC).save(folder / f"p{seed}.png")
    return f"folder:{folder}"


def tiny_cpu_config(root: Path, **overrides) -> TrainConfig:
    """The cpu profile on a few tinted photos (root/corpus/{train,val}) at 128², width 1/16."""
    settings = {
        "method": "lbam",
        "profile": "cpu",
        "dataset": write_photos(root / "corpus" / "train", [1, 2, 3]),
        "val_dataset": write_photos(root / "corpus" / "val", [4, 5]),
        "size": 128,
        "resize_short": 140,
        "width": 0.0625,
        "batch_size": 4,
        "warmup_steps": 0,
        "out": str(root / "run"),
        "device": "cpu",
        **overrides,
    }
    return TrainConfig(**settings)


def short_run(tmp_path: Path, lr: float) -> list[dict]:
    tmp_path = tmp_path / f"lr-{lr}"
    config = tiny_cpu_config(tmp_path, steps=24, lr_g=lr, val_every=24, checkpoint_every=24)
    trainer = Trainer(config)
    trainer.run(progress=False)
    assert (Path(config.out) / VAL_LOG).is_file()
    data = torch.load(Path(config.out) / "checkpoint.pt", weights_only=True)
    assert set(data["validation"]["telea"]) == {"(0.1, 0.2]", "(0.2, 0.3]", "(0.3, 0.4]", "(0.4, 0.5]"}
    return data["validation"]["curve"]


def mean_l1(curve: list[dict], step: int) -> float:
    return float(np.mean([row["l1"] for row in curve if row["step"] == step]))


@pytest.mark.slow
def test_a_short_cpu_profile_run_learns_and_does_not_with_lr_zero(tmp_path: Path):
    learning = short_run(tmp_path, 3e-3)
    assert sorted({row["step"] for row in learning}) == [0, 24]
    assert mean_l1(learning, 24) < 0.8 * mean_l1(learning, 0)
    frozen = short_run(tmp_path, 0.0)
    assert mean_l1(frozen, 24) == pytest.approx(mean_l1(frozen, 0), rel=1e-6)
    assert mean_l1(frozen, 0) == pytest.approx(mean_l1(learning, 0), rel=1e-6)  # same start, same pairs
