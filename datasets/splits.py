"""The documented deterministic split rule shared by the Paris and Places adapters."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path


def hash_order(files: Sequence[Path]) -> list[Path]:
    """Files ordered by SHA-256 of their file name (ties by name): stable whatever the folder
    order or file system, and unchanged for a file when others are added or removed."""
    return sorted(files, key=lambda p: (hashlib.sha256(p.name.encode()).hexdigest(), p.name))


def split_validation_test(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """First half of `hash_order` → validation, second half → test (odd counts: one more test)."""
    ordered = hash_order(files)
    half = len(ordered) // 2
    return sorted(ordered[:half]), sorted(ordered[half:])
