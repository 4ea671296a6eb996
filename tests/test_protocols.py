"""Evaluation protocols (reports/protocols.py, docs/evaluation_protocols.md): hand-computed cells,
the release's SSIM against scipy, and CLI runs whose protocol options must change the numbers."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio

from bench.datasets.masks import bucketed_mask_set
from bench.datasets.sources import load_test_set
from bench.evaluation.metrics import mean_squared_error, release_ssim
from bench.methods.base import Method
from bench.methods.registry import _FACTORIES
from bench.reports import protocols
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--report", ""]
A, B = "(0.1, 0.2]", "(0.2, 0.3]"


def frame(rows: list[tuple[str, str, str, str, str, float]]) -> pd.DataFrame:
    columns = ["method", "image_id", "mask_id", "bucket", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def pair_rows(method: str, image: str, mask: str, bucket: str, mse: float, ssim: float, l1: float):
    return [
        (method, image, mask, bucket, "mse", mse),
        (method, image, mask, bucket, "psnr", 10 * math.log10(1 / mse)),
        (method, image, mask, bucket, "ssim_release", ssim),
        (method, image, mask, bucket, "ssim", ssim + 0.01),
        (method, image, mask, bucket, "l1", l1),
    ]


@pytest.fixture
def three_pairs() -> pd.DataFrame:
    # stored out of order: image-major order is (i0, m0), (i1, m0), (i2, m0)
    return frame(
        pair_rows("x", "i2", "m0", A, 0.0001, 0.9, 1.0)
        + pair_rows("x", "i0", "m0", A, 0.01, 0.5, 4.0)
        + pair_rows("x", "i1", "m0", A, 0.001, 0.7, 2.0)
    )


def test_release_cell_pools_the_mse_per_batch_in_image_major_order(three_pairs):
    order = protocols.pair_order(three_pairs, ["i0", "i1", "i2"], ["m0"])
    cells = protocols.release_means(three_pairs, order, batch=2).set_index("metric")
    # batches {i0, i1} and {i2}: PSNR 10·log10(1/0.0055) and 40 dB, averaged over the two batches
    assert cells.loc["psnr", "mean"] == pytest.approx((10 * math.log10(1 / 0.0055) + 40) / 2)
    assert cells.loc["ssim", "mean"] == pytest.approx(((0.5 + 0.7) / 2 + 0.9) / 2)
    assert cells.loc["l1", "mean"] == pytest.approx(((4 + 2) / 2 + 1) / 2)
    assert (cells["count"] == 3).all()
    per_image = protocols.protocol_means(three_pairs, "per-image").set_index("metric")
    assert per_image.loc["psnr", "mean"] == pytest.approx((20 + 30 + 40) / 3)
    assert per_image.loc["ssim", "mean"] == pytest.approx((0.51 + 0.71 + 0.91) / 3)
    assert set(per_image.index) == {"psnr", "ssim", "l1"}


def test_release_batches_follow_the_given_order_not_the_file_order(three_pairs):
    reversed_order = protocols.pair_order(three_pairs, ["i2", "i1", "i0"], ["m0"])
    cells = protocols.release_means(three_pairs, reversed_order, batch=2).set_index("metric")
    # batches {i2, i1} and {i0}
    assert cells.loc["psnr", "mean"] == pytest.approx((10 * math.log10(1 / 0.00055) + 20) / 2)


def test_summary_holds_every_protocol_bucket_and_method(three_pairs):
    second = three_pairs.assign(method="y", bucket=B)
    summary = protocols.summary_frame(pd.concat([three_pairs, second], ignore_index=True))
    assert tuple(summary.columns) == protocols.SUMMARY_COLUMNS
    assert set(summary.protocol) == {"per-image", "release"}
    assert len(summary) == 2 * 3 * 2  # methods (each in one bucket) × metrics × protocols
    release = summary[(summary.protocol == "release") & (summary.metric == "l1") & (summary.method == "y")]
    assert release.bucket.item() == B and release.n.item() == 3


def test_sensitivity_is_release_minus_per_image(three_pairs):
    per_image = protocols.protocol_means(three_pairs, "per-image")
    release = protocols.release_means(three_pairs, protocols.pair_order(three_pairs), batch=16)
    rows = {r["metric"]: r for r in protocols.sensitivity_rows(per_image, release, ["x"])}
    assert rows["psnr"]["per_image"] == pytest.approx(30.0)
    pooled = 10 * math.log10(1 / ((0.01 + 0.001 + 0.0001) / 3))
    assert rows["psnr"]["release"] == pytest.approx(pooled)
    assert rows["psnr"]["shift"] == pytest.approx(pooled - 30.0)  # pooling favours the worst pair
    assert rows["psnr"]["shift"] < 0


def test_runs_stored_without_the_release_inputs_have_no_release_cells(three_pairs):
    old = three_pairs[three_pairs.metric.isin(("psnr", "ssim", "l1"))]
    assert protocols.release_means(old).empty
    summary = protocols.summary_frame(old)
    assert set(summary.protocol) == {"per-image"} and len(summary) == 3


def test_unknown_protocol_is_refused(three_pairs):
    with pytest.raises(ValueError, match="per-image"):
        protocols.protocol_means(three_pairs, "paper")


def scipy_release_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """pytorch_ssim's formula written with scipy: 11×11 Gaussian σ 1.5, zero padding, C of range 1."""
    taps = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    window = np.outer(taps, taps) / taps.sum() ** 2

    def blur(image: np.ndarray) -> np.ndarray:
        return ndimage.correlate(image, window, mode="constant")

    maps = []
    for channel in range(x.shape[0]):
        a, b = x[channel] * 255, y[channel] * 255
        mu_a, mu_b = blur(a), blur(b)
        var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        c1, c2 = 0.01**2, 0.03**2
        maps.append(
            ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        )
    return float(np.mean(maps))


