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


FLOAT32_EPS = torch.finfo(torch.float32).eps


def reordering_tolerance(net: torch.nn.Module, output: torch.Tensor) -> float:
    """How far two float32 evaluations of one network may differ when their kernels sum in other
    orders (oneDNN picks blockings by batch size and CPU ISA: AVX-512, AVX2, NEON). Each rounding
    errs by at most eps·|partial sum|, and n rounding errors of random sign grow like √n
    (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §2.8 and §3.1), so along the
    network they add up over the fan-ins of its layers: 8·eps·√(Σ fan-in)·max|output|, relative to
    the output's own scale (never a value one machine gave)."""
    fan_in = sum(p[0].numel() for n, p in net.named_parameters() if n.endswith("weight") and p.ndim >= 2)
    return 8 * FLOAT32_EPS * (fan_in**0.5) * max(float(output.abs().max()), 1.0)
