"""Multi-process training helpers: torchrun's environment, gradient averaging, sync checks."""

from __future__ import annotations

import dataclasses
import os

import torch.distributed as dist
from torch import nn


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        backend = "nccl" if device.startswith("cuda") else "gloo"
        # DistributedDataParallel imports torch.distributed.nn.functional on first use, whose
        # functions take `group=group.WORLD` as a default argument: imported after the group
        # exists, they keep it alive past destroy_process_group, and its gloo threads still run
        # when the process exits (where a rank of a finished run was seen to abort, ≈ 1 run in 100).
        import torch.distributed.nn.functional  # noqa: F401

        dist.init_process_group(backend)
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(module: nn.Module, world: int) -> None:
    """Mean of gradients over ranks, for the discriminator: its gradient penalty needs a double
    backward and several forwards per step, which DistributedDataParallel does not support."""
    if world == 1:
        return
    for param in module.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= world


def parameter_checksum(module: nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))