def test_release_ssim_and_mse_equal_independent_references():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(5, 3, 40, 48, generator=generator)
    prediction = (target + 0.2 * torch.rand(5, 3, 40, 48, generator=generator)).clamp(0, 1)
    got = release_ssim(prediction, target)
    for i in range(5):
        expected = scipy_release_ssim(target[i].double().numpy(), prediction[i].double().numpy())
        assert float(got[i]) == pytest.approx(expected, abs=1e-4)
    mse = ((prediction.double() - target.double()) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(mean_squared_error(prediction, target).double(), mse, rtol=1e-6, atol=0)


class Grey(Method):
    """A test method: mid-grey everywhere (so the raw output differs on known pixels), optionally
    taking a fixed time per call whatever the batch size."""

    def __init__(self, device: str = "cpu", seconds_per_call: float = 0.0) -> None:
        super().__init__(device)
        self.seconds_per_call = seconds_per_call

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds_per_call)
        return torch.full_like(image, 0.5)


@pytest.fixture
def grey_method(monkeypatch):
    def create(device: str = "cpu", checkpoint: str | None = None, seconds_per_call: float = 0.0):
        return Grey(device, seconds_per_call)

    monkeypatch.setitem(_FACTORIES, "grey", create)


def expected_psnr(flags: list[str]) -> dict[tuple[str, str], float]:
    """PSNR of every (image, mask) pair of the TINY run, computed here with scikit-image."""
    test_set, mask_set = load_test_set("demo", None, 64), bucketed_mask_set("free_form", 1, 0, 64)
    found = {}
    for image_id, image in zip(test_set.image_ids, test_set.images, strict=True):
        truth = image.astype(np.float64) / 255
        for mask_id, mask in zip(mask_set.mask_ids, mask_set.masks, strict=True):
            known = mask[..., None].astype(np.float64)
            scored = np.full_like(truth, 0.5)
            if "raw" not in flags:
                scored = known * truth + (1 - known) * scored
            reference = truth
            if "--quantize-8bit" in flags:
                scored, reference = np.round(scored * 255) / 255, np.round(reference * 255) / 255
            if "y" in flags:
                scored, reference = rgb2ycbcr(scored)[..., 0] / 255, rgb2ycbcr(reference)[..., 0] / 255
            found[(image_id, mask_id)] = peak_signal_noise_ratio(reference, scored, data_range=1)
    return found


