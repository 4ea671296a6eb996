"""Predictions are read as stored and never overwritten (issue 20, bugs 4 and 10, and the silent
acceptances): a run refuses any overlap of what it reads and writes; prediction files are never
EXIF-rotated; greyscale, translucent, 8-bit-in-16-bit and out-of-range float files are refused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.core.errors import MethodError
from bench.evaluation.predictions import Predictions, read_prediction
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--workers", "1", "--report", ""]


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".lock"):
        digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("saved") / "run"
    assert main([*TINY, "--methods", "telea", "--save-outputs", "--out", str(run_dir)]) == 0
    return run_dir


LAYOUTS = {  # (predictions folder, run folder), relative to the saved run
    "own outputs": ("outputs/telea", "."),
    "run folder itself": (".", "."),
    "run inside predictions": ("outputs/telea", "outputs/telea/again"),
    "through ..": ("outputs/telea", "outputs/../outputs/telea/.."),
    "through a link": ("link/telea", "."),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_save_outputs_refuses_every_overlap_of_reads_and_writes(saved_run, layout, capsys):
    (saved_run / "link").unlink(missing_ok=True)
    (saved_run / "link").symlink_to(saved_run / "outputs")
    before = tree_digest(saved_run)
    predictions, out = (saved_run / p for p in LAYOUTS[layout])
    arguments = ["--methods", f"predictions:{predictions}", "--save-outputs", "--out", str(out)]
    assert main([*TINY, *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --predictions predictions@") and "overlaps the run folder" in error
    assert tree_digest(saved_run) == before


def test_a_dataset_folder_holding_the_report_is_refused(tmp_path, capsys):
    Image.new("RGB", (64, 64), "red").save(tmp_path / "x.png")
    arguments = ["--dataset", f"folder:{tmp_path}", "--out", str(tmp_path.parent / "elsewhere")]
    assert main([*TINY[:-2], "--methods", "telea", *arguments, "--report", str(tmp_path / "r.html")]) == 2
    assert "overlaps the report" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def exif_png(path: Path, pixels: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_prediction_files_are_never_exif_rotated(tmp_path, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    exif_png(tmp_path / "a__m.png", pixels, orientation)
    assert Image.open(tmp_path / "a__m.png").getexif()[0x0112] == orientation
    read = read_prediction(tmp_path / "a__m.png", (8, 8))
    np.testing.assert_array_equal(read, pixels.astype(np.float32) / 255)


def hostile_files(folder: Path) -> dict[str, str]:
    """A file of each kind that must be refused, with the words of its refusal."""
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 256, (8, 8, 3), dtype=np.uint16)
    cv2.imwrite(str(folder / "grey__m.png"), rng.integers(0, 256, (8, 8), dtype=np.uint8))
    cv2.imwrite(str(folder / "bits__m.png"), rgb16)  # 8-bit values in a 16-bit file
    cv2.imwrite(str(folder / "float__m.tiff"), rng.uniform(0, 3, (8, 8, 3)).astype(np.float32))
    cv2.imwrite(str(folder / "nan__m.tiff"), np.full((8, 8, 3), np.nan, np.float32))
    rgba = np.dstack([rng.integers(0, 256, (8, 8, 3)), np.full((8, 8), 128)]).astype(np.uint8)
    cv2.imwrite(str(folder / "alpha__m.png"), rgba)
    cv2.imwrite(str(folder / "size__m.png"), rng.integers(0, 256, (9, 8, 3), dtype=np.uint8))
    (folder / "junk__m.png").write_bytes(os.urandom(64))
    return {
        "grey": "greyscale",
        "bits": "16-bit file holding only values up to 255",
        "float": "float values outside [0, 1]",
        "nan": "float values outside [0, 1]",
        "alpha": "translucent",
        "size": "mis-sized",
        "junk": "unreadable",
    }


def test_every_unusable_prediction_is_listed_before_scoring(tmp_path):
    expected = hostile_files(tmp_path)
    problems = Predictions("p", tmp_path).problems([(name, "m") for name in expected], 8)
    assert len(problems) == len(expected)
    for (name, words), problem in zip(expected.items(), problems, strict=True):
        assert words in problem and f"{name}__m" in problem and "\n" not in problem
    with pytest.raises(MethodError, match="greyscale"):
        read_prediction(tmp_path / "grey__m.png", (8, 8))


def test_valid_16_bit_and_float_predictions_keep_their_precision(tmp_path):
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep[..., ::-1])
    np.testing.assert_array_equal(read_prediction(tmp_path / "deep.png", (8, 8)), deep / np.float32(65535))
    exact = rng.uniform(0, 1, (8, 8, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "f.tiff"), exact[..., ::-1])
    np.testing.assert_array_equal(read_prediction(tmp_path / "f.tiff", (8, 8)), exact)


def test_an_empty_predictions_path_is_refused(capsys):
    assert main([*TINY, "--methods", "predictions:"]) == 2
    assert "needs a path" in capsys.readouterr().err


NAMES = ["lbam", "a$b", "$x^$"]  # LBAM-like names and mathtext


def test_predictions_named_like_lbam_or_mathtext_finish_and_render(saved_run, tmp_path):
    folder = saved_run / "outputs" / "telea"
    arguments = [item for name in NAMES for item in ("--predictions", f"{name}={folder}")]
    out, report = tmp_path / "run", tmp_path / "report" / "index.html"
    flags = [*TINY[:-2], "--report", str(report), "--out", str(out)]
    assert main([*flags, "--methods", "telea", *arguments]) == 0
    provenance = json.loads((out / "run.json").read_text())
    assert provenance["status"] == "complete" and provenance["figures"] == {}  # no intermediates
    assert set(NAMES) <= set(provenance["methods"]) and report.is_file()
