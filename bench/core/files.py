"""Small file utilities shared by every unit: atomic writes, JSON, digests, safe file names."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any


def process_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see half. The file
    gets the mode a plain open() would give (the temporary file is owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, suffix=".tmp", newline="", errors="surrogateescape"
    ) as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.chmod(temporary, 0o666 & ~process_umask())
    os.replace(temporary, path)


def unwritable(folder: Path) -> Path | None:
    """The folder that stops this process writing in `folder` (made with its missing parents if
    needed): its first existing ancestor, when that is a file or read-only; None when it can."""
    folder = Path(folder).absolute()
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    return None if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK) else existing


def full_disk(error: BaseException, folder: Path, needed: int = 0) -> str | None:
    """'the disk holding FOLDER is full (N bytes free)' when a failed write ran out of space: the
    error says so (ENOSPC, EDQUOT), or a library hid it (torch.save raises a RuntimeError) and fewer
    than `needed` bytes are free there; None otherwise."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    said = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    if said or free < needed:
        return f"the disk holding {folder} is full ({free:,} bytes free)"
    return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """SHA-256 of a file; of a folder, over its files' relative names and contents in sorted order."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    return sha256_files(path, sorted(p for p in path.rglob("*") if p.is_file()))


def sha256_files(root: Path, files: list[Path]) -> str:
    """SHA-256 over `files`' names relative to `root` and their contents, in the given order."""
    digest = hashlib.sha256()
    for item in files:
        digest.update(str(item.relative_to(root)).encode() + b"\0" + file_digest(item).encode())
    return digest.hexdigest()


def safe_name(text: str) -> str:
    """A file-name-safe form of a method, image or mask name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)
