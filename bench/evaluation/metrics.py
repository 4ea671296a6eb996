"""Per-image metrics on images in [0,1]: PSNR, SSIM, mean ℓ1 (%), LPIPS; all torch, batched.

Each pair also stores what the other evaluation protocol needs (reports/protocols.py,
docs/evaluation_protocols.md): its MSE (the release's PSNR pools it over a batch) and
`ssim_release`, the SSIM of the release's pytorch_ssim on ×255 images.

SSIM follows Wang et al. 2004 as scikit-image computes it with `gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1`: 11-tap Gaussian, reflect padding, 5-pixel border
cropped, averaged over RGB channels. The Gaussian is applied as two banded matrix products with
the padding folded into the matrices, computed block by block so that only the band is multiplied
(faster on the CPU than a depthwise convolution or the full matrices).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from bench.core.tensors import composite, default_weights_dir, in_chunks
from bench.core.vocabulary import MetricProtocol


def to_luma(image: Tensor) -> Tensor:
    """ITU-R BT.601 luma Y of an N×3×H×W image in [0,1], as skimage.color.rgb2ycbcr, scaled to [0,1]."""
    weights = image.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (image * weights).sum(dim=1, keepdim=True)) / 255.0


def prepare(image: Tensor, protocol: MetricProtocol) -> Tensor:
    if protocol.quantize_8bit:
        image = (image.clamp(0, 1) * 255).round() / 255
    if protocol.color == "y":
        image = to_luma(image)
    return image


CPU_CHUNK = 4  # images per pass on the CPU: their maps stay in cache, allocations stay small (1.6–10×)


def per_chunk(function: Callable[..., Tensor], prediction: Tensor, target: Tensor, *args: float) -> Tensor:
    """function(prediction, target, *args) over chunks of CPU_CHUNK images on the CPU; on CUDA the
    whole batch at once."""
    chunk = CPU_CHUNK if prediction.device.type == "cpu" else prediction.shape[0]
    return in_chunks(function, prediction, target, chunk, *args)


SQUARES_BLOCK = 4096  # float32 partial sums this long, added in float64


def sum_of_squares(rows: Tensor) -> Tensor:
    """Σ x² per row in float64 precision (~1e-7 relative): float32 dot products over blocks, their
    sum in float64; several times faster than a float64 reduction of the whole row."""
    n = rows.shape[1]
    cut = n - n % SQUARES_BLOCK
    blocks = rows[:, :cut].reshape(rows.shape[0], -1, SQUARES_BLOCK)
    total = torch.linalg.vecdot(blocks, blocks).double().sum(dim=1)
    rest = rows[:, cut:]
    return total + torch.linalg.vecdot(rest, rest).double()


def psnr(prediction: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """10·log10(R² / MSE) per image (skimage.metrics.peak_signal_noise_ratio); inf when equal."""
    return per_chunk(_psnr, prediction, target, data_range)


def mean_l1_percent(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over the whole image, in percent of the [0,1] range (Table 1's ℓ1)."""
    return per_chunk(_mean_l1_percent, prediction, target)


def _mean_l1_percent(prediction: Tensor, target: Tensor) -> Tensor:
    return (prediction - target).abs_().flatten(1).mean(dim=1) * 100


def mean_squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """MSE per image over every pixel and channel (float64 precision)."""
    return per_chunk(_mean_squared_error, prediction, target)


def _mean_squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    difference = (prediction - target).flatten(1)
    return sum_of_squares(difference) / difference.shape[1]


def _psnr(prediction: Tensor, target: Tensor, data_range: float) -> Tensor:
    return (10 * torch.log10(data_range**2 / _mean_squared_error(prediction, target))).float()


