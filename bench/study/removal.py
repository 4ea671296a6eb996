"""`python -m bench.study removal`: object removal as in LBAM Fig. 6.

Objects are given per photo (paired by name with the data set's image ids) as contours: polygons
in the original photo's pixels, stored as data (JSON, see bench/study/data/demo_objects.json,
hand-drawn on three demo photos). Each is drawn at the photo's resolution, then cropped with the
test crop itself (short side → size, centre crop) and thresholded at 0.5, so mask and photo stay
aligned. `--mask-shape bbox` replaces every polygon with its bounding rectangle, the paper's
second variant ("either with contour shape or with rectangular bounding box"); `both` runs each.
Every method fills every (photo, shape); inputs, masks and fills are written as PNGs with
removal.json, and bench.reports.study renders report.html. There is no ground truth for a removed
object, so nothing is scored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench.core.errors import MaskError
from bench.core.files import file_digest, read_json, safe_name, write_json

SHAPES = ("contour", "bbox")
MASK_FORMAT = "inpaint-bench object masks v1"


def default_masks() -> Path:
    return Path(str(resources.files("bench.study").joinpath("data", "demo_objects.json")))


@dataclass
class RemovalConfig:
    methods: list[str]
    out: Path
    dataset: str = "demo"
    masks: Path = field(default_factory=default_masks)
    shapes: tuple[str, ...] = SHAPES
    size: int = 256
    seed: int = 0
    device: str = "cpu"
    checkpoints: dict[str, str] = field(default_factory=dict)  # resolved by RunConfig
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    allow_untrained: bool = False
    weights_dir: str | None = None


def check_polygon(where: str, polygon: Any) -> list[tuple[float, float]]:
    ok = isinstance(polygon, list) and len(polygon) >= 3
    points = []
    for point in polygon if ok else []:
        ok = ok and isinstance(point, list) and len(point) == 2
        ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in point)
        if ok:
            points.append((float(point[0]), float(point[1])))
    if not ok:
        raise MaskError(f"{where}: a polygon is a list of at least 3 [x, y] number pairs")
    return points


def read_object_masks(path: Path) -> dict[str, dict[str, Any]]:
    """image id → {"size": (W, H) or None, "objects": {name: polygon}} from a masks JSON file."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as error:
        raise MaskError(f"{path}: cannot read the object masks ({error})") from error
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict) or data.get("format") != MASK_FORMAT:
        raise MaskError(f"{path}: not an {MASK_FORMAT!r} file (format, images)")
    masks = {}
    for image_id, entry in data["images"].items():
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict) or not objects:
            raise MaskError(f"{path}: {image_id}: no objects")
        size = entry.get("size")
        masks[image_id] = {
            "size": tuple(size) if size else None,
            "objects": {name: check_polygon(f"{path}: {image_id}: {name}", p) for name, p in objects.items()},
        }
    return masks


def bounding_box(polygon: list[tuple[float, float]]) -> list[tuple[float, float]]:
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    return [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))]


def object_mask(polygons: list[list[tuple[float, float]]], width: int, height: int, shape: str) -> np.ndarray:
    """H×W float32, 1 = known, 0 = hole (every polygon, or its bounding rectangle, filled)."""
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        draw.polygon(bounding_box(polygon) if shape == "bbox" else polygon, fill=0, outline=0)
    return np.asarray(canvas, dtype=np.float32) / 255


