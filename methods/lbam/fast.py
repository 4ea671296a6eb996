"""Inference-only forward of LBAMNet (issue 6): the maths of LBAMNet.forward, other kernels.

Outputs equal the eager forward within 1e-5 (tests/test_lbam_fast.py). `python -m bench.perf`
compares the two. On the CPU (float32, oneDNN present) it uses:
- oneDNN convolutions with weights reordered once and cached (the prepacked ops torch.compile emits):
  per-call reordering of the 512-channel weights made the small layers memory-bound, 3-10x slower;
- the last transposed conv (3 output channels) as one matrix product + fold (col2im);
- conv(F) ⊙ g_A in the convolution's epilogue; that product is also the decoder's skip ⊙ forward
  map (Eq. 12), so it is computed once;
- g_A (Eq. 9) with one exp for both sides; g_M skipped where nothing reads it; with
  kernels='compiled', g_A and g_M fused by torch.compile (compiled on first use, cached by torch).
Elsewhere (CUDA, other dtypes) the convolutions are the modules' own.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.errors import MethodError
from bench.methods.lbam.layers import (
    OFFICIAL_CLAMPS,
    AttentionOptions,
    ForwardAttention,
    GaussActivation,
    ReverseAttention,
    update_mask,
)

MKLDNN = torch.ops.mkldnn
_packed: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Tensor]] = weakref.WeakKeyDictionary()


def packed_ops_available(x: Tensor) -> bool:
    """oneDNN's prepacked-weight convolutions (the ops torch.compile uses on the CPU) exist here."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and hasattr(MKLDNN, "_convolution_pointwise")
        and hasattr(MKLDNN, "_reorder_convolution_transpose_weight")
    )


def packed_weight(module: nn.Conv2d | nn.ConvTranspose2d, x: Tensor) -> Tensor:
    """module.weight reordered once for oneDNN, re-packed when the weight or the input's channels or
    size change (not its batch size: a packing serves every batch size, at the same speed here)."""
    weight = module.weight
    key = (tuple(x.shape[1:]), weight.data_ptr(), weight._version)
    cached = _packed.get(module)
    if cached is not None and cached[0] == key:
        return cached[1]
    geometry = (list(module.padding), list(module.stride), list(module.dilation), module.groups)
    with torch.no_grad():
        if isinstance(module, nn.ConvTranspose2d):
            padding, stride, dilation, groups = geometry
            output_padding = list(module.output_padding)
            packed = MKLDNN._reorder_convolution_transpose_weight(
                weight.detach(), padding, output_padding, stride, dilation, groups, list(x.shape)
            )
        else:
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                weight.detach().to_mkldnn(), *geometry, list(x.shape)
            )
    _packed[module] = (key, packed)
    return packed


def conv(x: Tensor, module: nn.Conv2d, multiplier: Tensor | None = None) -> Tensor:
    """module(x), times `multiplier` if given (in the convolution's epilogue on the CPU)."""
    if not packed_ops_available(x):
        out = module(x)
        return out if multiplier is None else out * multiplier
    weight = packed_weight(module, x)
    geometry = (module.padding, module.stride, module.dilation, module.groups)
    if multiplier is None:
        return MKLDNN._convolution_pointwise(x, weight, None, *geometry, "none", [], "")
    return MKLDNN._convolution_pointwise.binary(
        x, multiplier, weight, None, *geometry, "mul", None, None, [], None
    )


def deconv(x: Tensor, module: nn.ConvTranspose2d) -> Tensor:
    """module(x); on the CPU a prepacked oneDNN call, or for ≤ 4 output channels (the last layer,
    where oneDNN is slowest) one matrix product + fold (col2im)."""
    if not packed_ops_available(x):
        return module(x)
    weight = module.weight  # C_in, C_out, k, k
    plain = module.groups == 1 and module.dilation == (1, 1) and module.output_padding == (0, 0)
    if weight.shape[1] > 4 or not plain:
        padding, stride, dilation = module.padding, module.stride, module.dilation
        return MKLDNN._convolution_transpose_pointwise(
            x,
            packed_weight(module, x),
            None,
            padding,
            module.output_padding,
            stride,
            dilation,
            module.groups,
            "none",
            [],
            "",
        )
    (k, _), (stride, _), (padding, _) = module.kernel_size, module.stride, module.padding
    n, c, h, w = x.shape
    columns = torch.matmul(x.reshape(n, c, h * w).transpose(1, 2), weight.reshape(c, -1))  # N, L, C_out·k·k
    size = ((h - 1) * stride - 2 * padding + k, (w - 1) * stride - 2 * padding + k)
    return F.fold(columns.transpose(1, 2), size, k, padding=padding, stride=stride)


def gauss_parameters(activation: GaussActivation) -> tuple[Tensor, ...]:
    """(a, μ, γl, γr) as 0-d tensors (a compiled graph then serves every layer), clamped for 'official'."""
    values = [getattr(activation, name).detach() for name in OFFICIAL_CLAMPS]
    if activation.clamp:
        values = [v.clamp(*OFFICIAL_CLAMPS[name]) for v, name in zip(values, OFFICIAL_CLAMPS, strict=True)]
    return tuple(values)


