"""Tensor helpers shared by the metrics, the losses and the methods, below all of them: importing
the metrics or the losses loads no method module (tests/test_layout.py). The one module of
bench.core that imports torch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

# ImageNet statistics of torchvision's pretrained models (VGG16, AlexNet inputs; PConv community)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
