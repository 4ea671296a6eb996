"""The protocol's vocabulary, each word defined once: hole-ratio buckets, metric names and
directions, the metric protocol, and method instance names (NAME@LABEL)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

# LBAM paper, Table 1: hole ratios in four left-open, right-closed buckets
BUCKETS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5))


def bucket_label(bucket: tuple[float, float]) -> str:
    return f"({bucket[0]}, {bucket[1]}]"


BUCKET_ORDER = {bucket_label(b): i for i, b in enumerate(BUCKETS)}
OUTSIDE = "outside (0.1, 0.5]"  # the label of a mask outside every bucket (kept only by by-name pairing)


def bucket_of(hole_ratio: float) -> str | None:
    """The label of the left-open, right-closed bucket holding `hole_ratio`, or None."""
    for low, high in BUCKETS:
        if low < hole_ratio <= high:
            return bucket_label((low, high))
    return None


# Stored per image × mask; mse and ssim_release are what the release protocol pools (reports/protocols.py)
METRICS = ("psnr", "ssim", "l1", "lpips", "mse", "ssim_release")
TABLE_METRICS = ("psnr", "ssim", "l1")  # Table 1's columns
METRIC_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "l1": "mean ℓ1 (%)", "lpips": "LPIPS"}
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "lpips": False}
PROTOCOLS = ("per-image", "release")  # how per-pair values become a table cell


@dataclass(frozen=True)
class MetricProtocol:
    """How images are scored; stored with every result because each choice moves the numbers.
    `name`: how per-pair values become a Table 1 cell (reports/protocols.py); every run stores what
    both protocols need, `name` chooses the one the tables show."""

    target: Literal["composite", "raw"] = "composite"  # official test script: composite
    quantize_8bit: bool = False  # official test script: floats, no rounding
    color: Literal["rgb", "y"] = "rgb"  # official test script: RGB
    name: Literal["per-image", "release"] = "per-image"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_instance(instance: str) -> tuple[str, str | None]:
    """'lbam@no_adv' → ('lbam', 'no_adv'); 'lbam' → ('lbam', None). An instance is a method run
    under a label of its own, so that several option sets of one method sit side by side."""
    method, at, label = instance.partition("@")
    return method, (label if at else None)


def method_of(instance: str) -> str:
    return parse_instance(instance)[0]


CPU_SCALE_LABEL = "CPU-scale weights trained by this suite, not the paper's"