def gauss_maps(
    x: Tensor,
    a: Tensor,
    mu: Tensor,
    sigma1: Tensor,
    sigma2: Tensor,
    options: AttentionOptions,
    need_mask: bool,
) -> tuple[Tensor, Tensor | None]:
    """g_A (Eq. 9) with one exp for both sides, and g_M (Eq. 8) unless nothing reads it."""
    below = x < mu
    exponent = (x - mu).square_().mul_(torch.where(below, -sigma1, -sigma2)).exp_()
    attention = torch.where(below, exponent * a, exponent.mul_(a - 1).add_(1))
    return attention, update_mask(x, options) if need_mask else None


@functools.cache
def compiled_gauss_maps() -> Callable[..., tuple[Tensor, Tensor | None]]:
    """gauss_maps fused into one loop by torch.compile (kernels='compiled'): the first calls compile."""
    return torch.compile(gauss_maps, dynamic=True)


def attention_maps(
    activation: nn.Module,
    options: AttentionOptions,
    mask_features: Tensor,
    need_mask: bool = True,
    compiled: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """(g_A(x), g_M(x)) for the mask features x (Eqs. 9 and 8; module calls for the ablations)."""
    if not isinstance(activation, GaussActivation):
        return activation(mask_features), update_mask(mask_features, options) if need_mask else None
    arguments = (mask_features, *gauss_parameters(activation), options, need_mask)
    if not compiled:
        return gauss_maps(*arguments)
    try:
        return compiled_gauss_maps()(*arguments)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise MethodError(
            f"lbam: kernels='compiled' needs torch.compile to work here (a C++ compiler on the CPU, "
            f"Triton on CUDA); it failed with {type(error).__name__}: {first_line}. "
            "Use kernels='fast' (no compilation)."
        ) from error


def encoder(
    layer: ForwardAttention, features: Tensor, mask: Tensor, need_mask: bool, compiled: bool
) -> tuple[Tensor, Tensor | None, Tensor]:
    """ForwardAttention.forward as (output, updated mask, skip for the decoder).

    The skip is the product W^T F ⊙ g_A(k_M^T M): the decoder multiplies the raw skip features by the
    same forward map (Eq. 12, also in the 'forward' ablation), so the product is computed once."""
    inner = layer.conv
    attention, new_mask = attention_maps(
        inner.activationFuncG_A, inner.options, conv(mask, inner.maskConv), need_mask, compiled
    )
    skip = product = conv(features, inner.conv, attention)
    out = layer.bn(product) if hasattr(layer, "bn") else product
    return F.leaky_relu(out, layer.activ.negative_slope), new_mask, skip


def decoder(layer: ReverseAttention, skip: Tensor, features: Tensor, reverse_map: Tensor | None) -> Tensor:
    """ReverseAttention.forward: cat(skip · forward map, up · reverse map), BN, LeakyReLU (Eq. 12);
    `skip` already carries the forward map."""
    up = deconv(features, layer.conv)
    c = skip.shape[1]
    layout = torch.contiguous_format if up.is_contiguous() else torch.channels_last
    out = torch.empty(
        (skip.shape[0], c + up.shape[1], *skip.shape[2:]),
        dtype=up.dtype,
        device=up.device,
        memory_format=layout,
    )
    out[:, :c] = skip
    if reverse_map is None:
        out[:, c:] = up
    else:
        torch.mul(up, reverse_map, out=out[:, c:])
    if hasattr(layer, "bn"):
        out = layer.bn(out)
    return F.leaky_relu_(out, layer.activ.negative_slope)


def fast_forward(net: nn.Module, image_input: Tensor, mask: Tensor, compiled: bool = False) -> Tensor:
    """LBAMNet.forward(image_input, mask) for inference (eval mode, no autograd); compiled: g_A and
    g_M through torch.compile."""
    features, current_mask = image_input, mask
    skips = []
    for i in range(1, 8):
        layer = getattr(net, f"ec{i}")
        features, current_mask, skip = encoder(layer, features, current_mask, i < 7, compiled)
        skips.append(skip)
    reverse: list[Tensor | None] = [None] * 6
    if net.use_reverse:
        reverse_mask = 1 - mask
        for i in range(6):
            layer = getattr(net, f"reverseConv{i + 1}")
            features_r = conv(reverse_mask, layer.reverseMaskConv)
            reverse[i], reverse_mask = attention_maps(
                layer.activationFuncG_A, layer.options, features_r, i < 5, compiled
            )
    for i in range(1, 7):
        level = 6 - i
        features = decoder(getattr(net, f"dc{i}"), skips[level], features, reverse[level])
    output = deconv(features, net.dc7).tanh_()
    if net.config.variant == "official":
        output = output.add_(1).div_(2)
    return output.contiguous()
