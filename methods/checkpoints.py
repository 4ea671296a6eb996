"""Safe, strict checkpoint loading shared by the learned methods (always weights_only=True)."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.errors import MethodError

OWN_FORMAT = "inpaint-bench"


class CheckpointError(MethodError):
    """A checkpoint that is missing, unsafe or of the wrong layout; the message says which."""


def load_file(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path.name}: refused by torch.load(weights_only=True): it is not a PyTorch checkpoint, or it "
            f"holds Python objects besides tensors and plain containers, which are never executed "
            f"({refusal_reason(str(error))})"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path.name}: not a readable PyTorch checkpoint ({error})") from error


def refusal_reason(message: str) -> str:
    """The line of torch's weights-only refusal that says what was refused (torch puts it after a
    paragraph about its changed default), on one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    marks = ("GLOBAL", "Unsupported", "unsupported", "WeightsUnpickler error")
    reason = next((line for line in lines if any(mark in line for mark in marks)), lines[0] if lines else "")
    return reason.removeprefix("WeightsUnpickler error:").strip()


def check_own_layout(data: Mapping[str, Any], source: str) -> None:
    """A project checkpoint must hold its options and its generator's state dict."""
    for key in ("options", "generator"):
        if not isinstance(data.get(key), Mapping):
            raise CheckpointError(
                f"{source}: a damaged {OWN_FORMAT} checkpoint: its '{key}' entry is missing or not a dict"
            )


def non_finite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def describe_mismatch(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> str | None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != expected[k].shape
    ]
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped)):
        if names:
            shown = ", ".join(names[:5]) + (f" … and {len(names) - 5} more" if len(names) > 5 else "")
            problems.append(f"{len(names)} {label} key(s): {shown}")
    if not problems:
        return None
    return f"{source} does not fit this model: " + "; ".join(problems)


def strict_load(module: nn.Module, state: Mapping[str, Any], source: str) -> None:
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source} is not a state dict of tensors")
    problem = describe_mismatch(module, state, source)
    if problem:
        raise CheckpointError(problem)
    broken = non_finite_tensors(state)
    if broken:
        shown = ", ".join(broken[:3]) + (f" … and {len(broken) - 3} more" if len(broken) > 3 else "")
        raise CheckpointError(f"{source}: {len(broken)} tensor(s) hold NaN or infinite values ({shown})")
    module.load_state_dict(state, strict=True)


def own_checkpoint(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("format") == OWN_FORMAT


def project_checkpoint(
    method: str, options: Mapping[str, Any], generator: Mapping[str, torch.Tensor], **training: Any
) -> dict[str, Any]:
    """The project's checkpoint format, written by training and read by `checked_own`: the method,
    the options its network was built with, the generator's state dict, and what training adds
    (discriminator, optimisers, step, RNG, train_config, vgg, versions)."""
    return {
        "format": OWN_FORMAT,
        "method": method,
        "options": dict(options),
        "generator": generator,
        **training,
    }


def checked_own(data: Mapping[str, Any], source: str, method: str) -> Mapping[str, Any]:
    """A project checkpoint whose layout holds and whose method is `method`."""
    check_own_layout(data, source)
    if data.get("method") != method:
        raise CheckpointError(f"{source} is a {data.get('method')} checkpoint, not {method}")
    return data


def merge_options(
    name: str, defaults: Mapping[str, Any], stored: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Options of a project checkpoint override the defaults; an explicit option that contradicts
    the checkpoint is an error (the weights would not fit or not mean what the option says), as is a
    stored option this version does not know."""
    unknown = sorted(set(stored) - set(defaults))
    if unknown:
        raise CheckpointError(
            f"{name}: the checkpoint carries option(s) this version does not know: {', '.join(unknown)} "
            f"(known: {', '.join(defaults)})"
        )
    for key, value in given.items():
        if key in stored and stored[key] != value:
            raise CheckpointError(
                f"{name}: the checkpoint was made with {key}={stored[key]!r}, not {value!r}"
            )
    return {**defaults, **stored, **given}


def training_summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a project checkpoint says about its training, for the results' provenance: every
    TrainConfig field it was saved with (none picked by hand), its step, its VGG16 weights and its
    validation curve (with Telea's scores on the same pairs) where it was validated."""
    config = data.get("train_config") or {}
    return {**config, "step": data.get("step"), "vgg": data.get("vgg"), "validation": data.get("validation")}