def cropped_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The mask through the test crop (the photo's resize and centre crop), thresholded at 0.5."""
    from bench.datasets.images import test_crop

    crop = test_crop(np.repeat(mask[..., None], 3, axis=2), size)[..., 0]
    return (crop >= 128).astype(np.float32)


def load_photos(dataset: str, wanted: list[str]) -> dict[str, np.ndarray]:
    """The original photos (float32 H×W×3 in [0,1]) of `wanted` ids that the data set has."""
    from bench.datasets.demo import DEMO_PHOTOS, demo_photo
    from bench.datasets.images import list_images, read_rgb, unique_ids

    if dataset == "demo":
        return {name: demo_photo(name) for name in wanted if name in DEMO_PHOTOS}
    if not dataset.startswith("folder:"):
        raise MaskError(f"--dataset for object removal is demo or folder:PATH, got {dataset!r}")
    root = Path(dataset.removeprefix("folder:")).expanduser()
    if not root.is_dir():
        raise MaskError(f"{root} is not a folder")
    files = list_images(root)
    by_id = dict(zip(unique_ids(files, root), files, strict=True))
    return {image_id: read_rgb(by_id[image_id]) for image_id in wanted if image_id in by_id}


def save_rgb(pixels: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path)
    return path.name if path.parent.name == "" else f"{path.parent.name}/{path.name}"


def paired_photos(config: RemovalConfig) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    masks = read_object_masks(config.masks)
    photos = load_photos(config.dataset, list(masks))
    unpaired = sorted(set(masks) - set(photos))
    if unpaired:
        print(f"note: no photo in {config.dataset} for the masks of: {', '.join(unpaired)}")
    if not photos:
        raise MaskError(f"no photo of {config.dataset} is named as an image in {config.masks}")
    for image_id, photo in photos.items():
        size = masks[image_id]["size"]
        if size and tuple(size) != (photo.shape[1], photo.shape[0]):
            found = f"{photo.shape[1]}×{photo.shape[0]}"
            drawn = f"{size[0]}×{size[1]}"
            raise MaskError(
                f"{config.masks}: {image_id}'s polygons were drawn on a {drawn} photo, not {found}"
            )
    return masks, photos


def fill_photo(config: RemovalConfig, created: list, image_id: str, photo: np.ndarray, objects: dict) -> dict:
    import torch

    from bench.datasets.images import test_crop
    from bench.evaluation.harness import save_png, to_tensor
    from bench.study.create import input_with_holes

    image = test_crop(photo, config.size)
    folder = config.out / safe_name(image_id)
    shapes = []
    for shape in config.shapes:
        full = object_mask(list(objects.values()), photo.shape[1], photo.shape[0], shape)
        mask = cropped_mask(full, config.size)
        if mask.all():
            raise MaskError(f"{image_id}: the {shape} mask lies outside the {config.size}² centre crop")
        entry = {
            "shape": shape,
            "hole_ratio": float(1 - mask.mean()),
            "input": save_rgb(input_with_holes(image, mask), folder / f"input_{shape}.png"),
            "mask": save_rgb(np.repeat((255 * (1 - mask))[..., None], 3, 2), folder / f"mask_{shape}.png"),
            "fills": [],
        }
        for method in created:
            image_t, mask_t = to_tensor(image, mask, method.device)
            with torch.inference_mode():
                filled = method.inpaint(image_t, mask_t)
            path = folder / f"{shape}_{safe_name(method.name)}.png"
            save_png(filled, path)
            entry["fills"].append({"method": method.name, "src": f"{folder.name}/{path.name}"})
        shapes.append(entry)
    return {"image_id": image_id, "objects": sorted(objects), "shapes": shapes}


def weights_used(created: list, checkpoints: dict[str, str]) -> dict[str, str]:
    """Learned method → the weights file it filled with (the shipped CPU-scale ones when no
    --checkpoint was given), or a note that its weights are random."""
    from bench.core.vocabulary import CPU_SCALE_LABEL, method_of
    from bench.methods import released

    used = {}
    for method in [m for m in created if m.learned]:
        path = checkpoints.get(method.name)
        if not path or not method.trained:
            used[method.name] = "untrained (random weights)"
            continue
        shipped = released.shipped_default(method_of(method.name))
        ours = (
            shipped is not None
            and Path(path).resolve() == (released.PACKAGE_DIR / shipped.filename).resolve()
        )
        used[method.name] = f"{Path(path).name} ({CPU_SCALE_LABEL})" if ours else Path(path).name
    return used


def run_removal(config: RemovalConfig) -> Path:
    """Fill every paired photo's objects with every method; returns the report's path."""
    from bench.evaluation.config import RunConfig
    from bench.evaluation.session import create_methods
    from bench.reports.study import render_removal_report

    masks, photos = paired_photos(config)
    run_config = RunConfig(
        methods=list(config.methods),
        size=config.size,
        seed=config.seed,
        device=config.device,
        checkpoints=config.checkpoints,
        method_options=config.method_options,
        allow_untrained=config.allow_untrained,
        weights_dir=config.weights_dir,
    )
    created = create_methods(run_config, every_method=False)
    config.out.mkdir(parents=True, exist_ok=True)
    record = {
        "format": "inpaint-bench object removal v1",
        "dataset": config.dataset,
        "masks": str(config.masks),
        "masks_sha256": file_digest(config.masks),
        "size": config.size,
        "seed": config.seed,
        "shapes": list(config.shapes),
        "methods": {m.name: m.options() for m in created},
        "weights": weights_used(created, run_config.checkpoints),
        "ground_truth": "none: a removed object has no ground truth, so nothing is scored",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "photos": [fill_photo(config, created, i, photos[i], masks[i]["objects"]) for i in sorted(photos)],
    }
    write_json(config.out / "removal.json", record)
    return render_removal_report(config.out)


def add_removal(commands) -> None:
    parser = commands.add_parser("removal", help="object removal with contour or bounding-box masks (Fig. 6)")
    parser.add_argument("--methods", required=True, help="comma-separated method names (NAME@LABEL too)")
    parser.add_argument("--dataset", default="demo", help="demo or folder:PATH (photos named as the masks)")
    parser.add_argument("--masks", type=Path, default=None, help="object masks JSON (default: 3 demo photos)")
    parser.add_argument("--mask-shape", choices=(*SHAPES, "both"), default="both")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH or catalogue entry")
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--option", action="append", default=[], help="NAME.KEY=VALUE")
    parser.add_argument("--allow-untrained", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/removal"))


def removal(args: argparse.Namespace) -> int:
    from bench.run import parse_method_options, parse_pairs

    config = RemovalConfig(
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        out=args.out,
        dataset=args.dataset,
        masks=args.masks or default_masks(),
        shapes=SHAPES if args.mask_shape == "both" else (args.mask_shape,),
        size=args.size,
        seed=args.seed,
        device=args.device,
        checkpoints=parse_pairs("--checkpoint", args.checkpoint, "NAME=PATH"),
        method_options=parse_method_options(args.option),
        allow_untrained=args.allow_untrained,
        weights_dir=args.weights_dir,
    )
    print(f"report: {run_removal(config)}")
    return 0
