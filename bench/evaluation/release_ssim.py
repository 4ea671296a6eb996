"""The LBAM release's SSIM (test_random_batch.py: pytorch_ssim.ssim(GT·255, output·255)), as written
and fast; docs/evaluation_protocols.md.

The release's SSIM is limited by float32 rounding (variances are differences of numbers near 255²),
so a faster formula (separable blur, float64) moves it by up to ~1e-4. The fast path therefore keeps
the release's arithmetic, one 11×11 float32 window sum per pixel and the same element-wise formula,
and only does less of it:

- the five maps (x, y, x², y², xy of every channel) go through one depthwise convolution as the
  channels of one tensor, padded to 16 channels (oneDNN convolves 16 faster than 15). It
  stays in planes (NCHW): channels-last convolves ≈ 2 ms faster, but moving 16 planes of 266² in and
  out of that layout cost more on the 2-core machine (docs/performance.md); both layouts give the
  same floats;
- where a window holds only known pixels, x = y bit for bit in the composite, so μx = μy, σx² = σy² =
  σxy and the map's numerator and denominator are the same float: the map is exactly 1 there. Only
  the bounding box of the differing pixels grown by the window's radius is computed.

Its values equal the as-written function's within 1e-6 (tests/test_release_ssim.py, on composites).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

RELEASE_SSIM_WINDOW, RELEASE_SSIM_SIGMA = 11, 1.5
RADIUS = RELEASE_SSIM_WINDOW // 2
LANES = 16  # the stacked maps are padded to a multiple of this many channels
C1, C2 = 0.01**2, 0.03**2  # pytorch_ssim's constants (of the range 1, on 0–255 images)


@lru_cache(maxsize=8)
def release_ssim_window(channels: int, device: str = "cpu") -> Tensor:
    """pytorch_ssim's create_window: the normalised 1-D Gaussian's outer product, float32."""
    taps = torch.arange(RELEASE_SSIM_WINDOW, dtype=torch.float64) - RADIUS
    gauss = torch.exp(-(taps**2) / (2 * RELEASE_SSIM_SIGMA**2)).float()
    gauss = (gauss / gauss.sum())[:, None]
    window = (gauss @ gauss.T)[None, None]
    return window.expand(channels, 1, RELEASE_SSIM_WINDOW, RELEASE_SSIM_WINDOW).contiguous().to(device)


def ssim_map(mu_x: Tensor, mu_y: Tensor, xx: Tensor, yy: Tensor, xy: Tensor) -> Tensor:
    """pytorch_ssim's _ssim map from the five blurred maps, in its order of operations."""
    mu_x_sq, mu_y_sq, mu_xy = mu_x.pow(2), mu_y.pow(2), mu_x * mu_y
    sigma_x_sq, sigma_y_sq, sigma_xy = xx - mu_x_sq, yy - mu_y_sq, xy - mu_xy
    return ((2 * mu_xy + C1) * (2 * sigma_xy + C2)) / (
        (mu_x_sq + mu_y_sq + C1) * (sigma_x_sq + sigma_y_sq + C2)
    )


def release_ssim_as_written(prediction: Tensor, target: Tensor) -> Tensor:
    """The release's function transcribed: five depthwise convolutions with zero padding over the
    whole batch, the map's float32 mean per image. The reference of the fast path; used on CUDA."""
    x, y = target.float() * 255, prediction.float() * 255  # the script's (GT, output) order
    channels = x.shape[1]
    window = release_ssim_window(channels, str(x.device))

    def blur(image: Tensor) -> Tensor:
        return F.conv2d(image, window, padding=RADIUS, groups=channels)

    blurred = [blur(image) for image in (x, y, x * x, y * y, x * y)]
    return ssim_map(*blurred).flatten(1).mean(dim=1)


def release_ssim(prediction: Tensor, target: Tensor) -> Tensor:
    """SSIM per image as the release computes it: 11×11 Gaussian window, σ 1.5, zero padding, the
    map's mean over every pixel and channel (no border cropped). The release averages it over a
    batch of equal-sized images, which is the mean of these per-image values. On the CPU image by
    image over the region where prediction and target differ (module docstring)."""
    if prediction.device.type != "cpu":
        return release_ssim_as_written(prediction, target)
    values = [_one_image(p, t) for p, t in zip(prediction, target, strict=True)]
    return torch.stack(values).float()


def _span(differs: Tensor, size: int) -> tuple[int, int]:
    """Output rows (or columns) whose windows reach a differing pixel."""
    where = differs.nonzero()
    return max(0, int(where[0]) - RADIUS), min(size, int(where[-1]) + RADIUS + 1)


def _one_image(prediction: Tensor, target: Tensor) -> Tensor:
    x, y = target.float() * 255, prediction.float() * 255
    channels, height, width = x.shape
    differs = (x != y).any(dim=0)
    if not bool(differs.any()):
        return torch.ones((), dtype=torch.float64)  # every window: numerator = denominator
    top, bottom = _span(differs.any(dim=1), height)
    left, right = _span(differs.any(dim=0), width)
    # the inputs those outputs read, with the release's zero padding where they leave the image
    rows = slice(max(0, top - RADIUS), min(height, bottom + RADIUS))
    cols = slice(max(0, left - RADIUS), min(width, right + RADIUS))
    padding = (
        cols.start - (left - RADIUS),
        right + RADIUS - cols.stop,
        rows.start - (top - RADIUS),
        bottom + RADIUS - rows.stop,
    )
    xs, ys = F.pad(x[:, rows, cols], padding), F.pad(y[:, rows, cols], padding)
    lanes = -(-5 * channels // LANES) * LANES
    unused = xs.new_zeros(lanes - 5 * channels, *xs.shape[1:])
    planes = torch.cat((xs, ys, xs * xs, ys * ys, xs * ys, unused))[None]
    blurred = F.conv2d(planes, release_ssim_window(lanes), groups=lanes)[0]
    maps = ssim_map(*(blurred[k * channels : (k + 1) * channels] for k in range(5)))
    computed = maps.numel()
    total = channels * height * width
    return (maps.double().sum() + (total - computed)) / total
