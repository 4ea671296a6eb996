"""Readers of the reference state-dict listings kept in tests/data/reference (key, shape, dtype per line)."""

from __future__ import annotations

from pathlib import Path

import torch

REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


def read_layout(filename: str) -> dict[str, str]:
    """{key: shape} of a state-dict listing; shapes as '64x3x4x4' or 'scalar'."""
    path = REFERENCE / filename
    rows = [
        line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if not line.startswith("#")
    ]
    return {key: shape for key, shape, _dtype in rows}


def layout_of(state: dict[str, torch.Tensor]) -> dict[str, str]:
    return {k: "scalar" if v.ndim == 0 else "x".join(map(str, v.shape)) for k, v in state.items()}
