"""An image that changes during a run is refused, never scored as its new self (issue 20, bug 5):
the lazy loader compares every decoded crop with the SHA-256 recorded in its first pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets.images import list_images
from bench.datasets.lazy import ImageChanged, lazy_crops_from_files
from bench.evaluation import session
from bench.run import main


def write_photos(folder: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return list_images(folder)


CHANGES = {
    "a few pixels": lambda a: np.concatenate([255 - a[:4], a[4:]]),  # the crop's top rows move
    "another photo": lambda a: a[::-1].copy(),
    "brighter": lambda a: np.clip(a.astype(int) + 40, 0, 255).astype(np.uint8),
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_file_is_refused_when_its_crop_is_decoded_again(tmp_path, seed, change):
    files = write_photos(tmp_path, 4, seed)
    test_set = lazy_crops_from_files("t", files, tmp_path, size=32)
    test_set.images._cache.clear()
    victim = int(np.random.default_rng(seed).integers(0, len(files)))
    pixels = np.asarray(Image.open(files[victim]))
    Image.fromarray(CHANGES[change](pixels)).save(files[victim])
    for index in range(len(files)):
        if index == victim:
            with pytest.raises(ImageChanged, match=f"p{victim}.png changed during the run"):
                test_set.images[index]
        else:
            assert test_set.images[index].shape == (32, 32, 3)


def test_a_file_made_unreadable_is_refused_as_changed(tmp_path):
    files = write_photos(tmp_path, 2, 0)
    test_set = lazy_crops_from_files("t", files, tmp_path, size=32)
    test_set.images._cache.clear()
    files[1].write_bytes(b"not an image")
    with pytest.raises(ImageChanged, match="p1.png changed during the run and is now unusable"):
        test_set.images[1]


def test_a_run_whose_image_changes_between_methods_stops_with_exit_2(tmp_path, monkeypatch, capsys):
    files = write_photos(tmp_path / "photos", 3, 1)
    scored = session.evaluate_method

    def then_change(method, test_set, *args, **kwargs):
        reused = scored(method, test_set, *args, **kwargs)
        test_set.images._cache.clear()
        Image.open(files[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(files[0])
        return reused

    monkeypatch.setattr(session, "evaluate_method", then_change)
    out = tmp_path / "run"
    arguments = ["--dataset", f"folder:{tmp_path / 'photos'}", "--methods", "telea,ns", "--out", str(out)]
    flags = ["--size", "32", "--masks-per-bucket", "1", "--no-progress", "--workers", "1", "--report", ""]
    assert main([*arguments, *flags]) == 2
    assert "p0.png changed during the run" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # never "complete"
