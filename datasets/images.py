"""Robust image reading and the test-crop protocol (short side → size, bicubic; centre crop)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from bench.core.errors import BadInput

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Larger images are refused before decoding: 40 Mpx is ≈ 480 MB as float32 RGB.
MAX_PIXELS = 40_000_000


class ImageReadError(ValueError):
    """An image that cannot be used; the message says why."""


class IdCollision(BadInput):
    """Two files would be stored under one id; the message names them."""


def display_name(path: str | Path) -> str:
    """A file name as text that can always be encoded: bytes that are not UTF-8 (which Python keeps
    as surrogates) are shown as \\xNN escapes, so ids stay unique and printable."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """What native code (libjpeg) writes to file descriptor 2 meanwhile, as lines in the list."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def decode_jpeg(path: Path, name: str) -> np.ndarray:
    """A JPEG as uint8 RGB, EXIF orientation applied (OpenCV's IMREAD_COLOR does it). libjpeg only
    warns about corrupt scan data ("Corrupt JPEG data: …"); such files are refused."""
    with captured_native_stderr() as messages:
        data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if data is None:
        raise ImageReadError(f"{name}: unreadable or truncated JPEG")
    damage = [m for m in messages if "Corrupt JPEG" in m or "Premature end" in m]
    if damage:
        raise ImageReadError(f"{name}: damaged JPEG ({damage[0].strip()})")
    return data[..., ::-1]


def decode_other(image: Image.Image, name: str) -> np.ndarray:
    """A PIL image (fully decoded here, which detects truncation) as float32 RGB in [0,1], EXIF
    orientation applied. Grayscale is repeated, alpha dropped, 16-bit scaled by 1/65535."""
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except Exception as error:  # PIL raises many types for broken files
        raise ImageReadError(f"{name}: unreadable or truncated image ({error})") from error
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
    if image.mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def read_rgb(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """An image file as float32 H×W×3 RGB in [0,1], decoded once.

    The size is checked from the header first (`max_pixels`, default MAX_PIXELS); the EXIF
    orientation is honoured, as image viewers do. Truncated, corrupt or damaged files raise
    ImageReadError instead of giving grey blocks."""
    path = Path(path)
    name = display_name(path.name)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Exception as error:  # PIL raises many types for broken files
        raise ImageReadError(f"{name}: unreadable image ({error})") from error
    with image:
        width, height = image.size
        if width * height > limit:
            raise ImageReadError(
                f"{name}: {width}×{height} = {width * height:,} pixels is over the limit of {limit:,}; "
                "downscale it first"
            )
        if image.format == "JPEG":
            return decode_jpeg(path, name).astype(np.float32) / 255.0
        return decode_other(image, name)


def test_crop(rgb: np.ndarray, size: int = 256) -> np.ndarray:
    """Short side resized to `size` (bicubic), centre crop size×size, quantised to uint8."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    if (new_h, new_w) != (h, w):
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    crop = rgb[top : top + size, left : left + size]
    return (np.clip(crop, 0.0, 1.0) * 255).round().astype(np.uint8)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def broken_links(folder: Path) -> list[tuple[str, str]]:
    """Image-named entries below `folder` that are not readable files (symlink loops, dangling
    links), as (name, why) for the skipped list."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_symlink() and not path.is_file():
            found.append((display_name(path.relative_to(folder)), "symlink loop or dangling link"))
    return found


def unique_ids(files: list[Path], root: Path, kind: str = "image") -> list[str]:
    """Ids of `files`: the relative path without the extension, or with it where ids would
    collide (a.png and a.jpg; then also a.png.png beside them). The ids, as shown (undecodable
    bytes as \\xNN escapes), are then proven unique; names that still give one id (an escape
    equal to a real name) are refused with the files named (IdCollision)."""
    relative = [path.relative_to(root) for path in files]
    stems = [display_name(r.with_suffix("").as_posix()) for r in relative]
    full = [display_name(r.as_posix()) for r in relative]
    ids = list(stems)
    for _ in range(len(ids)):  # each round moves at least one more file to its full name
        shared = {i for i, count in Counter(ids).items() if count > 1}
        if not shared:
            return ids
        moved = [f if i in shared else i for i, f in zip(ids, full, strict=True)]
        if moved == ids:
            break
        ids = moved
    check_unique_ids(ids, [os.fsencode(r) for r in relative], kind)
    return ids


def check_unique_ids(ids: list[str], sources: list[object], kind: str) -> None:
    """Refuse ids that two sources share, naming the sources (never the whole list)."""
    owners: dict[str, list[object]] = {}
    for image_id, source in zip(ids, sources, strict=True):
        owners.setdefault(image_id, []).append(source)
    clashes = {i: s for i, s in owners.items() if len(s) > 1}
    if clashes:
        first, names = next(iter(clashes.items()))
        shown = ", ".join(ascii(n) for n in names[:4])
        raise IdCollision(
            f"{len(clashes)} {kind} id(s) are shared by several files, e.g. {first!r} by {shown}; "
            "rename them so that each name is distinct"
        )


def add_to_digest(digest: hashlib._Hash, image_id: str, image: np.ndarray) -> None:
    """One test image's part of its test set's SHA-256: the id, then the uint8 crop."""
    digest.update(image_id.encode("utf-8", "surrogateescape"))
    digest.update(image.tobytes())


@dataclass
class TestSet:
    """Test images as uint8 N×H×W×3 crops with stable ids and the files that were skipped."""

    name: str
    images: np.ndarray
    image_ids: list[str]
    description: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for image_id, image in zip(self.image_ids, self.images, strict=True):
            add_to_digest(digest, image_id, image)
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.image_ids)


def crops_from_files(
    name: str, files: list[Path], root: Path, size: int = 256, description: str = ""
) -> TestSet:
    """Test crops of `files`; a file that cannot be read or is too small is skipped and listed."""
    images, ids, skipped = [], [], []
    for path, image_id in zip(files, unique_ids(files, root), strict=True):
        shown = display_name(path.relative_to(root))
        try:
            rgb = read_rgb(path)
        except (ImageReadError, OSError) as error:
            skipped.append((shown, str(error)))
            continue
        if min(rgb.shape[:2]) < size / 4:  # a crop of it would be mostly interpolation
            skipped.append((shown, f"too small ({rgb.shape[1]}×{rgb.shape[0]})"))
            continue
        if min(rgb.shape[:2]) < size:
            warnings.warn(f"{shown}: short side below {size}, upsampled", stacklevel=2)
        images.append(test_crop(rgb, size))
        ids.append(image_id)
    empty = np.zeros((0, size, size, 3), np.uint8)
    return TestSet(name, np.stack(images) if images else empty, ids, description, skipped)