@lru_cache(maxsize=16)
def gaussian_filter_matrix(
    size: int, sigma: float = 1.5, truncate: float = 3.5, device: str = "cpu"
) -> Tensor:
    """G (size×size) with G @ x = scipy.ndimage.gaussian_filter1d(x, sigma, mode='reflect')."""
    radius = int(truncate * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (taps / sigma) ** 2)
    weights /= weights.sum()
    matrix = torch.zeros(size, size, dtype=torch.float64)
    rows = torch.arange(size)
    for offset, weight in zip(range(-radius, radius + 1), weights, strict=True):
        cols = rows + offset
        # scipy 'reflect' is half-sample symmetric: (d c b a | a b c d | d c b a)
        while bool(((cols < 0) | (cols >= size)).any()):
            cols = torch.where(cols < 0, -cols - 1, cols)
            cols = torch.where(cols >= size, 2 * size - cols - 1, cols)
        matrix.index_put_((rows, cols), weight.expand(size), accumulate=True)
    return matrix.to(device=device, dtype=torch.float32)


Band = tuple[tuple[int, int, Tensor, Tensor], ...]
BAND_ROWS = 32  # output rows per block: 32 + 10 input rows instead of all of them (2.5× faster)


@lru_cache(maxsize=16)
def gaussian_band(size: int, device: str = "cpu", radius: int = 5) -> Band:
    """G of `gaussian_filter_matrix` cut into row blocks: (first input, last input, block, blockᵀ).
    Only the 2·radius + block input columns a block reads are kept; reflection stays folded in."""
    matrix = gaussian_filter_matrix(size, device=device)
    blocks = []
    for start in range(0, size, BAND_ROWS):
        stop = min(size, start + BAND_ROWS)
        first, last = max(0, start - radius), min(size, stop + radius)
        block = matrix[start:stop, first:last].contiguous()
        blocks.append((first, last, block, block.T.contiguous()))
    return tuple(blocks)


def _blur(x: Tensor, rows: Band, columns: Band) -> Tensor:
    """G_h · x · G_wᵀ, block by block along each axis."""
    across = torch.cat([x[..., first:last] @ block_t for first, last, _, block_t in columns], -1)
    return torch.cat([block @ across[..., first:last, :] for first, last, block, _ in rows], -2)