@pytest.mark.parametrize(
    "flags", [[], ["--target", "raw"], ["--color", "y"], ["--quantize-8bit"]], ids=lambda f: "-".join(f)
)
def test_metric_protocol_options_change_what_is_scored(grey_method, tmp_path, flags):
    assert main([*TINY, "--methods", "grey", "--out", str(tmp_path / "run"), *flags]) == 0
    scores = pd.read_csv(tmp_path / "run" / "scores.csv", dtype={"image_id": str, "mask_id": str})
    psnr = scores[scores.metric == "psnr"].set_index(["image_id", "mask_id"])["value"]
    expected = expected_psnr(flags)
    assert len(psnr) == len(expected) == 32
    for key, value in expected.items():
        assert psnr[key] == pytest.approx(value, abs=1e-4), key
    mse = scores[scores.metric == "mse"].set_index(["image_id", "mask_id"])["value"]
    np.testing.assert_allclose(10 * np.log10(1 / mse.loc[psnr.index]), psnr, atol=1e-4)
    stored = json.loads((tmp_path / "run" / "run.json").read_text())["config"]["protocol"]
    assert stored["target"] == ("raw" if "raw" in flags else "composite")
    assert stored["color"] == ("y" if "y" in flags else "rgb")
    assert stored["quantize_8bit"] == ("--quantize-8bit" in flags)


def test_release_protocol_run_stores_its_name_summary_and_resume_check(grey_method, tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]
    common = ["--size", "64", "--masks-per-bucket", "3", "--no-progress", "--methods", "grey", *out]
    report = tmp_path / "index.html"
    assert main([*common, "--protocol", "release", "--report", str(report)]) == 0
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "run.json").read_text())["config"]["protocol"]["name"] == "release"
    summary = pd.read_csv(run_dir / "summary.csv")
    assert tuple(summary.columns) == protocols.SUMMARY_COLUMNS
    assert set(summary.protocol) == {"per-image", "release"}
    # the release PSNR by hand: 8 images × 3 masks per bucket, image-major, batches of 16 and 8
    scores = pd.read_csv(run_dir / "scores.csv", dtype={"image_id": str, "mask_id": str})
    test_set, mask_set = load_test_set("demo", None, 64), bucketed_mask_set("free_form", 3, 0, 64)
    mse = scores[scores.metric == "mse"].set_index(["image_id", "mask_id"])["value"]
    for bucket in dict.fromkeys(mask_set.buckets):
        masks = [m for m, b in zip(mask_set.mask_ids, mask_set.buckets, strict=True) if b == bucket]
        ordered = [mse[(image, mask)] for image in test_set.image_ids for mask in masks]
        batches = [np.mean(ordered[:16]), np.mean(ordered[16:])]
        expected = np.mean([10 * np.log10(1 / b) for b in batches])
        cell = summary[
            (summary.protocol == "release") & (summary.metric == "psnr") & (summary.bucket == bucket)
        ]
        assert cell.value.item() == pytest.approx(expected, abs=1e-6)
    html = report.read_text()
    assert "Protocol sensitivity" in html and "does not say how its PSNR" in html
    assert "under the <strong>release</strong> protocol" in html
    # the protocol is part of the resume check
    assert main([*common, "--report", ""]) == 2
    assert "other settings (protocol)" in capsys.readouterr().err


