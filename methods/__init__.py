"""Inpainting methods behind one interface; see `methods.base.Method`."""

if __name__ != "bench.methods":  # imported under the folder's name: every file would load twice
    raise ImportError(
        "import bench.methods, not methods: the folder methods/ is installed as bench.methods "
        "(pip install -e . in the checkout)"
    )

from bench.core.errors import MethodError
from bench.methods import ca, gl, lbam, opencv_fill, patchmatch, pconv  # noqa: F401  (registers the methods)
from bench.methods.base import Method, check_inputs, composite
from bench.methods.registry import UnknownMethodError, available, create, option_names, register

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