def ssim(prediction: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM per image (Wang et al. 2004, Eq. 13) over channels, as skimage computes it;
    on CUDA the whole batch at once."""
    return per_chunk(_ssim, prediction, target, data_range)


def _ssim(prediction: Tensor, target: Tensor, data_range: float) -> Tensor:
    h, w = prediction.shape[-2:]
    radius = 5  # int(3.5 · 1.5 + 0.5): the 11-tap window
    if min(h, w) < 2 * radius + 1:
        raise ValueError(f"SSIM needs images of at least 11×11 pixels, got {h}×{w}")
    device = str(prediction.device)
    gh = gaussian_band(h, device=device)
    gw = gh if w == h else gaussian_band(w, device=device)
    x, y = prediction.float(), target.float()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _blur(x, gh, gw), _blur(y, gh, gw)
    # σx² + σy² needs only the blur of x² + y² (the blur is linear): four blurs instead of five
    blurred_squares = _blur(torch.addcmul(x * x, y, y), gh, gw)
    blurred_product = _blur(x * y, gh, gw)
    # ((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)), in place where possible
    mu_squares = torch.addcmul(mu_x * mu_x, mu_y, mu_y)
    mu_xy = mu_x.mul_(mu_y)
    numerator = blurred_product.sub_(mu_xy).mul_(2).add_(c2).mul_(mu_xy.mul_(2).add_(c1))
    denominator = blurred_squares.sub_(mu_squares).add_(c2).mul_(mu_squares.add_(c1))
    ssim_map = numerator.div_(denominator)
    return ssim_map[..., radius:-radius, radius:-radius].mean(dim=(-3, -2, -1))


RELEASE_SSIM_WINDOW, RELEASE_SSIM_SIGMA = 11, 1.5


@lru_cache(maxsize=8)
def release_ssim_window(channels: int, device: str = "cpu") -> Tensor:
    """pytorch_ssim's create_window: the normalised 1-D Gaussian's outer product, float32."""
    taps = torch.arange(RELEASE_SSIM_WINDOW, dtype=torch.float64) - RELEASE_SSIM_WINDOW // 2
    gauss = torch.exp(-(taps**2) / (2 * RELEASE_SSIM_SIGMA**2)).float()
    gauss = (gauss / gauss.sum())[:, None]
    window = (gauss @ gauss.T)[None, None]
    return window.expand(channels, 1, RELEASE_SSIM_WINDOW, RELEASE_SSIM_WINDOW).contiguous().to(device)


def release_ssim(prediction: Tensor, target: Tensor) -> Tensor:
    """SSIM per image as the LBAM release's test script computes it (test_random_batch.py:
    pytorch_ssim.ssim(GT·255, output·255)): 11×11 Gaussian window, σ 1.5, zero padding, the
    constants C1 = 0.01², C2 = 0.03² of the range 1 although the images span 0–255, the map's mean
    over every pixel and channel (no border cropped). The release averages that over a batch of
    equal-sized images, which is the mean of these per-image values."""
    return per_chunk(_release_ssim, prediction, target)


def _release_ssim(prediction: Tensor, target: Tensor) -> Tensor:
    x, y = target.float() * 255, prediction.float() * 255  # the script's (GT, output) order
    channels = x.shape[1]
    window = release_ssim_window(channels, str(x.device))

    def blur(image: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(image, window, padding=RELEASE_SSIM_WINDOW // 2, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    mu_x_sq, mu_y_sq, mu_xy = mu_x.pow(2), mu_y.pow(2), mu_x * mu_y
    sigma_x_sq = blur(x * x) - mu_x_sq
    sigma_y_sq = blur(y * y) - mu_y_sq
    sigma_xy = blur(x * y) - mu_xy
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_xy + c1) * (2 * sigma_xy + c2)) / (
        (mu_x_sq + mu_y_sq + c1) * (sigma_x_sq + sigma_y_sq + c2)
    )
    return ssim_map.flatten(1).mean(dim=1)


class LpipsUnavailable(RuntimeError):
    pass


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def default_alexnet_weights() -> Path:
    """Where torchvision keeps ImageNet AlexNet weights: $TORCH_HOME/hub/checkpoints/."""
    return default_weights_dir() / ALEXNET_FILE


def load_lpips(alexnet_weights: Path | None = None, device: str = "cpu") -> torch.nn.Module:
    """LPIPS v0.1 (Zhang et al. 2018, AlexNet). The linear heads ship with the `lpips` package;
    the ImageNet AlexNet backbone is read from the torch cache or `alexnet_weights` and is never
    replaced by a random one: LpipsUnavailable says which file is missing."""
    path = Path(alexnet_weights) if alexnet_weights else default_alexnet_weights()
    if not path.is_file():
        raise LpipsUnavailable(
            f"LPIPS needs the ImageNet AlexNet weights at {path} (torchvision's {ALEXNET_FILE}); "
            "copy the file there or pass its path, e.g. from a machine with internet: "
            "python -c 'import torchvision; torchvision.models.alexnet(weights=\"DEFAULT\")'"
        )
    import lpips
    import torchvision

    backbone = torchvision.models.alexnet()
    backbone.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    for slice_ in (getattr(model.net, f"slice{i}") for i in range(1, 6)):
        for index, _ in list(slice_.named_children()):
            setattr(slice_, index, backbone.features[int(index)])
    return model.eval().to(device)


def score_batch(
    image: Tensor,
    mask: Tensor,
    output: Tensor,
    protocol: MetricProtocol,
    lpips_model: torch.nn.Module | None = None,
) -> dict[str, Tensor]:
    """Scores of a method's raw output against the ground truth, per image, under `protocol`."""
    scored = composite(image, mask, output) if protocol.target == "composite" else output
    prediction, target = prepare(scored.clamp(0, 1), protocol), prepare(image, protocol)
    scores = {
        "psnr": psnr(prediction, target),
        "ssim": ssim(prediction, target),
        "l1": mean_l1_percent(prediction, target),
        "mse": mean_squared_error(prediction, target),
        "ssim_release": release_ssim(prediction, target),
    }
    if lpips_model is not None:  # LPIPS is defined on RGB, whatever `protocol.color` says
        rgb = MetricProtocol(quantize_8bit=protocol.quantize_8bit)
        with torch.inference_mode():
            value = lpips_model(prepare(scored.clamp(0, 1), rgb), prepare(image, rgb), normalize=True)
        scores["lpips"] = value.flatten().float()
    else:
        scores["lpips"] = torch.full((image.shape[0],), math.nan)
    return {name: value.detach().cpu() for name, value in scores.items()}
