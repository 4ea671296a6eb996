"""What one evaluation run is: RunConfig (every setting, recorded in run.json) and which settings
a resumed run folder must share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput
from bench.core.vocabulary import MetricProtocol, method_of


class RunError(BadInput):
    """A command line that cannot be carried out; the message says why."""


# Settings that must be equal for a run folder to be resumed (methods may be added).
RESUMABLE_KEYS = ("dataset", "masks", "masks_per_bucket", "size", "seed", "protocol", "test_crop")


# Settings added later, with the value a run.json without them was made with.
SCALE_KEYS = {"pairing": "cross", "masks_per_image": 1, "save_outputs": False}


@dataclass
class RunConfig:
    """Every setting of `python -m bench.run`, one field per option; checked when made (the
    command line's one-line errors, BadInput). `methods`: names, NAME@LABEL instances, 'all', or
    predictions:PATH (a folder of outputs to score); a comma-separated string is split.
    `checkpoints`: method → file, folder or catalogue name (methods/released.py, looked up in
    `weights_dir`), stored as the resolved path. `device`: 'auto' becomes cuda or cpu."""

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
    weights_dir: str | None = None  # where catalogue names of `checkpoints` are looked up

    def __post_init__(self) -> None:
        from bench.evaluation.checks import check_run_config, typed_options
        from bench.methods.base import resolve_device
        from bench.methods.registry import checkpoint_path

        if isinstance(self.methods, str):
            self.methods = self.methods.split(",")
        self.methods = [name.strip() for name in self.methods if name.strip()]
        for index, name in enumerate(self.methods):  # predictions:PATH → predictions@<folder name>
            if name.startswith("predictions:"):
                folder = name.removeprefix("predictions:")
                self.methods[index] = f"predictions@{Path(folder).name or 'outputs'}"
                self.predictions = {**self.predictions, self.methods[index]: folder}
        self.methods += [name for name in self.predictions if name not in self.methods]
        for name, folder in self.predictions.items():  # never the current folder by omission
            if not str(folder).strip():
                raise RunError(f"predictions {name}: needs a path, e.g. --methods predictions:~/outputs")
        if isinstance(self.protocol, MetricProtocol):
            self.protocol = self.protocol.as_dict()
        self.protocol = MetricProtocol(**self.protocol).as_dict()
        check_run_config(self)
        self.device = resolve_device(self.device)
        self.method_options = {n: typed_options(n, o) for n, o in self.method_options.items()}
        self.checkpoints = {
            name: str(checkpoint_path(method_of(name), str(entry), self.weights_dir))
            for name, entry in self.checkpoints.items()
        }

    @property
    def every_method(self) -> bool:
        """methods 'all': every available method; learned ones without weights are left out."""
        return self.methods == ["all"]
