"""The paper's Figures 7 and 8 for an LBAM instance, drawn from its intermediates on one test pair.

Figure 7: feature maps of the first encoder layer and of the 13th (decoder) layer.
Figure 8: the updated forward masks of layers 1–3 and the reverse masks of layers 11–13 (after g_A).
Each map is shown as the mean over channels and as its first channels, min–max normalised.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from torch import Tensor

from bench.core.files import safe_name

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CHANNELS_SHOWN = 3


def normalised(map_2d: Tensor) -> np.ndarray:
    array = map_2d.detach().float().cpu().numpy()
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def panels(tensor: Tensor) -> list[tuple[str, np.ndarray]]:
    """Channel mean and the first channels of the first image of an N×C×H×W tensor."""
    shown = [("mean", normalised(tensor[0].mean(0)))]
    shown += [(f"ch {c}", normalised(tensor[0, c])) for c in range(min(CHANNELS_SHOWN, tensor.shape[1]))]
    return shown


def draw(rows: list[tuple[str, Tensor]], title: str, path: Path) -> None:
    columns = 1 + CHANNELS_SHOWN
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(2.0 * columns, 2.0 * len(rows)), dpi=90, squeeze=False
    )
    for row, (label, tensor) in enumerate(rows):
        shown = panels(tensor)
        for column in range(columns):
            axis = axes[row][column]
            axis.axis("off")
            if column < len(shown):
                name, image = shown[column]
                axis.imshow(image, cmap="viridis", vmin=0, vmax=1)
                axis.set_title(f"{label}: {name}", fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def save_lbam_figures(method, image: Tensor, mask: Tensor, folder: Path, name: str) -> dict[str, str]:
    """Write figure7_<name>.png and figure8_<name>.png; returns {figure: file name}."""
    found = method.intermediates(image, mask)
    safe = safe_name(name)
    figure7, figure8 = f"figure7_{safe}.png", f"figure8_{safe}.png"
    draw(
        [("encoder layer 1", found["encoder1_features"]), ("layer 13", found["decoder13_features"])],
        f"Figure 7 – {name}: feature maps",
        folder / figure7,
    )
    rows = [(f"forward mask {i + 1}", m) for i, m in enumerate(found["forward_masks"])]
    rows += [(f"reverse mask {11 + i}", m) for i, m in enumerate(found["reverse_masks"])]
    draw(rows, f"Figure 8 – {name}: attention maps after g_A", folder / figure8)
    return {"figure7": figure7, "figure8": figure8}
