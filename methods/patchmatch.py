"""PatchMatch fill (Barnes et al., SIGGRAPH 2009), the paper's PM baseline, via pypatchmatch.

`patch_size` is the patch radius: patches span (2·patch_size+1)² pixels (default 7×7).
"""

from __future__ import annotations

import numpy as np

from bench.core.errors import MethodError
from bench.methods.classical import PerImageUint8Method
from bench.methods.registry import register


class PatchMatch(PerImageUint8Method):
    name = "patchmatch"

    def __init__(self, device: str = "cpu", patch_size: int = 3, seed: int = 0) -> None:
        super().__init__(device)
        if int(patch_size) < 1:
            raise MethodError(f"patchmatch: patch radius patch_size must be 1 or more, got {patch_size}")
        from patchmatch import patch_match  # the native library is loaded on first use

        if not patch_match.patchmatch_available:
            raise RuntimeError(
                "the pypatchmatch native library could not be loaded; "
                "reinstall it with `pip install --force-reinstall pypatchmatch`"
            )
        self._lib = patch_match
        self.patch_size = int(patch_size)
        self.seed = int(seed)

    def fill_uint8(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        # Re-seeding per image makes every image's result independent of the order of the run.
        self._lib.set_random_seed(self.seed)
        return self._lib.inpaint(rgb, hole, patch_size=self.patch_size)

    def __getstate__(self) -> dict:  # for worker processes: the native module is loaded again there
        return {k: v for k, v in self.__dict__.items() if k != "_lib"}

    def __setstate__(self, state: dict) -> None:
        from patchmatch import patch_match

        self.__dict__.update(state, _lib=patch_match)

    def options(self) -> dict[str, int]:
        return {"patch_size": self.patch_size, "seed": self.seed}


@register("patchmatch")
def create_patchmatch(device: str = "cpu", patch_size: int = 3, seed: int = 0) -> PatchMatch:
    return PatchMatch(device, patch_size, seed)
