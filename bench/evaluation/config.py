"""What one evaluation run is: RunConfig (every setting, recorded in run.json) and which settings
a resumed run folder must share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.core.errors import BadInput
from bench.core.vocabulary import MetricProtocol


class RunError(BadInput):
    """A command line that cannot be carried out; the message says why."""


# Settings that must be equal for a run folder to be resumed (methods may be added).
RESUMABLE_KEYS = ("dataset", "masks", "masks_per_bucket", "size", "seed", "protocol", "test_crop")


# Settings added later, with the value a run.json without them was made with.
SCALE_KEYS = {"pairing": "cross", "masks_per_image": 1, "save_outputs": False}


@dataclass
class RunConfig:
    methods: list[str]
    dataset: str = "demo"
    data_root: str | None = None
    masks: str = "free_form"
    masks_per_bucket: int = 2
    size: int = 256
    seed: int = 0
    device: str = "cpu"
    checkpoints: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=lambda: MetricProtocol().as_dict())
    lpips_weights: str | None = None
    samples_per_bucket: int = 2
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    allow_untrained: bool = False
    batch_size: int = 1  # latency is measured at batch 1 unless this is raised
    test_crop: str = "centre"  # or "release": datasets/release_crop.py
    pairing: str = "cross"
    masks_per_image: int = 1  # masks of each bucket per image under the per-image pairing
    save_outputs: bool = False
    predictions: dict[str, str] = field(default_factory=dict)  # method name → folder of outputs
    workers: int = 0  # processes per CPU method; 0: every core for classical methods
