"""Robust image reading and the test-crop protocol (short side → size, bicubic; centre crop)."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ImageReadError(ValueError):
    """An image that cannot be used; the message says why."""


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as float32 H×W×3 RGB in [0,1].

    Grayscale is repeated to three channels, alpha is dropped (as PIL's convert('RGB')), 16-bit is
    scaled by 1/65535. Truncated or corrupt files raise ImageReadError instead of giving grey
    blocks (PIL's full decode detects what OpenCV only warns about)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # PIL raises many types for broken files
        raise ImageReadError(f"{path.name}: unreadable or truncated image ({error})") from error
    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ImageReadError(f"{path.name}: OpenCV cannot decode this file")
    if data.dtype == np.uint8:
        scaled = data.astype(np.float32) / 255.0
    elif data.dtype == np.uint16:
        scaled = data.astype(np.float32) / 65535.0
    elif np.issubdtype(data.dtype, np.floating):
        scaled = np.clip(data.astype(np.float32), 0.0, 1.0)
    else:
        raise ImageReadError(f"{path.name}: unsupported pixel type {data.dtype}")
    if scaled.ndim == 2:
        return np.repeat(scaled[..., None], 3, axis=2)
    channels = scaled.shape[2]
    if channels == 1:
        return np.repeat(scaled, 3, axis=2)
    if channels == 2:  # gray + alpha
        return np.repeat(scaled[..., :1], 3, axis=2)
    if channels in (3, 4):
        return np.ascontiguousarray(scaled[..., 2::-1])  # BGR(A) → RGB
    raise ImageReadError(f"{path.name}: unsupported channel count {channels}")


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
            digest.update(image_id.encode())
            digest.update(image.tobytes())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.image_ids)


def crops_from_files(
    name: str, files: list[Path], root: Path, size: int = 256, description: str = ""
) -> TestSet:
    """Test crops of `files`; a file that cannot be read or is too small is skipped and listed."""
    images, ids, skipped = [], [], []
    for path in files:
        try:
            rgb = read_rgb(path)
        except ImageReadError as error:
            skipped.append((str(path.relative_to(root)), str(error)))
            continue
        if min(rgb.shape[:2]) < size / 4:  # a crop of it would be mostly interpolation
            skipped.append((str(path.relative_to(root)), f"too small ({rgb.shape[1]}×{rgb.shape[0]})"))
            continue
        if min(rgb.shape[:2]) < size:
            warnings.warn(f"{path.name}: short side below {size}, upsampled", stacklevel=2)
        images.append(test_crop(rgb, size))
        ids.append(path.relative_to(root).with_suffix("").as_posix())
    empty = np.zeros((0, size, size, 3), np.uint8)
    return TestSet(name, np.stack(images) if images else empty, ids, description, skipped)
