"""A tiny Torch7 binary serializer for the tests: torch7's File.lua `writeObject` in binary mode on
64-bit Linux (int32 type tags and sizes, int64 longs, float64 numbers), enough for the layout
`torch.save` gives an nn model: tables, Torch objects ("V 1", class name, field table), tensors
(ndim, sizes, strides, 1-based storage offset, storage) and storages (length, raw values)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5
TENSOR_TYPES = {np.dtype(np.float32): "Float", np.dtype(np.float64): "Double"}


@dataclass
class TorchObject:
    typename: str
    fields: dict[str, Any] = field(default_factory=dict)


class Writer:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.index = 0

    def raw(self, fmt: str, *values: Any) -> None:
        self.handle.write(struct.pack("<" + fmt, *values))

    def string(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.raw("i", len(data))
        self.handle.write(data)

    def header(self, kind: int) -> None:
        self.index += 1
        self.raw("ii", kind, self.index)

    def torch_header(self, typename: str) -> None:
        self.header(TORCH)
        self.string("V 1")
        self.string(typename)

    def write(self, value: Any) -> None:
        if value is None:
            self.raw("i", NIL)
        elif isinstance(value, bool):
            self.raw("ii", BOOLEAN, int(value))
        elif isinstance(value, int | float):
            self.raw("id", NUMBER, float(value))
        elif isinstance(value, str | bytes):
            self.raw("i", STRING)
            self.string(value)
        elif isinstance(value, np.ndarray):
            self.tensor(value)
        elif isinstance(value, TorchObject):
            self.torch_header(value.typename)
            self.write(value.fields)
        elif isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value, start=1)
            items = list(items)
            self.header(TABLE)
            self.raw("i", len(items))
            for key, item in items:
                self.write(key)
                self.write(item)
        else:
            raise TypeError(f"cannot serialize {type(value).__name__}")

    def tensor(self, array: np.ndarray) -> None:
        kind = TENSOR_TYPES[array.dtype]
        self.torch_header(f"torch.{kind}Tensor")
        if array.size == 0:  # Torch's empty tensor: no dimensions, no storage
            self.raw("iq", 0, 1)
            self.raw("i", NIL)
            return
        array = np.ascontiguousarray(array)
        strides = [s // array.itemsize for s in array.strides]
        self.raw("i", array.ndim)
        self.raw(f"{array.ndim}q", *array.shape)
        self.raw(f"{array.ndim}q", *strides)
        self.raw("q", 1)
        self.torch_header(f"torch.{kind}Storage")
        self.raw("q", array.size)
        self.handle.write(array.astype(array.dtype.newbyteorder("<")).tobytes())


def write_t7(path: Path, value: Any) -> Path:
    with open(path, "wb") as handle:
        Writer(handle).write(value)
    return path


def numpy(tensor: torch.Tensor, dtype: type) -> np.ndarray:
    return tensor.detach().numpy().astype(dtype)


def empty(dtype: type) -> np.ndarray:
    return np.zeros(0, dtype)


def convolution(conv: torch.nn.Conv2d, dilated: bool, dtype: type = np.float32) -> TorchObject:
    """nn.SpatialConvolution or nn.SpatialDilatedConvolution with nn's field names."""
    fields = {
        "nInputPlane": conv.in_channels,
        "nOutputPlane": conv.out_channels,
        "kW": conv.kernel_size[1],
        "kH": conv.kernel_size[0],
        "dW": conv.stride[1],
        "dH": conv.stride[0],
        "padW": conv.padding[1],
        "padH": conv.padding[0],
        "weight": numpy(conv.weight, dtype),
        "bias": numpy(conv.bias, dtype),
        "gradWeight": np.zeros(conv.weight.shape, dtype),
        "gradBias": np.zeros(conv.bias.shape, dtype),
        "finput": empty(dtype),
        "fgradInput": empty(dtype),
        "output": empty(dtype),
        "gradInput": empty(dtype),
        "train": False,
        "_type": "torch.FloatTensor",
    }
    if dilated:
        fields.update(dilationW=conv.dilation[1], dilationH=conv.dilation[0])
        return TorchObject("nn.SpatialDilatedConvolution", fields)
    assert conv.dilation == (1, 1)
    return TorchObject("nn.SpatialConvolution", fields)


def full_convolution(deconv: torch.nn.ConvTranspose2d, dtype: type = np.float32) -> TorchObject:
    fields = convolution(deconv, dilated=False, dtype=dtype).fields  # type: ignore[arg-type]
    fields.update(adjW=deconv.output_padding[1], adjH=deconv.output_padding[0])
    return TorchObject("nn.SpatialFullConvolution", fields)


def batch_norm(bn: torch.nn.BatchNorm2d, old_std: bool = False, dtype: type = np.float32) -> TorchObject:
    """nn.SpatialBatchNormalization; old_std: nn before 2016 kept running_std = 1/sqrt(var + eps)."""
    fields = {
        "eps": bn.eps,
        "momentum": bn.momentum,
        "affine": True,
        "weight": numpy(bn.weight, dtype),
        "bias": numpy(bn.bias, dtype),
        "running_mean": numpy(bn.running_mean, dtype),
        "train": False,
        "output": empty(dtype),
        "gradInput": empty(dtype),
    }
    if old_std:
        fields["running_std"] = numpy(1 / torch.sqrt(bn.running_var.double() + bn.eps), dtype)
    else:
        fields["running_var"] = numpy(bn.running_var, dtype)
    return TorchObject("nn.SpatialBatchNormalization", fields)


def torch7_model(
    net: torch.nn.Sequential,
    dilated: set[int],
    old_std: bool = False,
    dtype: type = np.float32,
) -> TorchObject:
    """nn.Sequential of the same modules; `dilated`: Python indices written as SpatialDilatedConvolution."""
    modules: list[TorchObject] = []
    for index, module in enumerate(net):
        if isinstance(module, torch.nn.ConvTranspose2d):
            modules.append(full_convolution(module, dtype))
        elif isinstance(module, torch.nn.Conv2d):
            modules.append(convolution(module, index in dilated, dtype))
        elif isinstance(module, torch.nn.BatchNorm2d):
            modules.append(batch_norm(module, old_std, dtype))
        elif isinstance(module, torch.nn.ReLU):
            modules.append(
                TorchObject("nn.ReLU", {"threshold": 0, "val": 0, "inplace": True, "train": False})
            )
        elif isinstance(module, torch.nn.Sigmoid):
            modules.append(TorchObject("nn.Sigmoid", {"train": False}))
        else:
            raise TypeError(type(module).__name__)
    return TorchObject("nn.Sequential", {"modules": modules, "train": False, "_type": "torch.FloatTensor"})
