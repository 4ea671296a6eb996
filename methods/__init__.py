"""Inpainting methods behind one interface; see `methods.base.Method`."""

from methods import ca, lbam, opencv_fill, patchmatch, pconv  # noqa: F401  (registers the methods)
from methods.base import Method, check_inputs, composite
from methods.registry import MethodError, UnknownMethodError, available, create, option_names, register

__all__ = [
    "Method",
    "MethodError",
    "UnknownMethodError",
    "available",
    "check_inputs",
    "composite",
    "create",
    "option_names",
    "register",
]
