"""Per-image metrics on images in [0,1]: PSNR, SSIM, mean ℓ1 (%), LPIPS; all torch, batched.

Each pair also stores what the other evaluation protocol needs (reports/protocols.py,
docs/evaluation_protocols.md): its MSE (the release's PSNR pools it over a batch) and
`ssim_release`, the SSIM of the release's pytorch_ssim on ×255 images (bench/evaluation/release_ssim.py).

SSIM follows Wang et al. 2004 as scikit-image computes it with `gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1`: 11-tap Gaussian, reflect padding, 5-pixel border
cropped, averaged over RGB channels. The Gaussian is applied as two banded matrix products with
the padding folded into the matrices, computed block by block so that only the band is multiplied
(faster on the CPU than a depthwise convolution or the full matrices), and only where the map can
differ from 1 (around the pixels where the images differ).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from bench.core.files import sha256_path
from bench.core.tensors import composite, default_weights_dir, in_chunks
from bench.core.vocabulary import MetricProtocol
from bench.evaluation.release_ssim import release_ssim


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
    return psnr_of_mse(_mean_squared_error(prediction, target), data_range)


def psnr_of_mse(mse: Tensor, data_range: float = 1.0) -> Tensor:
    """10·log10(R² / MSE), float32 from the float64 MSE."""
    return (10 * torch.log10(data_range**2 / mse)).float()


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
RADIUS = 5  # int(3.5 · 1.5 + 0.5): the 11-tap window


@lru_cache(maxsize=256)
def gaussian_band(size: int, start: int, stop: int, device: str = "cpu") -> Band:
    """Rows start..stop of G (`gaussian_filter_matrix`) cut into blocks: (first input, last input,
    block, blockᵀ). Only the 2·radius + block input columns a block reads are kept; reflection
    stays folded in."""
    matrix = gaussian_filter_matrix(size, device=device)
    blocks = []
    for top in range(start, stop, BAND_ROWS):
        bottom = min(stop, top + BAND_ROWS)
        first, last = max(0, top - RADIUS), min(size, bottom + RADIUS)
        block = matrix[top:bottom, first:last].contiguous()
        blocks.append((first, last, block, block.T.contiguous()))
    return tuple(blocks)


def _blur(x: Tensor, rows: Band, columns: Band) -> Tensor:
    """G_h · x · G_wᵀ for the output rows and columns of the bands, block by block along each axis;
    only the input rows the row band reads are multiplied across."""
    offset = rows[0][0]
    x = x[..., offset : rows[-1][1], :]
    across = torch.cat([x[..., first:last] @ block_t for first, last, _, block_t in columns], -1)
    return torch.cat(
        [block @ across[..., first - offset : last - offset, :] for first, last, block, _ in rows], -2
    )


def ssim(prediction: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM per image (Wang et al. 2004, Eq. 13) over channels, as skimage computes it.

    On the CPU image by image over the pixels whose window reaches a pixel where prediction and
    target differ: elsewhere μx = μy, σx² = σy² = σxy bit for bit, so the map is exactly 1 (as in the
    release's SSIM, bench/evaluation/release_ssim.py); on CUDA the whole batch at once."""
    h, w = prediction.shape[-2:]
    if min(h, w) < 2 * RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11×11 pixels, got {h}×{w}")
    if prediction.device.type != "cpu":
        return _ssim(prediction, target, data_range, (RADIUS, h - RADIUS), (RADIUS, w - RADIUS))
    values = []
    for p, t in zip(prediction, target, strict=True):
        differs = (p != t).any(dim=0)
        if not bool(differs.any()):
            values.append(torch.ones(1))
            continue
        rows, cols = _span(differs.any(dim=1), h), _span(differs.any(dim=0), w)
        region = _ssim(p[None], t[None], data_range, rows, cols)  # the map's mean over the region
        computed, interior = (rows[1] - rows[0]) * (cols[1] - cols[0]), (h - 2 * RADIUS) * (w - 2 * RADIUS)
        values.append((region.double() * computed + (interior - computed)) / interior)
    return torch.cat(values).float()


