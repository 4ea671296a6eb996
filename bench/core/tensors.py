"""Tensor helpers shared by the metrics, the losses and the methods, below all of them: importing
the metrics or the losses loads no method module (tests/test_layout.py); and torch's denormal
mode, one of the process settings of bench.core.process. The one module of bench.core that imports
torch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

# ImageNet statistics of torchvision's pretrained models (VGG16, AlexNet inputs; PConv community)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DENORMALS_OPT_OUT = "INPAINT_BENCH_DENORMALS"
FLUSHED = "flushed to zero (FTZ/DAZ)"
_denormals: str | None = None  # this process's mode, once decided (bench.core.process records it)


def composite(image: Tensor, mask: Tensor, output: Tensor) -> Tensor:
    """I_comp = M ⊙ I_in + (1 − M) ⊙ I_out (LBAM paper, Sec. 4 / official test script).

    The single place where known pixels are copied back before scoring.
    """
    return mask * image + (1.0 - mask) * output


def in_chunks(
    function: Callable[..., Tensor], first: Tensor, second: Tensor, size: int, *args: Any
) -> Tensor:
    """function(first, second, *args) over chunks of `size` along the batch, concatenated."""
    if first.shape[0] <= size:
        return function(first, second, *args)
    pairs = zip(first.split(size), second.split(size), strict=True)
    return torch.cat([function(a, b, *args) for a, b in pairs])


def default_weights_dir() -> Path:
    """torch's cache of downloaded weights, $TORCH_HOME/hub/checkpoints: where every released or
    ImageNet weights file (LBAM, GL, CA, VGG16, AlexNet) is looked for by default."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def flush_denormals() -> str:
    """Flush denormal floats to zero on the CPU (once per process) unless INPAINT_BENCH_DENORMALS=keep;
    returns what the process does, for the records."""
    global _denormals
    if _denormals is not None:
        return _denormals
    if os.environ.get(DENORMALS_OPT_OUT, "").strip().lower() == "keep":
        _denormals = f"kept ({DENORMALS_OPT_OUT}=keep)"
    elif not torch.set_flush_denormal(True):
        _denormals = "kept (this CPU has no flush-to-zero mode)"
    elif every_thread_flushes():
        _denormals = FLUSHED
    else:  # all threads or none: results must not depend on which thread computed them
        torch.set_flush_denormal(False)
        _denormals = "kept (the process's compute threads had started before they could be set)"
    return _denormals


def every_thread_flushes() -> bool:
    """torch.set_flush_denormal sets the calling thread's mode, which threads started later inherit;
    the OpenMP threads of an earlier computation keep theirs. A product of two 1e-20 (1e-40, a
    denormal) over enough elements that every thread takes a share tells whether all flush."""
    count = max(1 << 20, torch.get_num_threads() * (1 << 16))  # ≥ 2 grains of 32,768 per thread
    tiny = torch.full((count,), 1e-20)
    return int((tiny * tiny).count_nonzero()) == 0
