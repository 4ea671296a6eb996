"""One table of data sources (datasets/sources.py) for every reader: the eager and lazy test
loaders, the release crop and training see the same files, in the same order, under unique ids,
also where two files share a stem (a.png, a.jpg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import sources
from bench.datasets.lazy import StreamedTestSet
from bench.datasets.release_crop import load_release_test_set
from bench.datasets.training import training_sources

COLLIDING = ["a.jpg", "a.png", "b.png", "sub/a.png"]
IDS = ["a.jpg", "a.png", "b", "sub/a"]


def photos(folder: Path, names: list[str]) -> None:
    for seed, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        rgb = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / name, quality=95)


def paris_with_colliding_stems(root: Path) -> None:
    photos(root / "paris" / "paris_eval_gt", COLLIDING)
    photos(root / "paris" / "paris_train_original", [f"{i:05d}.png" for i in range(101)])


@pytest.mark.parametrize("spec", ["folder", "paris"])
def test_every_reader_gives_colliding_stems_their_own_ids(spec, tmp_path):
    if spec == "folder":
        photos(tmp_path / "photos", COLLIDING)
        spec, root, prefix = f"folder:{tmp_path / 'photos'}", None, ""
    else:
        paris_with_colliding_stems(tmp_path)
        root, prefix = tmp_path, "paris_eval_gt/"
    expected = [prefix + i for i in IDS]
    assert sources.data_source(spec, root).ids == expected
    centre = sources.load_test_set(spec, root, size=32)  # lazy for a folder, eager for paris
    assert isinstance(centre, StreamedTestSet) == spec.startswith("folder:")
    assert centre.image_ids == expected
    release = load_release_test_set(spec, root, 32, seed=0)
    assert release.image_ids == expected and release.name == centre.name
    assert not np.array_equal(release.images[0], centre.images[0])  # another crop of the same file


def test_training_reads_its_split_from_the_same_table(tmp_path):
    photos(tmp_path / "photos", COLLIDING)
    ids, loaders = training_sources(f"folder:{tmp_path / 'photos'}")
    assert ids == [str(tmp_path / "photos" / n) for n in COLLIDING] and len(set(ids)) == 4
    assert loaders[1]().shape == (40, 48, 3)
    paris_with_colliding_stems(tmp_path)
    ids, _ = training_sources("paris", tmp_path)
    assert len(ids) == 1 and Path(ids[0]).parent.name == "paris_train_original"  # 101 − 100 validation
    ids, _ = training_sources("demo")
    assert not set(ids) & set(sources.data_source("demo").ids)  # disjoint from the demo test photos


@pytest.mark.parametrize(
    ("spec", "split", "message"),
    [
        ("imagenet", "test", "unknown data set 'imagenet'; use one of demo, folder:PATH, paris, places"),
        ("folder:", "test", "needs a path"),
        ("folder:/nonexistent/photos", "train", "image folder /nonexistent/photos does not exist"),
        ("demo", "val", "no validation split"),
    ],
)
def test_one_dispatch_refuses_for_every_reader(spec, split, message):
    with pytest.raises(sources.DataNotFoundError, match=message):
        sources.data_source(spec, split=split)
    if split == "test":
        with pytest.raises(sources.DataNotFoundError, match=message):
            load_release_test_set(spec, None, 32, seed=0)
    if split == "train":
        with pytest.raises(sources.DataNotFoundError, match=message):
            training_sources(spec)
