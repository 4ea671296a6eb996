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


def create(name: str, device: str = "cpu", checkpoint: str | Path | None = None, **options: Any) -> Method:
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, available(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownMethodError(f"unknown method {name!r}.{hint} Available: {', '.join(available())}.")
    factory = _FACTORIES[name]
    try:
        inspect.signature(factory).bind(device=device, checkpoint=checkpoint, **options)
    except TypeError as error:
        accepted = [p for p in inspect.signature(factory).parameters if p not in ("device", "checkpoint")]
        raise MethodError(f"{name}: {error}; its options are: {', '.join(accepted) or 'none'}") from None
    return factory(device=device, checkpoint=checkpoint, **options)


def option_types(name: str) -> dict[str, Any]:
    """The annotated type of each option of `create(name, ...)` (e.g. float, str | None)."""
    if name not in _FACTORIES:
        return {}
    hints = typing.get_type_hints(_FACTORIES[name])
    return {key: hints.get(key, Any) for key in option_names(name)}
