"""The authors' Torch7 files of GL → a PyTorch state dict, with strict, named checks.

`torch.load` in Lua (official inpaint.lua) gives a table with `model`, a flat `nn.Sequential`
(convolution at Lua index 3k+1, batch norm at 3k+2, ReLU at 3k+3, the last convolution at 49,
then a sigmoid), and `mean`, the per-channel RGB mean in [0,1]. The file is parsed by `torchfile`,
which only reads: Lua functions stay bytes and are never run. Each module is converted by its
type and fields (the released places2 file holds `SpatialDilatedConvolution` with dilation 1 where
the paper has plain convolutions), and compared with the layer the network expects at its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchfile
from numpy.lib.array_utils import byte_bounds

from bench.methods.checkpoints import CheckpointError

CONVOLUTIONS = {"SpatialConvolution", "SpatialDilatedConvolution"}
TRANSPOSED = {"SpatialFullConvolution"}


class Torch7Error(CheckpointError):
    """A .t7 file that cannot be read, or whose model is not GL's completion network."""


def read_torch7(path: str | Path) -> Any:
    """torchfile's reading of a Torch7 binary file, every tensor checked to lie inside its storage."""
    path = Path(path)
    if not path.is_file():
        raise Torch7Error(f"checkpoint {path} does not exist or is not a file")
    try:
        data = torchfile.load(str(path))
    except Exception as error:  # a parser of untrusted bytes fails in many ways; all mean "not readable"
        raise Torch7Error(
            f"{path.name}: not a readable Torch7 file ({type(error).__name__}: {error}); "
            "GL loads the authors' .t7 files (torch.save of Lua Torch)"
        ) from None
    try:
        check_tensors(data, path.name)
    except RecursionError:
        raise Torch7Error(f"{path.name}: nested too deeply to be a model file") from None
    return data


def storage_of(array: np.ndarray) -> np.ndarray:
    base: Any = array
    while getattr(base, "base", None) is not None:
        base = base.base
        if isinstance(base, np.ndarray) and base.flags.owndata:
            return base
    return array


def check_tensors(value: Any, source: str, seen: set[int] | None = None) -> None:
    """Refuse tensors that point outside their storage (a truncated or forged file): torchfile makes
    them with numpy's as_strided, which does not check."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        storage = storage_of(value)
        if value.size and (min(value.strides, default=0) < 0 or not within(value, storage)):
            raise Torch7Error(f"{source}: a tensor reaches past the end of its storage (a truncated file?)")
        if value.size > storage.size:  # stride 0 or overlapping strides: it would grow when copied
            raise Torch7Error(
                f"{source}: a tensor of {value.size:,} elements reuses the {storage.size:,} of its storage "
                "(stride 0 or overlapping strides); torch.save never writes one"
            )
    elif isinstance(value, Mapping):
        for item in value.values():
            check_tensors(item, source, seen)
    elif isinstance(value, list):
        for item in value:
            check_tensors(item, source, seen)
    elif isinstance(value, torchfile.TorchObject):
        check_tensors(value._obj, source, seen)


def within(array: np.ndarray, storage: np.ndarray) -> bool:
    low, high = byte_bounds(array)
    storage_low, storage_high = byte_bounds(storage)
    return storage_low <= low and high <= storage_high


def field(table: Any, key: str) -> Any:
    """A Lua table or Torch object's field (torchfile keeps keys as bytes)."""
    if isinstance(table, torchfile.TorchObject):
        table = table._obj
    if isinstance(table, Mapping):
        return table.get(key.encode(), table.get(key))
    return None


def typename(value: Any) -> str:
    if isinstance(value, torchfile.TorchObject):
        name = value.torch_typename()
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return name if len(name) <= 80 else name[:79] + "…"  # a name from the file: bounded
    return type(value).__name__


def module_kind(value: Any) -> str:
    """'nn.X' or 'cudnn.X' (the same fields) → 'X'."""
    package, _, kind = typename(value).partition(".")
    return kind if package in ("nn", "cudnn") else typename(value)


def model_and_mean(data: Any, source: str) -> tuple[list[Any], list[float]]:
    """The `data.model` module list and `data.mean` of a GL file (official inpaint.lua)."""
    model, mean = field(data, "model"), field(data, "mean")
    if model is None or mean is None:
        raise Torch7Error(f"{source}: expected a table with `model` and `mean` (GL's torch.save layout)")
    if module_kind(model) != "Sequential":
        raise Torch7Error(f"{source}: data.model is {typename(model)}, expected a flat nn.Sequential")
    if not isinstance(field(model, "modules"), list):
        raise Torch7Error(f"{source}: data.model has no list of modules")
    values = mean_values(mean)
    if values is None or values.size != 3 or not np.isfinite(values).all():
        raise Torch7Error(f"{source}: data.mean must hold 3 finite numbers (RGB), got {described(mean)}")
    return field(model, "modules"), [float(v) for v in values]


def mean_values(mean: Any) -> np.ndarray | None:
    """data.mean as float64 numbers when it is a tensor or a flat list of at most 3 numbers; None
    otherwise (never converting an untrusted nested structure, which may share references)."""
    if isinstance(mean, np.ndarray) and mean.size <= 3 and mean.dtype.kind in "fiu":
        return mean.astype(np.float64).ravel()
    if isinstance(mean, list) and len(mean) <= 3 and all(isinstance(v, int | float) for v in mean):
        return np.array(mean, dtype=np.float64)
    return None


def described(value: Any) -> str:
    """A short description of an untrusted value, never its repr (a tree of shared references
    repr's exponentially): a number, or its type and size."""
    if isinstance(value, bool | int | float):
        return repr(value)[:40]
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} tensor of shape {value.shape[:8]}"
    if isinstance(value, list | Mapping):
        return f"a table of {len(value)} entries"
    return f"a {typename(value)[:60]}"


