"""Small generated inputs shared by the reliability tests: photo folders, mask folders, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from bench.run import main

SIZE = 64


def write_photo(path: Path | bytes, seed: int, size: tuple[int, int] = (72, 80)) -> np.ndarray:
    """A smooth random photo (so fills differ by method), saved as PNG or JPEG by extension."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(coarse).resize(size[::-1], Image.BICUBIC))
    name = os.fsdecode(path)
    Image.fromarray(rgb).save(name, format="JPEG" if name.lower().endswith(".jpg") else "PNG")
    return rgb


def photo_folder(folder: Path, names: list[str], size: tuple[int, int] = (72, 80)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        write_photo(folder / name, seed, size)
    return folder


def hole_columns(width: int, size: int = SIZE) -> np.ndarray:
    """A mask image in the NVIDIA layout (uint8, 255 = hole) with the first `width` columns a hole."""
    hole = np.zeros((size, size), np.uint8)
    hole[:, :width] = 255
    return hole


def mask_folder(folder: Path, widths: tuple[int, ...] = (9, 16, 22, 29)) -> Path:
    """One mask per width; the defaults give hole ratios 0.14, 0.25, 0.34, 0.45 (one per bucket)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, width in enumerate(widths):
        Image.fromarray(hole_columns(width)).save(folder / f"m{index}.png")
    return folder


def run_cli(out: Path, *extra: str, report: str = "") -> int:
    """bench.run in-process on the tiny protocol (1 mask per bucket, 64 px, no report by default)."""
    return main(
        [
            "--size",
            str(SIZE),
            "--masks-per-bucket",
            "1",
            "--no-progress",
            "--out",
            str(out),
            "--report",
            report,
        ]
        + list(extra)
    )


def one_line_error(err: str) -> str:
    """The error line of a refused command, checking that it is the last line and no traceback."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err
    return last
