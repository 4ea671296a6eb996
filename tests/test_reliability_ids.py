"""Ids are proven unique after they are built (issue 20, bug 2): images, masks, predictions and
by-name pairing, on generated folders of colliding names (extensions, nested extensions, escapes
of undecodable bytes that equal real names)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.errors import BadInput
from bench.datasets.images import IdCollision, display_name, unique_ids
from bench.datasets.images import TestSet as Crops
from bench.datasets.masks import MaskSet
from bench.evaluation.pairing import PairingError, by_name_pairs
from bench.evaluation.predictions import Predictions, prediction_name

PARTS = ["a", "b", "a.png", "a.jpg", "caf\\xe9", os.fsdecode(b"caf\xe9"), "sub/a", "sub/a.png", "x__y"]
SUFFIXES = [".png", ".jpg", ".bmp"]


def generated_names(rng: np.random.Generator) -> list[str]:
    count = int(rng.integers(2, 7))
    names = {str(rng.choice(PARTS)) + str(rng.choice(SUFFIXES)) for _ in range(count)}
    return sorted(names)


def shown(path: Path) -> str:
    return display_name(path.as_posix())


def make_files(root: Path, names: list[str]) -> list[Path]:
    files = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        files.append(path)
    return sorted(files)


@pytest.mark.parametrize("seed", range(40))
def test_generated_names_give_unique_ids_or_a_refusal_naming_the_files(tmp_path, seed):
    files = make_files(tmp_path, generated_names(np.random.default_rng(seed)))
    try:
        ids = unique_ids(files, tmp_path)
    except IdCollision as error:
        message = str(error)
        assert isinstance(error, BadInput) and "\n" not in message and len(message) < 1500
        assert message.count("b'") >= 2  # the files, as unambiguous bytes
        return
    assert len(set(ids)) == len(ids) == len(files)
    relative = [f.relative_to(tmp_path) for f in files]
    for file_id, path in zip(ids, relative, strict=True):  # the stem, or the full name where needed
        stem, full = shown(path.with_suffix("")), shown(path)
        others = [p for p in relative if p != path]
        assert file_id == stem or (
            file_id == full and any(stem in (shown(o.with_suffix("")), shown(o)) for o in others)
        )


def test_a_nested_extension_beside_a_collision_stays_distinct(tmp_path):
    files = make_files(tmp_path, ["a.png", "a.jpg", "a.png.png", "b.png"])
    assert unique_ids(files, tmp_path) == ["a.jpg", "a.png", "a.png.png", "b"]


def test_an_escape_equal_to_a_real_name_is_refused(tmp_path):
    files = make_files(tmp_path, [os.fsdecode(b"caf\xe9.png"), "caf\\xe9.png"])
    with pytest.raises(IdCollision, match=r"caf\\\\xe9"):
        unique_ids(files, tmp_path, "mask")


def sets(image_ids: list[str], mask_ids: list[str]) -> tuple[Crops, MaskSet]:
    images = np.zeros((len(image_ids), 4, 4, 3), np.uint8)
    masks = np.ones((len(mask_ids), 4, 4), np.float32)
    buckets = ["(0.1, 0.2]"] * len(mask_ids)
    return Crops("t", images, image_ids), MaskSet("m", masks, mask_ids, [0.15] * len(mask_ids), buckets)


def test_by_name_masks_with_two_extensions_for_one_image_are_refused_by_name():
    with pytest.raises(PairingError, match=r"'a' matches 2 masks \('a.jpg', 'a.png'\)"):
        by_name_pairs(*sets(["a", "b"], ["a.jpg", "a.png", "b"]))


def test_by_name_pairs_an_image_with_its_extension_kept_and_a_mask_that_kept_its_own():
    pairing = by_name_pairs(*sets(["a.png", "sub/c"], ["a.jpg", "c", "d.png", "d.jpg"]))
    assert pairing.pairs == [(0, 0), (1, 1)] and pairing.unpaired_masks == ["d.png", "d.jpg"]


def test_two_images_for_one_mask_are_refused():
    with pytest.raises(PairingError, match="two test images are named 'a'"):
        by_name_pairs(*sets(["a.png", "a.jpg"], ["a"]))


def test_prediction_names_that_coincide_are_listed_not_scored(tmp_path):
    pairs = [("a__b", "c"), ("a", "b__c"), ("d", "e")]
    for image_id, mask_id in pairs:
        Image.new("RGB", (8, 8)).save(tmp_path / prediction_name(image_id, mask_id))
    Image.new("RGB", (8, 8)).save(tmp_path / prediction_name("d", "e", ".tif"))
    problems = Predictions("p", tmp_path).problems(pairs, 8)
    assert any("a__b__c.png is the file of 2 pairs" in p for p in problems)
    assert any("d__e.png, d__e.tif are all files of one pair" in p for p in problems)