def tensor(module: Any, name: str, shape: tuple[int, ...], where: str) -> torch.Tensor:
    value = field(module, name)
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise Torch7Error(f"{where}: `{name}` is missing or not a floating-point tensor")
    if value.shape != shape and value.size == int(np.prod(shape)) and name == "weight":
        value = value.reshape(shape)  # old nn's 2-D convolution weights (nOut × nIn·kH·kW)
    if value.shape != shape:
        raise Torch7Error(f"{where}: `{name}` has shape {value.shape}, expected {shape}")
    if not np.isfinite(value).all():
        raise Torch7Error(f"{where}: `{name}` holds non-finite values")
    return torch.from_numpy(np.array(value, dtype=np.float32))


def geometry(module: Any) -> dict[str, int]:
    keys = ("nInputPlane", "nOutputPlane", "kW", "kH", "dW", "dH", "padW", "padH")
    found = {key: field(module, key) for key in keys}
    found["dilationW"] = field(module, "dilationW") or 1  # plain SpatialConvolution: 1
    found["dilationH"] = field(module, "dilationH") or 1
    found["adjW"] = field(module, "adjW") or 0  # SpatialFullConvolution's output padding
    found["adjH"] = field(module, "adjH") or 0
    return found


def convolution_state(module: Any, expected: torch.nn.Module, where: str) -> dict[str, torch.Tensor]:
    """nn.SpatialConvolution / SpatialDilatedConvolution / SpatialFullConvolution → Conv2d or
    ConvTranspose2d tensors; every geometric field must equal the expected layer's."""
    transposed = isinstance(expected, torch.nn.ConvTranspose2d)
    kinds = TRANSPOSED if transposed else CONVOLUTIONS
    if module_kind(module) not in kinds:
        raise Torch7Error(f"{where}: {typename(module)}, expected one of nn.{', nn.'.join(sorted(kinds))}")
    found = geometry(module)
    want = {
        "nInputPlane": expected.in_channels,
        "nOutputPlane": expected.out_channels,
        "kW": expected.kernel_size[1],
        "kH": expected.kernel_size[0],
        "dW": expected.stride[1],
        "dH": expected.stride[0],
        "padW": expected.padding[1],
        "padH": expected.padding[0],
        "dilationW": expected.dilation[1],
        "dilationH": expected.dilation[0],
        "adjW": expected.output_padding[1],
        "adjH": expected.output_padding[0],
    }
    wrong = [
        f"{key} {described(found[key])} (expected {value})"
        for key, value in want.items()
        if not isinstance(found[key], int | float) or found[key] != value
    ]
    if wrong:
        raise Torch7Error(
            f"{where}: {typename(module)} does not fit the completion network: {', '.join(wrong)}"
        )
    return {
        "weight": tensor(module, "weight", tuple(expected.weight.shape), where),
        "bias": tensor(module, "bias", tuple(expected.bias.shape), where),
    }


def batch_norm_state(module: Any, expected: torch.nn.BatchNorm2d, where: str) -> dict[str, torch.Tensor]:
    """nn.SpatialBatchNormalization → BatchNorm2d tensors. Files of nn before 2016 keep `running_std`
    = 1/sqrt(var + eps); nn's own reader turns it into running_var = running_std^-2 − eps."""
    if module_kind(module) != "SpatialBatchNormalization":
        raise Torch7Error(f"{where}: {typename(module)}, expected nn.SpatialBatchNormalization")
    shape = (expected.num_features,)
    eps = field(module, "eps")
    if not isinstance(eps, int | float) or not 0 <= eps < 1:
        raise Torch7Error(f"{where}: `eps` must be a number in [0, 1), got {described(eps)}")
    expected.eps = float(eps)
    if field(module, "running_var") is not None:
        variance = tensor(module, "running_var", shape, where)
    else:
        variance = tensor(module, "running_std", shape, where).pow(-2) - float(eps)
    if not bool(torch.isfinite(variance).all() and (variance >= 0).all()):
        raise Torch7Error(f"{where}: the running variance is negative or not finite")
    return {
        "weight": tensor(module, "weight", shape, where),
        "bias": tensor(module, "bias", shape, where),
        "running_mean": tensor(module, "running_mean", shape, where),
        "running_var": variance,
        "num_batches_tracked": torch.tensor(0),
    }


def check_activation(module: Any, kind: str, where: str) -> None:
    if module_kind(module) != kind:
        raise Torch7Error(f"{where}: {typename(module)}, expected nn.{kind}")
    if kind == "ReLU" and (field(module, "threshold") or 0, field(module, "val") or 0) != (0, 0):
        raise Torch7Error(f"{where}: nn.ReLU with threshold/val other than 0")


def completion_state(
    data: Any, network: torch.nn.Sequential, source: str
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The state dict for `network` (Python index i = Lua index i + 1) and the RGB mean."""
    modules, mean = model_and_mean(data, source)
    if len(modules) != len(network):
        raise Torch7Error(
            f"{source}: data.model has {len(modules)} modules, GL's completion network {len(network)}"
        )
    state: dict[str, torch.Tensor] = {}
    for index, (module, expected) in enumerate(zip(modules, network, strict=True)):
        where = f"{source}, module {index + 1} of data.model"
        if isinstance(expected, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            tensors = convolution_state(module, expected, where)
        elif isinstance(expected, torch.nn.BatchNorm2d):
            tensors = batch_norm_state(module, expected, where)
        else:
            check_activation(module, type(expected).__name__, where)
            tensors = {}
        state.update({f"{index}.{name}": value for name, value in tensors.items()})
    return state, mean
