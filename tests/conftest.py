from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.process import prepare_process

# The tests compute under the process settings the command lines use (denormals flushed on every
# thread, freed memory kept), set before any test starts torch's threads.
prepare_process()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def real_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo crop (astronaut) and a blurred, noisy version of it, float64 H×W×3 in [0,1]."""
    import skimage.data
    from scipy.ndimage import gaussian_filter

    image = skimage.data.astronaut()[100:196, 150:270].astype(np.float64) / 255
    noisy = gaussian_filter(image, sigma=(1.2, 1.2, 0)) + np.random.default_rng(0).normal(
        0, 0.03, image.shape
    )
    return image, np.clip(noisy, 0, 1)


def to_nchw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float()
