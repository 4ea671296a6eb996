"""Inference-only forward of PConvUNet (issue 21): the maths of PConvUNet.forward, less memory traffic.

Outputs equal the modules as written within 1e-5 of the output's scale (tests/test_pconv_fast.py,
both variants); `python -m bench.perf` prints the difference and the share of the matmul rate. Eval
mode, no autograd, CPU float32 with oneDNN (LBAM's fast path, methods/lbam/fast.py); elsewhere the
modules run. What changes, with the same arithmetic otherwise:

- masks are one channel: every output channel of a partial convolution has the same updated mask
  m' = [sum(M) > 0], and the decoder's input mask is [up(m'), m_skip], so sum(M) over a window is the
  window sum of C_up·up(m') + C_skip·m_skip (the same integers as the C-channel sum);
- features are kept multiplied by their mask (x ⊙ M is what every consumer reads: the next encoder
  layer and the decoder's skip, whose mask part is the same m'), so no layer multiplies its input;
  nearest upsampling commutes with that product and writes straight into the concatenation;
- a layer is one oneDNN convolution with eval BN's scale folded into its weights (reordered once and
  cached), then, in place, the re-normalisation r = sum(1)/(sum(M) + 1e-8) ⊙ m' (community:
  m'/sum(M)), (b·s + t) ⊙ m' added and the activation: BN(out ⊙ m') ⊙ m' with
  out = W^T(X ⊙ M)·r + b, for 0/1 masks and activations with act(0) = 0 (ReLU, LeakyReLU, none);
- a decoder layer's convolution is linear in its two inputs, so it is the convolution of the
  upsampled part plus that of the skip part, and a 3×3 convolution of a nearest-×2 upsampled map
  reads, for each of the four output phases (row and column parity), a 2×2 window of the map
  itself with summed taps (the sub-pixel form): 16 instead of 36 products per low-resolution pixel
  and channel pair, and no upsampled copy or concatenation. Used from 16×16 outputs on, where it was
  faster (1.2–4×, full and CPU-scale widths); the smaller layers keep the concatenated convolution.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.methods.lbam.fast import MKLDNN, packed_ops_available

_folded: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, tuple]] = weakref.WeakKeyDictionary()


def fast_available(net: nn.Module, image: Tensor) -> bool:
    """Eval mode, no autograd, no autocast (its kernels are float32: under autocast the modules run,
    so AMP means what it says), CPU float32 with oneDNN."""
    if net.training or torch.is_grad_enabled() or torch.is_autocast_enabled(image.device.type):
        return False
    return packed_ops_available(image)


def one_binary_mask(mask: Tensor) -> bool:
    """The fast path's premise about its input: a 0/1 mask whose channels are equal (PConv's
    network_inputs expands the harness's one channel, so that check is free)."""
    if mask.shape[1] > 1 and mask.stride(1) != 0 and not bool((mask == mask[:, :1]).all()):
        return False
    return bool(((mask == 0) | (mask == 1)).all())


def folded(layer: nn.Module) -> tuple[Tensor, Tensor]:
    """(W·s, b·s + t) of a PCBActiv: its convolution with eval BN's y = s·x + t folded in."""
    conv = layer.conv.input_conv
    bn = getattr(layer, "bn", None)
    with torch.no_grad():
        out_channels = conv.weight.shape[0]
        scale, shift = torch.ones(out_channels), torch.zeros(out_channels)
        if bn is not None:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
        bias = shift if conv.bias is None else conv.bias * scale + shift
        return conv.weight * scale.view(-1, 1, 1, 1), bias.view(1, -1, 1, 1).contiguous()


def packed(weight: Tensor, geometry: tuple, x_shape: torch.Size) -> Tensor:
    """weight reordered once for oneDNN's convolution (padding, stride, dilation, groups) of inputs
    shaped like x_shape."""
    padding, stride, dilation, groups = geometry
    return torch._C._nn.mkldnn_reorder_conv2d_weight(
        weight.to_mkldnn(), list(padding), list(stride), list(dilation), groups, list(x_shape)
    )


