"""Scoring on every core: batches of pairs spread over worker processes (`--workers N`).

Each worker holds the method, the test set and the masks (sent once, when it starts), runs one
untimed warm-up call, then scores the batches it is handed with its share of the threads and
sends the record rows back; the parent appends them in the batches' order as they arrive, so
the record files, the progress bar and resuming are as in one process. Every pair's result
depends only on the pair (random methods re-seed per image), so the records equal a
one-process run's whichever worker scored it.
Workers with one thread each (every core busy, the default) are forked from this process: they
start in ≈ 0.1 s and share its memory. A forked child that uses more than one OpenMP thread after
the parent computed hangs (GNU libgomp is not fork-safe), so workers with several threads come
from a forkserver that has imported the project once (one import, ≈ 2–6 s, per run). OpenCV's
pool has the same trap (resizing it in a forked child hangs in pthread_cond_destroy).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator

import cv2
import torch

from bench.core.process import prepare_process
from bench.evaluation.harness import BatchRecords, Pair, Scoring, score_pairs
from bench.evaluation.run_folder import release_inherited_locks

_worker: dict[str, object] = {}


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(device: str, learned: bool) -> int:
    """`--workers 0` (auto): every core (shared between the ranks on this node) for classical
    methods on the CPU; learned methods and CUDA keep one process (their kernels use the
    threads already)."""
    if learned or not device.startswith("cpu"):
        return 1
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, available_cores() // local_ranks)


def _start_worker(scoring: Scoring, threads: int, forked: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    release_inherited_locks()  # the run folder's lock ends with the parent, even on kill -9
    prepare_process()  # a forkserver's child starts with the defaults; a forked one has the settings
    torch.set_num_threads(threads)
    if not forked:  # a forked child inherits one OpenCV thread from the parent (see below)
        cv2.setNumThreads(threads)
    _worker.update(scoring=scoring, warm=False)


def _score(batch: list[Pair]) -> BatchRecords:
    scoring: Scoring = _worker["scoring"]  # type: ignore[assignment]
    with torch.inference_mode():
        if not _worker["warm"]:
            scoring.method.warm_up(*scoring.tensors(batch))  # not timed, not stored
            _worker["warm"] = True
        return score_pairs(scoring, batch)


def score_in_workers(scoring: Scoring, batches: list[list[Pair]], workers: int) -> Iterator[BatchRecords]:
    """The records of every batch from `workers` processes, in the batches' order (so the record
    files list the items as a one-process run does)."""
    workers = min(workers, len(batches))
    threads = max(1, torch.get_num_threads() // workers)
    forked = threads == 1
    if forked:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["bench.evaluation.harness", "bench.methods"])
    # Resizing OpenCV's thread pool in a forked child waits forever for threads fork did not copy;
    # the parent shrinks it to one thread before forking instead, and restores it afterwards.
    opencv_threads = cv2.getNumThreads()
    if forked:
        cv2.setNumThreads(1)
    try:
        with context.Pool(workers, initializer=_start_worker, initargs=(scoring, threads, forked)) as pool:
            yield from pool.imap(_score, batches)
    finally:
        cv2.setNumThreads(opencv_threads)
