"""Evaluation across processes under torchrun/srun: each rank scores a deterministic share of the
pairs and appends to its own record files; rank 0 merges them once every rank has finished.

The share of rank r of W is every W-th pair of the pairs still to do, from the r-th: the list is
the same on every rank (the pairing is deterministic and the stored records are read after rank 0
has merged any earlier rank files), so no pair is scored twice or dropped, and unlike
DistributedSampler nothing is padded with repeated items.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch.distributed as dist

from bench.core.records import complete_records, completed_items, merge_rank_records

Item = TypeVar("Item")

# Ranks wait for the slowest one at the end of the run; a long evaluation must not time out.
BARRIER_TIMEOUT = dt.timedelta(days=7)


@dataclass
class Shard:
    rank: int = 0
    world: int = 1
    done: set[tuple[str, str, str]] | None = None  # stored items, read once before scoring

    @property
    def suffix(self) -> str:
        """Record files of this rank: scores.rank<r>.csv (single process: scores.csv)."""
        return "" if self.world == 1 else f".rank{self.rank}"

    def share(self, todo: list[Item]) -> list[Item]:
        return todo[self.rank :: self.world]


def world_from_environment() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them (set the same under srun); (0, 1, 0)
    in a plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def start(device: str) -> tuple[int, int, int]:
    """Join the process group (NCCL on CUDA, Gloo on the CPU) when there are several ranks."""
    rank, world, local = world_from_environment()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=BARRIER_TIMEOUT)
    return rank, world, local


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def prepare_shard(run_dir: Path, rank: int, world: int) -> Shard:
    """This rank's shard. Rank 0 (or the single process of a plain rerun) first merges the record
    files an earlier, interrupted torchrun launch left per rank and drops half-written items, so
    what they hold is never recomputed; then every rank reads the same stored items (read only)
    once all have reached this point."""
    if rank == 0:
        merged = merge_rank_records(run_dir)
        if merged:
            print(f"{merged} items merged from the rank files of an earlier launch", file=sys.stderr)
    if world == 1:
        return Shard()
    if rank == 0:
        completed_items(run_dir)
    barrier()
    scores, _ = complete_records(run_dir / "scores.csv", run_dir / "latency.csv")
    done = set(map(tuple, scores[["method", "image_id", "mask_id"]].itertuples(index=False)))
    return Shard(rank, world, done)


def finish_shard(run_dir: Path, shard: Shard) -> bool:
    """Wait for every rank; rank 0 merges their records. True on the rank that goes on to the
    summary and the report (rank 0), False on the others."""
    if shard.world == 1:
        return True
    barrier()
    if shard.rank == 0:
        merge_rank_records(run_dir)
    return shard.rank == 0
