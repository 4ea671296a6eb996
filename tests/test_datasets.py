from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.datasets import images, paris, places, sources, splits
from bench.datasets.images import ImageReadError


def write_photo(path: Path, size: tuple[int, int] = (80, 96), seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def test_read_rgb_converts_grayscale_rgba_and_16_bit(tmp_path):
    rgb = write_photo(tmp_path / "rgb.png")
    np.testing.assert_allclose(images.read_rgb(tmp_path / "rgb.png"), rgb / 255, atol=1e-6)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    gray = images.read_rgb(tmp_path / "gray.png")
    assert gray.shape == (80, 96, 3) and np.allclose(gray[..., 0], gray[..., 2])
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(images.read_rgb(tmp_path / "rgba.png"), rgb / 255, atol=1e-6)
    deep = (rgb.astype(np.uint16) * 257)[..., ::-1]  # BGR for OpenCV
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_allclose(images.read_rgb(tmp_path / "deep.png"), rgb / 255, atol=1e-6)


def test_read_rgb_refuses_truncated_and_corrupt_files(tmp_path):
    write_photo(tmp_path / "full.jpg", (200, 200))
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    for name in ("cut.jpg", "junk.png"):
        with pytest.raises(ImageReadError, match=name):
            images.read_rgb(tmp_path / name)


def test_test_crop_resizes_short_side_and_centre_crops():
    rgb = np.zeros((100, 300, 3), np.float32)
    rgb[:, 100:200] = 1.0  # the centre third is white
    crop = images.test_crop(rgb, 50)
    assert crop.shape == (50, 50, 3) and crop.dtype == np.uint8
    assert crop.min() == 255  # the centre square lies inside the white third


def test_folder_dataset_skips_bad_files_and_keeps_the_rest(tmp_path):
    write_photo(tmp_path / "a.png")
    write_photo(tmp_path / "sub" / "b.jpg", seed=1)
    write_photo(tmp_path / "tiny.png", (6, 6))
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    test_set = sources.load_test_set(f"folder:{tmp_path}", size=32)
    assert test_set.image_ids == ["a", "sub/b"]
    assert test_set.images.shape == (2, 32, 32, 3)
    skipped = dict(test_set.skipped)
    assert set(skipped) == {"bad.jpg", "tiny.png"} and "too small" in skipped["tiny.png"]


def test_folder_dataset_errors_for_missing_empty_or_all_bad(tmp_path):
    with pytest.raises(sources.DataNotFoundError, match="does not exist"):
        sources.load_test_set(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(sources.DataNotFoundError, match="holds no image"):
        sources.load_test_set(f"folder:{tmp_path}")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(sources.DataNotFoundError, match="no usable image"):
        sources.load_test_set(f"folder:{tmp_path}")


def test_demo_dataset_is_eight_distinct_real_photos():
    test_set = sources.load_test_set("demo", size=64)
    assert len(test_set) == 8 and test_set.images.shape == (8, 64, 64, 3)
    assert len({image.tobytes() for image in test_set.images}) == 8
    assert all(image.std() > 10 for image in test_set.images)  # real content, not flat
    assert test_set.sha256 == sources.load_test_set("demo", size=64).sha256


def test_split_rule_is_deterministic_disjoint_and_stable_under_additions():
    files = [Path(f"img_{i:03d}.jpg") for i in range(20)]
    validation, test = splits.split_validation_test(files)
    assert len(validation) == len(test) == 10 and not set(validation) & set(test)
    assert splits.split_validation_test(list(reversed(files))) == (validation, test)
    ordered = splits.hash_order(files)
    assert splits.hash_order([*files, Path("zzz.jpg")]).index(ordered[0]) <= 1


def make_paris(root: Path, train: int = 110, test: int = 3) -> None:
    for i in range(train):
        (root / "paris" / "paris_train_original").mkdir(parents=True, exist_ok=True)
        (root / "paris" / "paris_train_original" / f"{i:05d}.png").write_bytes(b"")
    for i in range(test):
        write_photo(root / "paris" / "paris_eval_gt" / f"{i:03d}_im.png", seed=i)


def test_paris_protocol(tmp_path):
    make_paris(tmp_path)
    test_set = sources.load_test_set("paris", data_root=tmp_path, size=32)
    assert test_set.image_ids == [f"paris_eval_gt/00{i}_im" for i in range(3)]
    _, validation = paris.split_files(tmp_path, "val")
    _, train = paris.split_files(tmp_path, "train")
    assert len(validation) == 100 and len(train) == 10 and not set(validation) & set(train)


def test_missing_data_root_and_data_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    with pytest.raises(sources.DataNotFoundError, match="--data-root"):
        sources.load_test_set("paris")
    with pytest.raises(sources.DataNotFoundError, match="paris_eval_gt"):
        sources.load_test_set("paris", data_root=tmp_path)
    with pytest.raises(sources.DataNotFoundError, match="places365_val.txt"):
        sources.load_test_set("places", data_root=tmp_path)
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp_path / "absent"))
    with pytest.raises(sources.DataNotFoundError, match="does not exist"):
        sources.load_test_set("places")


def test_places_folder_layout_uses_the_ten_categories_and_halves_validation(tmp_path):
    val = tmp_path / "places365" / "val"
    for c, category in enumerate(places.CATEGORIES):
        folder = val / (category.replace("_outdoor", "/outdoor"))
        for i in range(4):
            write_photo(folder / f"{category}_{i}.jpg", (40, 40), seed=c * 10 + i)
    write_photo(val / "airfield" / "x.jpg", (40, 40))  # not one of the ten
    test_set = sources.load_test_set("places", data_root=tmp_path, size=32)
    assert len(test_set) == 20  # 2 of 4 per category
    assert not any("airfield" in i for i in test_set.image_ids)
    _, validation = places.category_files(tmp_path, "val")
    validation_stems = {p.stem for files in validation.values() for p in files}
    test_stems = {Path(i).name.rsplit(".", 1)[0] for i in test_set.image_ids}  # stems are unique here
    assert len(validation_stems) == len(test_stems) == 20
    assert validation_stems.isdisjoint(test_stems)
    for category in places.CATEGORIES:  # each category: 2 of its 4 files to each half
        assert sum(s.startswith(f"{category}_") for s in test_stems) == 2


def test_places_official_file_lists(tmp_path):
    root = tmp_path / "places365"
    lines, categories = [], []
    for c, category in enumerate(places.CATEGORIES):
        categories.append(f"/{category[0]}/{category.replace('_outdoor', '/outdoor')} {c}")
        for i in range(2):
            name = f"Places365_val_{c * 2 + i:08d}.jpg"
            write_photo(root / "val_256" / name, (40, 40), seed=c * 2 + i)
            lines.append(f"{name} {c}")
    (root / "categories_places365.txt").write_text("\n".join(categories) + "\n")
    (root / "places365_val.txt").write_text("\n".join(lines) + "\n")
    assert len(sources.load_test_set("places", data_root=tmp_path, size=32)) == 10


def test_places_missing_categories_are_named(tmp_path):
    write_photo(tmp_path / "val" / "beach" / "a.jpg", (40, 40))
    with pytest.raises(sources.DataNotFoundError, match="throne_room"):
        sources.load_test_set("places", data_root=tmp_path)


def test_category_key_normalises_official_names():
    assert places.category_key("/a/apartment_building/outdoor") == "apartment_building_outdoor"
    assert places.category_key("b/beach") == "beach"
    assert places.category_key("wheat-field") == "wheat_field"