def test_batched_latency_is_the_batch_time_divided_by_the_batch_size(grey_method, tmp_path):
    arguments = [*TINY, "--methods", "grey", "--option", "grey.seconds_per_call=0.08"]
    assert main([*arguments, "--batch-size", "4", "--out", str(tmp_path / "run")]) == 0
    latency = pd.read_csv(tmp_path / "run" / "latency.csv")
    assert len(latency) == 32
    assert 80 / 4 <= latency.ms.median() < 80 / 2  # 80 ms per call of 4 pairs: 20 ms per pair


def test_old_run_folders_without_stored_orders_keep_the_file_order(three_pairs, tmp_path: Path):
    order = protocols.pair_order(three_pairs)  # no run.json orders: as the rows appear
    cells = protocols.release_means(three_pairs, order, batch=2).set_index("metric")
    # batches {i2, i0} and {i1}
    assert cells.loc["psnr", "mean"] == pytest.approx((10 * math.log10(1 / 0.00505) + 30) / 2)


def test_release_test_crop_is_a_squash_to_350_then_a_seeded_crop_and_flip():
    from PIL import Image

    from bench.datasets.release_crop import release_test_crop

    rng = np.random.default_rng(1)
    rgb = rng.random((300, 500, 3)).astype(np.float32)
    squashed = np.asarray(
        Image.fromarray((rgb * 255).round().astype(np.uint8)).resize((350, 350), Image.BICUBIC)
    )
    views: dict[bytes, list[tuple[int, int, bool]]] = {}
    for top in range(95):
        for left in range(95):
            for flip in (False, True):
                view = squashed[top : top + 256, left : left + 256]
                corner = (view[:, ::-1] if flip else view)[:3, :3].tobytes()
                views.setdefault(corner, []).append((top, left, flip))
    found = set()
    for index in range(40):
        crop = release_test_crop(rgb, 256, seed=0, index=index)
        assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
        matches = []
        for top, left, flip in views.get(crop[:3, :3].tobytes(), []):
            view = squashed[top : top + 256, left : left + 256]
            if np.array_equal(view[:, ::-1] if flip else view, crop):
                matches.append((top, left, flip))
        assert len(matches) == 1
        found.add(matches[0])
        np.testing.assert_array_equal(crop, release_test_crop(rgb, 256, seed=0, index=index))
    assert len(found) == 40 and {flip for _, _, flip in found} == {False, True}
    assert not np.array_equal(release_test_crop(rgb, 256, 0, 0), release_test_crop(rgb, 256, 1, 0))


def test_release_test_crop_offsets_span_0_to_load_minus_size_as_random_crop():
    from bench.datasets.release_crop import release_test_crop

    # a 88×88 canvas (64 px: 350·64/256) whose pixel values encode their own row and column
    rows, cols = np.meshgrid(np.arange(88), np.arange(88), indexing="ij")
    canvas = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.float32) / 255
    offsets = set()
    for index in range(300):
        crop = release_test_crop(canvas, 64, seed=0, index=index).astype(int)
        left = min(crop[0, 0, 1], crop[0, -1, 1])  # flipped crops run right to left
        offsets.add((int(crop[0, 0, 0]), int(left)))
    tops, lefts = {t for t, _ in offsets}, {left for _, left in offsets}
    assert min(tops) == min(lefts) == 0 and max(tops) == max(lefts) == 88 - 64


def test_release_test_crop_option_is_recorded_and_part_of_the_resume_check(grey_method, tmp_path, capsys):
    arguments = [*TINY, "--methods", "grey", "--out", str(tmp_path / "run")]
    assert main([*arguments, "--test-crop", "release"]) == 0
    provenance = json.loads((tmp_path / "run" / "run.json").read_text())
    assert provenance["config"]["test_crop"] == "release"
    assert "squashed to 88×88" in provenance["dataset"]["description"]
    assert provenance["dataset"]["image_ids"] == list(load_test_set("demo", None, 64).image_ids)
    assert main(arguments) == 2
    assert "other settings (test_crop)" in capsys.readouterr().err