def _span(differs: Tensor, size: int) -> tuple[int, int]:
    """Map rows (or columns; inside the 5-pixel border skimage crops) whose windows reach a
    differing pixel."""
    where = differs.nonzero()
    return max(RADIUS, int(where[0]) - RADIUS), min(size - RADIUS, int(where[-1]) + RADIUS + 1)


def _ssim(
    prediction: Tensor, target: Tensor, data_range: float, rows: tuple[int, int], cols: tuple[int, int]
) -> Tensor:
    """The SSIM map's mean per image over map rows × cols."""
    h, w = prediction.shape[-2:]
    device = str(prediction.device)
    gh = gaussian_band(h, *rows, device=device)
    gw = gaussian_band(w, *cols, device=device)
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
    return numerator.div_(denominator).mean(dim=(-3, -2, -1))


class LpipsUnavailable(RuntimeError):
    pass


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def default_alexnet_weights() -> Path:
    """Where torchvision keeps ImageNet AlexNet weights: $TORCH_HOME/hub/checkpoints/."""
    return default_weights_dir() / ALEXNET_FILE


def hash_prefix(path: Path) -> str | None:
    """The SHA-256 prefix torchvision and torch.hub put in weight file names (`name-<hex>.pth`)."""
    match = re.search(r"-([0-9a-f]{8,64})\.pth?$", path.name)
    return match.group(1) if match else None


def checked_alexnet_weights(path: Path) -> tuple[dict[str, Tensor], str]:
    """The AlexNet state dict at `path` and its SHA-256; a folder, an unreadable file, a name whose
    hash prefix the contents do not match, or other keys or shapes are refused (CheckpointError)."""
    from bench.methods.checkpoints import CheckpointError, load_file, one_line

    if path.is_dir():
        raise CheckpointError(f"--lpips-weights {path} is a folder, not a weights file")
    digest = sha256_path(path)
    prefix = hash_prefix(path)
    if prefix and not digest.startswith(prefix):
        raise CheckpointError(
            f"{path.name}: its contents do not match the hash in its name (sha256 {digest[:12]}…, name "
            f"{prefix}); the file is damaged or not the one named"
        )
    state = load_file(path)  # refuses unreadable files, with the reason
    import torchvision

    expected = torchvision.models.alexnet().state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path.name}: not an AlexNet state dict (a dict of tensors)")
    wrong = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
    extra = [k for k in state if k not in expected]
    if wrong or extra:
        shown = one_line(", ".join(map(str, (wrong + extra)[:4])), 120)
        raise CheckpointError(
            f"{path.name}: not torchvision's AlexNet weights ({len(wrong)} missing or misshaped, "
            f"{len(extra)} unexpected keys, e.g. {shown})"
        )
    return state, digest


def load_lpips(alexnet_weights: Path | None = None, device: str = "cpu") -> torch.nn.Module:
    """LPIPS v0.1 (Zhang et al. 2018, AlexNet). The linear heads ship with the `lpips` package;
    the ImageNet AlexNet backbone is read from the torch cache or `alexnet_weights` and is never
    replaced by a random one: LpipsUnavailable says which file is missing, CheckpointError why a
    file present cannot be used. The model's `weights_sha256` names the backbone file's contents."""
    path = Path(alexnet_weights).expanduser() if alexnet_weights else default_alexnet_weights()
    if not path.exists():
        raise LpipsUnavailable(
            f"LPIPS needs the ImageNet AlexNet weights at {path} (torchvision's {ALEXNET_FILE}); "
            "copy the file there or pass its path, e.g. from a machine with internet: "
            "python -c 'import torchvision; torchvision.models.alexnet(weights=\"DEFAULT\")'"
        )
    state, digest = checked_alexnet_weights(path)
    import lpips
    import torchvision

    backbone = torchvision.models.alexnet()
    backbone.load_state_dict(state)
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    for slice_ in (getattr(model.net, f"slice{i}") for i in range(1, 6)):
        for index, _ in list(slice_.named_children()):
            setattr(slice_, index, backbone.features[int(index)])
    model.weights_sha256 = digest
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
    mse = mean_squared_error(prediction, target)
    scores = {
        "psnr": psnr_of_mse(mse),  # as psnr(prediction, target), without a second pass
        "ssim": ssim(prediction, target),
        "l1": mean_l1_percent(prediction, target),
        "mse": mse,
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
