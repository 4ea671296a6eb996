"""Test sets read lazily: memory stays bounded whatever the number of images.

A first pass decodes each file once (skipping and listing bad ones exactly as
`crops_from_files`) and hashes the crops as it goes; afterwards a crop is decoded again when the
harness asks for it, and only the last few stay in memory. The crops, ids, order and SHA-256 are
those of the eager `crops_from_files`, so lazy and eager runs resume each other.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import BadInput
from bench.datasets.images import TestSet, add_to_digest, crops_from_files, display_name, unique_ids


def read_crop(path: Path, root: Path, size: int) -> TestSet:
    """The test crop of one file, or the reason it is skipped, by the eager loader's rules."""
    return crops_from_files("", [path], root, size)


class ImageChanged(BadInput):
    """A test image whose file changed after the run recorded its crop."""


def crop_digest(crop: np.ndarray) -> str:
    return hashlib.sha256(crop.tobytes()).hexdigest()


class LazyImages:
    """uint8 size×size×3 crops of `files`, decoded when indexed; the last `keep` are cached. Each
    decoded crop is compared with the SHA-256 recorded in the first pass (`digests`): a file that
    changed meanwhile is refused (ImageChanged), never scored as its new self."""

    def __init__(
        self, files: list[Path], root: Path, size: int, keep: int = 8, digests: list[str] | None = None
    ) -> None:
        self.files, self.root, self.size, self.keep = files, root, size, keep
        self.digests = digests
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:  # as the eager N×H×W×3 array's
        return (len(self.files), self.size, self.size, 3)

    dtype = np.dtype(np.uint8)

    def __getitem__(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        crop = read_crop(self.files[index], self.root, self.size)
        shown = display_name(self.files[index].relative_to(self.root))
        if crop.skipped:  # the file changed since the first pass
            raise ImageChanged(f"{shown} changed during the run and is now unusable ({crop.skipped[0][1]})")
        if self.digests is not None and crop_digest(crop.images[0]) != self.digests[index]:
            raise ImageChanged(
                f"{shown} changed during the run (its crop's SHA-256 is no longer the one recorded); "
                "restore it, or start a new run (new --out) on the folder as it is now"
            )
        self._cache[index] = crop.images[0]
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return crop.images[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def __getstate__(self) -> dict:  # worker processes start with an empty cache
        return {**self.__dict__, "_cache": OrderedDict()}


@dataclass
class StreamedTestSet(TestSet):
    """A TestSet whose images are a LazyImages; its SHA-256 was computed in the first pass."""

    digest: str = ""

    @property
    def sha256(self) -> str:
        return self.digest


def lazy_crops_from_files(
    name: str, files: list[Path], root: Path, size: int = 256, description: str = ""
) -> StreamedTestSet:
    """`crops_from_files` without holding the crops: the same ids, skips and SHA-256."""
    digest = hashlib.sha256()
    kept, ids, skipped, digests = [], [], [], []
    for path, image_id in zip(files, unique_ids(files, root), strict=True):  # ids as the eager loader's
        crop = read_crop(path, root, size)
        skipped.extend(crop.skipped)
        if crop.skipped:
            continue
        kept.append(path)
        ids.append(image_id)
        add_to_digest(digest, image_id, crop.images[0])
        digests.append(crop_digest(crop.images[0]))
    images = LazyImages(kept, root, size, digests=digests)
    return StreamedTestSet(name, images, ids, description, skipped, digest.hexdigest())  # type: ignore[arg-type]
