"""TensorFlow 1.x operations that DeepFill v1 is built from, in PyTorch, with TF's exact conventions.

- "SAME" padding (tensorflow/python/ops/nn_ops.py, `conv2d` docs): output ⌈n/s⌉, total padding
  max((out − 1)·s + d·(k − 1) + 1 − n, 0), the odd pixel at the bottom/right.
- `tf.image.resize_nearest_neighbor(align_corners=True)` as neuralgym's `resize` calls it
  (neuralgym/ops/layers.py): source index roundf(y·(in − 1)/(out − 1)) in float32
  (tensorflow/core/kernels/image/resize_nearest_neighbor_op.cc, legacy scaler).
- `contextual_attention` of generative_inpainting v1.0.0 `inpaint_ops.py` (Yu et al., CVPR 2018,
  Sec. 3.1, Eqs. 1–2 and the attention propagation), statement by statement.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) of TF "SAME" padding along one axis; the extra pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(x: Tensor, kernel: int, stride: int = 1, dilation: int = 1, value: float = 0.0) -> Tensor:
    top, bottom = same_padding(x.shape[-2], kernel, stride, dilation)
    left, right = same_padding(x.shape[-1], kernel, stride, dilation)
    return F.pad(x, (left, right, top, bottom), value=value)


def conv2d_same(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int = 1, dilation: int = 1) -> Tensor:
    """tf.nn.conv2d(padding="SAME") / tf.layers.conv2d(padding="same"); weight O×I×k×k (square)."""
    kernel = weight.shape[-1]
    rows = same_padding(x.shape[-2], kernel, stride, dilation)
    cols = same_padding(x.shape[-1], kernel, stride, dilation)
    if rows[0] == rows[1] and cols[0] == cols[1]:
        return F.conv2d(x, weight, bias, stride, (rows[0], cols[0]), dilation)
    return F.conv2d(pad_same(x, kernel, stride, dilation), weight, bias, stride, 0, dilation)


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Source indices of TF's nearest-neighbour resize with align_corners=True, in float32 like TF."""
    scale = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    scaled = np.arange(size_out, dtype=np.float32) * scale  # float32 product, as in the kernel
    rounded = np.floor(scaled.astype(np.float64) + 0.5)  # roundf: halves away from zero
    return np.minimum(rounded, size_in - 1).astype(np.int64)


def resize_nearest(x: Tensor, height: int, width: int) -> Tensor:
    """tf.image.resize_nearest_neighbor(x, [height, width], align_corners=True) on N×C×H×W."""
    rows = torch.from_numpy(nearest_indices(x.shape[-2], height)).to(x.device)
    cols = torch.from_numpy(nearest_indices(x.shape[-1], width)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def extract_patches(x: Tensor, kernel: int, stride: int) -> Tensor:
    """tf.extract_image_patches(padding="SAME") of a C×H×W map as L×C×k×k (L patches, row-major)."""
    padded = pad_same(x[None], kernel, stride)
    patches = F.unfold(padded, kernel, stride=stride)[0]  # (C·k·k)×L
    return patches.T.reshape(-1, x.shape[0], kernel, kernel)


def fuse_scores(scores: Tensor, fh: int, fw: int, bh: int, bw: int, fuse_k: int) -> Tensor:
    """The two identity-kernel convolutions of v1.0.0 over the (fh·fw)×(bh·bw) score matrix: once
    in row-major order of positions, once in column-major order (zero padding, "SAME")."""
    eye = torch.eye(fuse_k, dtype=scores.dtype, device=scores.device)[None, None]
    scores = conv2d_same(scores.reshape(1, 1, fh * fw, bh * bw), eye, None)
    scores = scores.reshape(fh, fw, bh, bw).permute(1, 0, 3, 2).reshape(1, 1, fw * fh, bw * bh)
    scores = conv2d_same(scores, eye, None)
    return scores.reshape(fw, fh, bw, bh).permute(1, 0, 3, 2).reshape(fh * fw, bh * bw)


def contextual_attention(
    f: Tensor,
    b: Tensor,
    hole: Tensor,
    ksize: int = 3,
    rate: int = 2,
    fuse_k: int = 3,
    softmax_scale: float = 10.0,
    fuse: bool = True,
    reading: str = "release",
) -> Tensor:
    """v1.0.0 `contextual_attention(f, b, mask, ksize, stride=1, rate, fuse_k, softmax_scale, fuse)`.

    f, b: N×C×H×W (foreground to fill, background to copy from); hole: N×1×H×W, 1 = missing.
    Patches of the background: 2·rate × 2·rate with stride rate at full resolution (pasted back),
    ksize × ksize with stride 1 on f, b and hole resized by 1/rate (matched). Scores: cosine
    similarity (patch norms clamped at 1e-4), fused, masked by mm (1 where a matching patch holds
    no hole pixel) as mm·softmax(scale·mm·s): masked patches keep exp(0) in the denominator, as in
    the release. Pasting: transposed convolution with stride rate, divided by 4 (as written, for
    any rate). The release shares one mask across the batch; here each image uses its own mask,
    which is what the release computes for that image alone.
    reading="paper": Eq. 1 as printed, the cosine similarity (foreground patches normalised too),
    and Eq. 2's softmax over the background only (hole patches get no share of the denominator).
    """
    height, width = f.shape[-2:]
    small_f = resize_nearest(f, int(height / rate), int(width / rate))
    small_b = resize_nearest(b, int(b.shape[-2] / rate), int(b.shape[-1] / rate))
    small_hole = resize_nearest(hole, int(hole.shape[-2] / rate), int(hole.shape[-1] / rate))
    fh, fw = small_f.shape[-2:]
    bh, bw = small_b.shape[-2:]
    ones = torch.ones(1, 1, ksize, ksize, dtype=hole.dtype, device=hole.device)
    hole_in_patch = conv2d_same(small_hole, ones, None)  # zero padding counts as known
    outputs = []
    for i in range(f.shape[0]):
        raw = extract_patches(b[i], 2 * rate, rate)  # L×C×2r×2r
        patches = extract_patches(small_b[i], ksize, 1)  # L×C×k×k
        norms = patches.square().sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        padded_f = pad_same(small_f[i : i + 1], ksize)
        scores = F.conv2d(padded_f, patches / norms)[0]  # L×fh×fw
        if reading == "paper":
            f_norms = F.conv2d(padded_f.square().sum(1, keepdim=True), ones).sqrt().clamp_min(1e-4)
            scores = scores / f_norms[0]
        scores = scores.permute(1, 2, 0).reshape(fh * fw, bh * bw)
        if fuse:
            scores = fuse_scores(scores, fh, fw, bh, bw, fuse_k)
        mm = (hole_in_patch[i].reshape(1, bh * bw) == 0).to(scores.dtype)
        if reading == "paper":
            logits = (scores * softmax_scale).masked_fill(mm == 0, float("-inf"))
            attention = torch.softmax(logits, dim=1).nan_to_num(0.0)  # no background at all: zeros
        else:
            attention = torch.softmax(scores * mm * softmax_scale, dim=1) * mm
        attention = attention.T.reshape(1, bh * bw, fh, fw)
        pasted = F.conv_transpose2d(attention, raw, stride=rate)
        top, _ = same_padding(height, 2 * rate, rate)
        left, _ = same_padding(width, 2 * rate, rate)
        outputs.append(pasted[..., top : top + height, left : left + width] / 4.0)
    return torch.cat(outputs)
