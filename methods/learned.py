"""What LBAM and PConv share: a network, options from a config dataclass, checkpoint state."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.methods.base import Method, in_chunks
from bench.methods.checkpoints import (
    checked_own,
    load_file,
    own_checkpoint,
    strict_load,
    training_summary,
)

# images per forward at inference on the CPU: larger batches push the activations out of the caches
# (bench.perf here, ms/img at batch 8 whole vs by two: LBAM 135 vs 117, PConv 326 vs 259)
CPU_BATCH = 2


class LearnedMethod(Method):
    learned = True
    size_multiple = 1

    def __init__(self, config: Any, net: nn.Module, device: str = "cpu") -> None:
        super().__init__(device)
        self.config = config
        self.net = net.to(self.device).eval()
        self.trained = False
        self.checkpoint_kind = "none"

    def check_size(self, image: Tensor) -> None:
        size = tuple(image.shape[-2:])
        if any(s % self.size_multiple for s in size):
            raise ValueError(f"{self.name} needs sizes divisible by {self.size_multiple}, got {size}")

    def network_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
        """The common interface (N×3 image, N×1 mask) → the network's own inputs."""
        raise NotImplementedError

    def to_image_space(self, output: Tensor) -> Tensor:
        """The network's output → [0,1] image space (unclamped)."""
        return output

    def raw_output(self, image: Tensor, mask: Tensor) -> Tensor:
        """The network's output in [0,1] image space, differentiable (for training)."""
        if self.device.type == "cpu" and not torch.is_grad_enabled() and image.shape[0] > CPU_BATCH:
            return in_chunks(self.raw_output, image, mask, CPU_BATCH)
        return self.to_image_space(
            self.net(*self.network_inputs(image.to(self.device), mask.to(self.device)))
        )

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.raw_output(image, mask).clamp(0, 1)

    def load(self, state: Any, source: str, kind: str, data: Any = None) -> None:
        strict_load(self.net, state, source)
        self.trained, self.checkpoint_kind = True, kind
        if kind == "inpaint-bench":
            self.training = training_summary(data)
        self.net.to(self.device)

    def options(self) -> dict[str, Any]:
        return {**asdict(self.config), "checkpoint_kind": self.checkpoint_kind, "trained": self.trained}


def read_checkpoint(name: str, checkpoint: str | Path | None) -> tuple[Any, dict[str, Any]]:
    """(file contents or None, the options a project checkpoint was made with)."""
    data = load_file(checkpoint) if checkpoint is not None else None
    if not own_checkpoint(data):
        return data, {}
    checked_own(data, Path(checkpoint).name, name)
    return data, dict(data["options"])


def given_options(**options: Any) -> dict[str, Any]:
    """The options a caller set explicitly (None = not set)."""
    return {key: value for key, value in options.items() if value is not None}