def cached_weights(layer: nn.Module, shape_key: tuple, make: Callable[[Tensor], tuple[Tensor, ...]]) -> tuple:
    """make(W·s) and b·s + t of a layer, re-made when a weight, a BN statistic or the inputs' shapes
    change."""
    conv = layer.conv.input_conv
    bn = getattr(layer, "bn", None)
    tensors = [conv.weight, conv.bias] + (
        [] if bn is None else [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    )
    key = (shape_key, *((t.data_ptr(), t._version) for t in tensors if t is not None))
    cached = _folded.get(layer)
    if cached is not None and cached[0] == key:
        return cached[1]
    weight, bias = folded(layer)
    with torch.no_grad():
        made = (*make(weight), bias)
    _folded[layer] = (key, made)
    return made


# PHASE_TAPS[a] sums a 3×3 kernel's rows into the 2×2 window of low-resolution rows (i - 1 + a, i + a)
# that output row 2i + a of a nearest-×2 upsampled input reads: rows 2i-1, 2i, 2i+1 are low rows
# i-1, i, i for a = 0, and rows 2i, 2i+1, 2i+2 are i, i, i+1 for a = 1 (the same for columns).
PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
# below this many output pixels the concatenated convolution was as fast (docs/performance.md)
SUBPIXEL_MIN_PIXELS = 16 * 16


def phase_kernels(weight: Tensor) -> Tensor:
    """(C_out, C_in, 3, 3) → (4·C_out, C_in, 2, 2), phases (a, b) in row-major order."""
    kernels = torch.einsum("ayk,bxl,oikl->aboiyx", PHASE_TAPS.to(weight), PHASE_TAPS.to(weight), weight)
    return kernels.reshape(-1, weight.shape[1], 2, 2).contiguous()


def interleaved(phases: Tensor, channels: int) -> Tensor:
    """N×4C×(H+1)×(W+1) phase outputs (a 2×2 convolution with padding 1) → N×C×2H×2W: output
    pixel (2i + a, 2j + b) is phase (a, b) at (i + a, j + b), one strided view copied once."""
    n, _, rows, columns = phases.shape
    sn, sc, sh, sw = phases.stride()
    view = phases.as_strided(
        (n, channels, rows - 1, 2, columns - 1, 2),
        (sn, sc, sh, 2 * channels * sc + sh, sw, channels * sc + sw),
    )
    return view.contiguous().view(n, channels, 2 * rows - 2, 2 * columns - 2)


def mask_ratio(layer: nn.Module, channel_sum: Tensor) -> tuple[Tensor, Tensor]:
    """(r ⊙ m', m') of a partial convolution from its input mask's channel sum."""
    pconv = layer.conv
    mask_sum = pconv.window_sums(channel_sum)
    updated = (mask_sum > 0).to(channel_sum.dtype)
    if pconv.variant == "paper":
        return (pconv.window / (mask_sum + 1e-8)).mul_(updated), updated
    return updated / mask_sum.masked_fill(mask_sum == 0, 1.0), updated


def finished(layer: nn.Module, out: Tensor, ratio: Tensor, updated: Tensor, bias: Tensor) -> Tensor:
    """In place: out·r + (b·s + t) ⊙ m', then the activation."""
    # the ratio multiplies the plain convolution's output: as a binary post-op its one-channel
    # broadcast sends oneDNN to a reference kernel, 8-20x slower than the modules (measured)
    out = out.mul_(ratio).addcmul_(updated, bias)
    if isinstance(layer.activation, nn.ReLU):
        return out.relu_()
    if isinstance(layer.activation, nn.LeakyReLU):
        return F.leaky_relu_(out, layer.activation.negative_slope)
    return out


def layer_forward(layer: nn.Module, x: Tensor, channel_sum: Tensor) -> tuple[Tensor, Tensor]:
    """A PCBActiv on masked features x (x ⊙ M) given M's channel sum: (output ⊙ m', m')."""
    conv = layer.conv.input_conv
    ratio, updated = mask_ratio(layer, channel_sum)
    geometry = (conv.padding, conv.stride, conv.dilation, conv.groups)
    weight, bias = cached_weights(
        layer, ("plain", tuple(x.shape[1:])), lambda w: (packed(w, geometry, x.shape),)
    )
    out = MKLDNN._convolution_pointwise(x, weight, None, *geometry, "none", [], "")
    return finished(layer, out, ratio, updated, bias), updated


def subpixel_applies(layer: nn.Module, h: Tensor) -> bool:
    """Whether a decoder layer on up(h) takes the sub-pixel form: a plain 3×3 convolution (stride,
    padding, dilation 1; one group) with at least SUBPIXEL_MIN_PIXELS output pixels."""
    conv = layer.conv.input_conv
    plain_3x3 = conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
    plain_3x3 = plain_3x3 and conv.dilation == (1, 1) and conv.groups == 1
    return plain_3x3 and 4 * h.shape[2] * h.shape[3] >= SUBPIXEL_MIN_PIXELS


def decoder_forward(layer: nn.Module, h: Tensor, skip: Tensor, channel_sum: Tensor) -> tuple[Tensor, Tensor]:
    """A decoder PCBActiv on [up(h), skip] (both masked) in the sub-pixel form (module docstring)."""
    ratio, updated = mask_ratio(layer, channel_sum)
    up_channels = h.shape[1]
    ones = [1, 1]
    geometry = (ones, ones, ones, 1)

    def make(weight: Tensor) -> tuple[Tensor, Tensor]:
        phases = phase_kernels(weight[:, :up_channels])
        return packed(phases, geometry, h.shape), packed(
            weight[:, up_channels:].contiguous(), geometry, skip.shape
        )

    shapes = ("subpixel", tuple(h.shape[1:]), tuple(skip.shape[1:]))
    phase_weight, skip_weight, bias = cached_weights(layer, shapes, make)
    phases = MKLDNN._convolution_pointwise(h, phase_weight, None, *geometry, "none", [], "")
    up = interleaved(phases, bias.shape[1])
    out = MKLDNN._convolution_pointwise.binary(
        skip, up, skip_weight, None, *geometry, "add", None, None, [], None
    )
    return finished(layer, out, ratio, updated, bias), updated


def upsample_into(out: Tensor, x: Tensor) -> None:
    """out = nearest ×2 upsampling of x, written in place (out: a view N×C×2H×2W)."""
    n, c, h, w = x.shape
    out.view(n, c, h, 2, w, 2).copy_(x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2))


