from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.core import vocabulary
from bench.core.errors import MaskError
from bench.datasets import masks


@pytest.mark.parametrize("name", list(masks.GENERATORS))
def test_generators_are_pure_functions_of_seed_index_size(name):
    make = masks.GENERATORS[name]
    first = make(0, 5, 128)
    assert first.shape == (128, 128) and first.dtype == np.float32
    assert set(np.unique(first)) <= {0.0, 1.0}
    np.testing.assert_array_equal(first, make(0, 5, 128))
    assert not np.array_equal(first, make(0, 6, 128))
    assert not np.array_equal(first, make(1, 5, 128))


def test_random_shape_masks_prefer_the_20_to_30_percent_window():
    ratios = np.array([masks.hole_ratio(masks.random_shape_mask(0, i)) for i in range(300)])
    in_window = np.mean((ratios > 0.2) & (ratios < 0.3))
    # the second crop is kept whatever its area, so the window is favoured, not guaranteed
    assert 0.05 < in_window < 0.9
    assert ratios.min() >= 0 and ratios.max() < 1


def test_random_shape_masks_discard_holes_of_at_most_6_54_percent_as_generate_mask_py():
    # generateMask.py drops a 256² mask whose known (white) area is ≥ 61,250 px
    known_pixels = [int(masks.random_shape_mask(3, i).sum()) for i in range(300)]
    assert max(known_pixels) < 61_250
    small = [masks.random_shape_mask(3, i, 64) for i in range(100)]
    assert max(float(m.mean()) for m in small) < 61_250 / 256**2  # the rule scales with the size


def test_random_shape_crop_offsets_are_drawn_in_1_to_94_as_generate_mask_py():
    rng = np.random.default_rng(0)
    offsets = np.array([masks.release_crop_offsets(rng, 350, 256) for _ in range(5000)])
    assert offsets.min() == 1 and offsets.max() == 94
    assert len(np.unique(offsets[:, 0])) == 94


def test_random_shape_density_controls_the_hole_area():
    low = np.mean([masks.hole_ratio(masks.random_shape_mask(0, i, 64, density=0.1)) for i in range(50)])
    high = np.mean([masks.hole_ratio(masks.random_shape_mask(0, i, 64, density=0.5)) for i in range(50)])
    assert low < high


def test_free_form_strokes_scale_with_size():
    small = np.mean([masks.hole_ratio(masks.free_form_mask(0, i, 128)) for i in range(60)])
    large = np.mean([masks.hole_ratio(masks.free_form_mask(0, i, 512)) for i in range(60)])
    assert small == pytest.approx(large, abs=0.05)  # same geometry at every scale


@pytest.mark.parametrize(
    ("ratio", "label"),
    [(0.1, None), (0.1001, "(0.1, 0.2]"), (0.2, "(0.1, 0.2]"), (0.5, "(0.4, 0.5]"), (0.51, None)],
)
def test_buckets_are_left_open_right_closed(ratio, label):
    assert vocabulary.bucket_of(ratio) == label


@pytest.mark.parametrize("generator", list(masks.GENERATORS))
def test_bucketed_set_has_exactly_k_masks_in_each_bucket(generator):
    mask_set = masks.bucketed_mask_set(generator, per_bucket=3, seed=7, size=64)
    assert len(mask_set) == 12
    for mask, ratio, label in zip(mask_set.masks, mask_set.hole_ratios, mask_set.buckets, strict=False):
        assert masks.hole_ratio(mask) == pytest.approx(ratio)
        assert vocabulary.bucket_of(ratio) == label
    assert [mask_set.buckets.count(vocabulary.bucket_label(b)) for b in vocabulary.BUCKETS] == [3, 3, 3, 3]


def test_bucketed_set_hash_identifies_the_masks():
    first = masks.bucketed_mask_set("free_form", 2, seed=0, size=64)
    again = masks.bucketed_mask_set("free_form", 2, seed=0, size=64)
    other = masks.bucketed_mask_set("free_form", 2, seed=1, size=64)
    assert first.sha256 == again.sha256 != other.sha256


