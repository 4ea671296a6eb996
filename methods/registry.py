"""A small registry in the style of timm: `create(name, **options)`, `available()`."""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core.errors import MethodError
from bench.methods.base import Method
from bench.methods.released import resolve_checkpoint

_FACTORIES: dict[str, Callable[..., Method]] = {}


class UnknownMethodError(MethodError):
    pass


def register(name: str) -> Callable[[Callable[..., Method]], Callable[..., Method]]:
    def add(factory: Callable[..., Method]) -> Callable[..., Method]:
        if name in _FACTORIES:
            raise ValueError(f"method {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return add


def available() -> list[str]:
    return sorted(_FACTORIES)


def option_names(name: str) -> list[str]:
    """The options `create(name, ...)` accepts besides device and checkpoint."""
    if name not in _FACTORIES:
        return []
    return [p for p in inspect.signature(_FACTORIES[name]).parameters if p not in ("device", "checkpoint")]


def is_learned(name: str) -> bool:
    """Whether `create(name)` makes a learned method, read from its factory's return type (its
    `learned` class attribute) without building the network."""
    if name not in _FACTORIES:
        return False
    return bool(getattr(typing.get_type_hints(_FACTORIES[name]).get("return"), "learned", False))


def takes_checkpoint(name: str) -> bool:
    """Whether method `name` has weights to load (its factory takes a `checkpoint`)."""
    return name in _FACTORIES and "checkpoint" in inspect.signature(_FACTORIES[name]).parameters


def factory_of(name: str) -> Callable[..., Method]:
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, available(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownMethodError(f"unknown method {name!r}.{hint} Available: {', '.join(available())}.")
    return _FACTORIES[name]


def create(
    name: str,
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
    **options: Any,
) -> Method:
    """Method `name` with its options. `checkpoint`: a file, a folder or a catalogue name of
    methods/released.py (looked up in `weights_dir`, or inside this package for shipped entries),
    for every learned method through the one resolver, released.resolve_checkpoint."""
    factory = factory_of(name)
    try:
        inspect.signature(factory).bind(device=device, **options)
    except TypeError as error:
        accepted = ", ".join(option_names(name)) or "none"
        raise MethodError(f"{name}: {error}; its options are: {accepted}") from None
    if not takes_checkpoint(name):
        checkpoint_path(name, checkpoint)  # refuses one
        return factory(device=device, **options)
    return factory(device=device, checkpoint=checkpoint_path(name, checkpoint, weights_dir), **options)


def checkpoint_path(
    name: str, checkpoint: str | Path | None, weights_dir: str | Path | None = None
) -> Path | None:
    """The one checkpoint path of `create` and RunConfig: a file, a folder or a catalogue name →
    the path the method's loader reads (released.resolve_checkpoint); refused for a method
    without weights."""
    if checkpoint is None:
        return None
    factory_of(name)  # an unknown name is refused as such
    if not takes_checkpoint(name):
        raise MethodError(f"{name} is a classical method and takes no checkpoint")
    return resolve_checkpoint(name, checkpoint, weights_dir)


def option_types(name: str) -> dict[str, Any]:
    """The annotated type of each option of `create(name, ...)` (e.g. float, str | None)."""
    if name not in _FACTORIES:
        return {}
    hints = typing.get_type_hints(_FACTORIES[name])
    return {key: hints.get(key, Any) for key in option_names(name)}
