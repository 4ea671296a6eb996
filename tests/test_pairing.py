"""--pairing cross | per-image | by-name: the documented counts, determinism, unpaired files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.core.vocabulary import BUCKETS, bucket_label
from bench.datasets.images import TestSet as ImageSet
from bench.datasets.masks import MaskSet
from bench.evaluation.pairing import PairingError, choose_pairs, sample_pairs_among
from bench.run import main

TINY = ["--size", "64", "--no-progress", "--methods", "telea", "--workers", "1"]


def images_named(ids: list[str]) -> ImageSet:
    return ImageSet("t", np.zeros((len(ids), 4, 4, 3), np.uint8), ids)


def mask_set(per_bucket: int) -> MaskSet:
    labels = [bucket_label(b) for b in BUCKETS for _ in range(per_bucket)]
    ids = [f"m{i}" for i in range(len(labels))]
    return MaskSet("t", np.ones((len(ids), 4, 4), np.float32), ids, [0.15] * len(ids), labels)


def test_cross_pairs_every_image_with_every_mask_once():
    pairing = choose_pairs("cross", images_named(["a", "b", "c"]), mask_set(2))
    assert len(pairing.pairs) == 3 * 8
    assert set(pairing.pairs) == {(i, m) for i in range(3) for m in range(8)}


@pytest.mark.parametrize("per_image", [1, 3])
def test_per_image_gives_k_distinct_masks_of_each_bucket_per_image(per_image):
    images, masks = images_named([f"img{i}" for i in range(6)]), mask_set(5)
    pairs = choose_pairs("per-image", images, masks, per_image, seed=0).pairs
    assert len(pairs) == 6 * 4 * per_image
    for i in range(6):
        mine = [m for image, m in pairs if image == i]
        assert len(set(mine)) == len(mine) == 4 * per_image
        for bucket in BUCKETS:
            assert sum(masks.buckets[m] == bucket_label(bucket) for m in mine) == per_image


def test_per_image_masks_depend_on_seed_and_image_id_not_on_order():
    ids = [f"img{i}" for i in range(8)]
    masks = mask_set(10)

    def by_id(order: list[str], seed: int) -> dict[str, list[str]]:
        pairs = choose_pairs("per-image", images_named(order), masks, 2, seed).pairs
        chosen: dict[str, list[str]] = {}
        for i, m in pairs:
            chosen.setdefault(order[i], []).append(masks.mask_ids[m])
        return chosen

    forward = by_id(ids, 0)
    assert forward == by_id(ids[::-1], 0) == by_id(ids, 0)
    assert by_id(ids[:3], 0) == {k: forward[k] for k in ids[:3]}
    assert by_id(ids, 1) != forward
    assert len({tuple(v) for v in forward.values()}) > 1  # images do not all get the same masks


def test_per_image_needs_enough_masks_per_bucket():
    with pytest.raises(PairingError, match="fewer than --masks-per-image 3"):
        choose_pairs("per-image", images_named(["a"]), mask_set(2), 3)


def test_by_name_pairs_matching_names_and_lists_the_rest():
    images = images_named(["a", "sub/b", "c"])
    masks = MaskSet("t", np.ones((3, 4, 4), np.float32), ["b", "a", "d"], [0.3] * 3, ["x"] * 3)
    pairing = choose_pairs("by-name", images, masks)
    assert pairing.pairs == [(0, 1), (1, 0)]
    assert pairing.unpaired_images == ["c"] and pairing.unpaired_masks == ["d"]
    with pytest.raises(PairingError, match="two test images are named 'b'"):
        choose_pairs("by-name", images_named(["x/b", "y/b"]), masks)
    with pytest.raises(PairingError, match="no test image has a mask"):
        choose_pairs("by-name", images_named(["q"]), masks)


def test_grid_samples_are_scored_pairs_with_different_images():
    masks = mask_set(3)
    pairs = choose_pairs("per-image", images_named([f"i{k}" for k in range(8)]), masks, 1).pairs
    chosen = sample_pairs_among(pairs, masks, 2)
    assert len(chosen) == 8 and set(chosen) <= set(pairs)
    assert len({i for i, _ in chosen}) == 8


def write_object_removal_layout(root: Path) -> None:
    """The paper's Figure 6 layout: photos and same-named masks (white = hole) of any hole size."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in ("x", "y", "z"):
        photo = rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)
        Image.fromarray(photo).save(root / "images" / f"{name}.jpg")
    for name, hole in (("x", 6), ("y", 40), ("w", 20)):  # x: a 0.9 % hole, outside the buckets
        mask = np.zeros((64, 64), np.uint8)
        mask[10 : 10 + hole, 10 : 10 + hole] = 255
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")


def test_by_name_run_scores_the_named_pairs_and_records_the_unpaired(tmp_path, capsys):
    write_object_removal_layout(tmp_path / "data")
    out = tmp_path / "run"
    arguments = ["--dataset", f"folder:{tmp_path / 'data' / 'images'}", "--pairing", "by-name"]
    masks = ["--masks", f"folder:{tmp_path / 'data' / 'masks'}"]
    assert main([*TINY, *arguments, *masks, "--out", str(out), "--report", str(tmp_path / "r.html")]) == 0
    scores = pd.read_csv(out / "scores.csv", dtype={"image_id": str, "mask_id": str})
    assert sorted(set(zip(scores.image_id, scores.mask_id, strict=True))) == [("x", "x"), ("y", "y")]
    pairing = json.loads((out / "run.json").read_text())["pairing"]
    assert pairing["name"] == "by-name" and pairing["pairs"] == 2
    assert pairing["unpaired_images"] == ["z"] and pairing["unpaired_masks"] == ["w"]
    page = (tmp_path / "r.html").read_text()
    assert "by-name (image x with mask x; unpaired: 1 images, 1 masks): 2 pairs" in page
    assert "unpaired image: z" in capsys.readouterr().err
    assert main([*TINY, *arguments, "--out", str(tmp_path / "gen"), "--report", ""]) == 2
    assert "--pairing by-name needs --masks folder:PATH" in capsys.readouterr().err


def test_per_image_run_has_images_times_buckets_pairs_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    extra = ["--pairing", "per-image", "--masks-per-bucket", "2", "--masks-per-image", "1"]
    assert main([*TINY, *extra, "--out", str(out), "--report", ""]) == 0
    latency = pd.read_csv(out / "latency.csv")
    assert len(latency) == 8 * 4 and latency.groupby("image_id").size().eq(4).all()
    assert json.loads((out / "run.json").read_text())["config"]["pairing"] == "per-image"
    assert main([*TINY, "--masks-per-bucket", "2", "--out", str(out), "--report", ""]) == 2
    assert "other settings (pairing)" in capsys.readouterr().err