def fast_forward(net: nn.Module, image: Tensor, mask: Tensor) -> Tensor:
    """PConvUNet.forward(image, mask) for inference; `mask` has the image's 3 equal channels."""
    single = mask[:, :1]
    features, masks = [image * mask], [single]
    sums = [single * image.shape[1]]
    for i in range(1, 8):
        out, updated = layer_forward(getattr(net, f"enc_{i}"), features[-1], sums[-1])
        features.append(out)
        masks.append(updated)
        sums.append(updated * out.shape[1])
    h, h_mask = features[-1], masks[-1]
    for i in range(7, 0, -1):
        skip = features[i - 1]
        n, c_up, height, width = h.shape
        up_mask = F.interpolate(h_mask, scale_factor=2, mode="nearest")
        channel_sum = torch.add(up_mask * c_up, masks[i - 1], alpha=skip.shape[1])
        layer = getattr(net, f"dec_{i}")
        if subpixel_applies(layer, h):
            h, h_mask = decoder_forward(layer, h, skip, channel_sum)
            continue
        joined = h.new_empty(n, c_up + skip.shape[1], 2 * height, 2 * width)
        upsample_into(joined[:, :c_up], h)
        joined[:, c_up:] = skip
        h, h_mask = layer_forward(layer, joined, channel_sum)
    return h
