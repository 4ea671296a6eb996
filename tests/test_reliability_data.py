"""Issue 12, data reading: damaged JPEGs, symlink loops, EXIF orientation, a pixel limit, stems that
collide, 0/1 masks, masks outside every bucket."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from reliability_fixtures import hole_columns, mask_folder, photo_folder, write_photo

from bench.core.errors import DataNotFoundError
from bench.datasets import images as images_module
from bench.datasets.images import ImageReadError, read_rgb, unique_ids
from bench.datasets.masks import load_mask_folder, read_mask_file
from bench.datasets.sources import load_test_set


def jpeg_bytes(seed: int = 0, size: int = 96) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def damaged_jpegs() -> dict[str, bytes]:
    """JPEGs that libjpeg decodes with only a warning: bytes before the end marker, damaged scan data."""
    data = jpeg_bytes()
    extraneous = data[:-2] + b"\x12\x34\x56" * 8 + data[-2:]
    scan = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 20):
        scan[i] = 0xFF if i % 5 == 0 else scan[i] ^ 0x55
    return {"extraneous.jpg": extraneous, "scan.jpg": bytes(scan)}


@pytest.mark.parametrize("name", sorted(damaged_jpegs()))
def test_jpegs_libjpeg_only_warns_about_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(damaged_jpegs()[name])
    (tmp_path / "good.jpg").write_bytes(jpeg_bytes())
    with Image.open(tmp_path / name) as image:
        image.load()  # PIL accepts it: the reason a decoder warning must be caught
    with pytest.raises(ImageReadError, match=f"{name}: damaged JPEG \\(Corrupt JPEG data"):
        read_rgb(tmp_path / name)
    assert read_rgb(tmp_path / "good.jpg").shape == (96, 96, 3)


def test_damaged_jpegs_and_symlink_loops_are_skipped_and_listed(tmp_path):
    photos = photo_folder(tmp_path / "photos", ["good.png"])
    for name, data in damaged_jpegs().items():
        (photos / name).write_bytes(data)
    (photos / "loop.png").symlink_to("loop.png")
    (photos / "sub").mkdir()
    (photos / "sub" / "up").symlink_to("..")  # a directory loop: not followed
    test_set = load_test_set(f"folder:{photos}", size=64)
    assert test_set.image_ids == ["good"]
    skipped = dict(test_set.skipped)
    assert skipped["loop.png"] == "symlink loop or dangling link"
    assert set(skipped) == {"loop.png", *damaged_jpegs()}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied_as_viewers_do(tmp_path, orientation, suffix):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:20, :30] = (255, 0, 0)  # a red corner and a green band: any wrong turn or flip shows
    rgb[:, 50:] = (0, 255, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path, exif=exif, **({"quality": 100} if suffix == ".jpg" else {}))
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), np.float32) / 255
    got = read_rgb(path)
    assert got.shape == expected.shape == ((40, 60, 3) if orientation < 5 else (60, 40, 3))
    np.testing.assert_allclose(got, expected, atol=2 / 255)


def test_a_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    write_photo(tmp_path / "big.png", 0, (200, 300))
    with pytest.raises(ImageReadError, match="big.png: 300×200 = 60,000 pixels is over the limit of 50,000"):
        read_rgb(tmp_path / "big.png", max_pixels=50_000)
    decoded = []
    monkeypatch.setattr(images_module, "decode_other", lambda *a: decoded.append(a))
    monkeypatch.setattr(images_module, "MAX_PIXELS", 50_000)
    photos = photo_folder(tmp_path / "photos", ["small.png"])
    (tmp_path / "big.png").rename(photos / "big.png")
    with pytest.raises(ImageReadError):
        read_rgb(photos / "big.png")
    assert decoded == []  # refused from the header alone


def test_a_large_sparse_png_is_refused_with_the_default_limit(tmp_path):
    Image.new("1", (10000, 10000)).save(tmp_path / "huge.png")  # a few KB on disk
    assert (tmp_path / "huge.png").stat().st_size < 100_000
    with pytest.raises(ImageReadError, match="10000×10000 = 100,000,000 pixels is over the limit"):
        read_rgb(tmp_path / "huge.png")


def test_ids_keep_the_extension_only_where_stems_collide(tmp_path):
    files = [tmp_path / n for n in ("a.jpg", "a.png", "b.png", "sub/a.png")]
    assert unique_ids(files, tmp_path) == ["a.jpg", "a.png", "b", "sub/a"]


def test_an_empty_folder_path_is_refused_not_the_current_folder():
    with pytest.raises(DataNotFoundError, match="needs a path"):
        load_test_set("folder:")
    with pytest.raises(DataNotFoundError, match="needs a path"):
        load_test_set("folder:  ")


def test_zero_one_valued_mask_images_read_as_masks(tmp_path):
    hole = hole_columns(16) // 255  # values 0 and 1, 1 = hole
    Image.fromarray(hole).save(tmp_path / "m.png")
    known = read_mask_file(tmp_path / "m.png", 64)
    np.testing.assert_array_equal(known, 1 - hole)


def test_masks_outside_every_bucket_are_listed(tmp_path):
    folder = mask_folder(tmp_path / "masks", (9, 16, 22, 29, 3, 40))
    mask_set = load_mask_folder(folder, 64, per_bucket=1)
    assert mask_set.mask_ids == ["m0", "m1", "m2", "m3"]
    assert dict(mask_set.skipped) == {
        "m4": "hole ratio 0.047 is outside every bucket",
        "m5": "hole ratio 0.625 is outside every bucket",
    }


def test_non_utf8_names_hash_and_list(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    write_photo(os.fsencode(folder) + b"/\xff.png", 0)
    (Path(os.fsdecode(os.fsencode(folder) + b"/\xfe.png"))).write_bytes(b"not an image")
    test_set = load_test_set(f"folder:{folder}", size=64)
    assert test_set.image_ids == ["\\xff"] and len(test_set.sha256) == 64
    assert [name for name, _ in test_set.skipped] == ["\\xfe.png"]
    "\n".join(f"{n}: {why}" for n, why in test_set.skipped).encode()  # printable as UTF-8


def test_a_huge_mask_is_skipped_from_its_header(tmp_path):
    folder = mask_folder(tmp_path / "masks")
    Image.new("1", (10000, 10000)).save(folder / "huge.png")
    assert "over the limit of 40,000,000" in dict(load_mask_folder(folder, 64).skipped)["huge.png"]