def test_bucketed_set_rejects_bad_requests():
    with pytest.raises(MaskError, match="unknown mask generator"):
        masks.bucketed_mask_set("nope", 1)
    with pytest.raises(MaskError, match="at least 1"):
        masks.bucketed_mask_set("free_form", 0)


def save_mask(path, hole: np.ndarray) -> None:
    Image.fromarray((hole * 255).astype(np.uint8)).save(path)


def test_mask_file_white_is_hole_and_resized_with_nearest_neighbour(tmp_path):
    hole = np.zeros((128, 128))
    hole[:, :32] = 1  # a quarter of the columns
    save_mask(tmp_path / "m.png", hole)
    known = masks.read_mask_file(tmp_path / "m.png", 64)
    assert known.shape == (64, 64)
    assert set(np.unique(known)) == {0.0, 1.0}
    assert known[:, :16].sum() == 0 and known[:, 16:].all()


def test_mask_folder_measures_ratios_and_reports_bad_files(tmp_path):
    for index, columns in enumerate([8, 16, 24, 30, 40]):  # ratios 0.125 … 0.625 of 64 columns
        hole = np.zeros((64, 64))
        hole[:, :columns] = 1
        # names lie about the ratio on purpose: the loader must measure it
        save_mask(tmp_path / f"ratio_0.9_{index}.png", hole)
    gray = np.full((64, 64), 128, np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    save_mask(tmp_path / "empty.png", np.zeros((64, 64)))
    save_mask(tmp_path / "wide.png", np.ones((32, 64)) * (np.arange(64) < 20))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    mask_set = masks.load_mask_folder(tmp_path, size=64)
    assert mask_set.buckets == ["(0.1, 0.2]", "(0.2, 0.3]", "(0.3, 0.4]", "(0.4, 0.5]"]
    assert mask_set.mask_ids == [f"ratio_0.9_{i}" for i in range(4)]  # 0.625 is outside
    reasons = dict(mask_set.skipped)
    assert "not a binary mask" in reasons["gray.png"]
    assert "empty mask" in reasons["empty.png"]
    assert "wrong size" in reasons["wide.png"]
    assert "unreadable" in reasons["broken.png"]


def test_training_mask_folders_keep_every_usable_ratio(tmp_path):
    for index, columns in enumerate([3, 16, 48]):  # 0.05, 0.25 and 0.75 of the image
        hole = np.zeros((64, 64))
        hole[:, :columns] = 1
        save_mask(tmp_path / f"m{index}.png", hole)
    mask_set = masks.load_mask_folder(tmp_path, 64, buckets_only=False)
    assert mask_set.mask_ids == ["m1", "m0", "m2"]  # bucketed first, then the rest by name
    assert mask_set.buckets == ["(0.2, 0.3]", masks.OUTSIDE, masks.OUTSIDE]
    assert masks.load_mask_folder(tmp_path, 64).mask_ids == ["m1"]


def test_mask_folder_keeps_the_first_k_per_bucket(tmp_path):
    for bucket, first_width in enumerate((8, 14, 21, 27)):  # hole ratios width/64 in each bucket
        for index in range(3):
            hole = np.zeros((64, 64))
            hole[:, : first_width + index] = 1
            save_mask(tmp_path / f"m{bucket}{index}.png", hole)
    kept = masks.load_mask_folder(tmp_path, 64, per_bucket=2).mask_ids
    assert kept == ["m00", "m01", "m10", "m11", "m20", "m21", "m30", "m31"]


def test_mask_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(MaskError, match="does not exist"):
        masks.load_mask_folder(tmp_path / "missing")
    with pytest.raises(MaskError, match="no mask image"):
        masks.load_mask_folder(tmp_path)
    save_mask(tmp_path / "tiny_hole.png", np.zeros((64, 64)) + (np.arange(64) < 2))
    with pytest.raises(MaskError, match="no usable mask"):
        masks.load_mask_folder(tmp_path, 64)
