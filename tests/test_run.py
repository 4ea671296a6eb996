"""End to end: `python -m bench.run` on tiny inputs, records, resume, errors and the report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from reference import reordering_tolerance

from bench import methods, report
from bench.core.process import prepare_process
from bench.core.records import LATENCY_COLUMNS, SCORE_COLUMNS
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress"]


def run_cli(tmp_path: Path, *extra: str, out: str = "run") -> int:
    return main([*TINY, "--out", str(tmp_path / out), "--report", str(tmp_path / "index.html"), *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("bench")
    assert run_cli(tmp_path, "--methods", "telea,ns") == 0
    return tmp_path


def test_run_writes_tidy_scores_latency_and_provenance(finished_run):
    run_dir = finished_run / "run"
    scores = pd.read_csv(run_dir / "scores.csv")
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == 2 * 8 * 4 * 6  # methods × images × masks × metrics
    assert set(scores.metric) == {"psnr", "ssim", "l1", "lpips", "mse", "ssim_release"}
    assert set(scores.bucket) == {"(0.1, 0.2]", "(0.2, 0.3]", "(0.3, 0.4]", "(0.4, 0.5]"}
    assert scores[scores.metric == "lpips"].value.isna().all()  # no AlexNet weights here
    psnr = scores[scores.metric == "psnr"]
    assert psnr.value.between(5, 60).all()
    latency = pd.read_csv(run_dir / "latency.csv")
    assert tuple(latency.columns) == LATENCY_COLUMNS and len(latency) == 2 * 8 * 4
    assert (latency.ms > 0).all()
    provenance = json.loads((run_dir / "run.json").read_text())
    assert provenance["status"] == "complete"
    assert provenance["config"]["methods"] == ["telea", "ns"]
    assert provenance["methods"]["telea"]["options"] == {"radius": 3.0}
    assert len(provenance["dataset"]["sha256"]) == len(provenance["mask_set"]["sha256"]) == 64
    for key in ("versions", "git_commit", "device", "seeds", "command", "lpips"):
        assert key in provenance
    assert provenance["process"] == prepare_process()  # decided once, for this whole process


def test_same_command_gives_the_same_numbers(finished_run, tmp_path):
    assert run_cli(tmp_path, "--methods", "telea,ns") == 0
    first = pd.read_csv(finished_run / "run" / "scores.csv")
    again = pd.read_csv(tmp_path / "run" / "scores.csv")
    pd.testing.assert_frame_equal(first, again)


def test_interrupted_run_resumes_without_recomputing_finished_items(finished_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run / "run", run_dir)
    full_scores = pd.read_csv(run_dir / "scores.csv")
    full_latency = pd.read_csv(run_dir / "latency.csv")
    # cut the files as a crash would: mid-item and mid-line
    lines = (run_dir / "scores.csv").read_text().splitlines(keepends=True)
    (run_dir / "scores.csv").write_text("".join(lines[:-6]) + lines[-6][:10])
    latency_lines = (run_dir / "latency.csv").read_text().splitlines(keepends=True)
    (run_dir / "latency.csv").write_text("".join(latency_lines[:-1]))
    assert run_cli(tmp_path, "--methods", "telea,ns") == 0
    resumed_scores = pd.read_csv(run_dir / "scores.csv")
    resumed_latency = pd.read_csv(run_dir / "latency.csv")
    key = ["method", "image_id", "mask_id", "metric"]
    pd.testing.assert_frame_equal(
        resumed_scores.sort_values(key).reset_index(drop=True),
        full_scores.sort_values(key).reset_index(drop=True),
    )
    # finished items kept their stored timings: they were not run again
    kept = full_latency.iloc[:-2]
    merged = kept.merge(resumed_latency, on=["method", "image_id", "mask_id"], suffixes=("", "_new"))
    assert len(merged) == len(kept) and (merged.ms == merged.ms_new).all()
    assert len(resumed_latency) == len(full_latency)


def test_batched_evaluation_gives_the_per_image_scores(finished_run, tmp_path):
    assert run_cli(tmp_path, "--methods", "telea,ns", "--batch-size", "5") == 0
    single = pd.read_csv(finished_run / "run" / "scores.csv")
    batched = pd.read_csv(tmp_path / "run" / "scores.csv")
    key = ["method", "image_id", "mask_id", "metric"]
    single, batched = (f.sort_values(key).reset_index(drop=True) for f in (single, batched))
    # The fills are uint8, so every score is the same, except the release's SSIM: its float32
    # convolutions sum in another order per batch size (oneDNN: AVX2 vs AVX-512), and its
    # σ² = E[x²] − μ² lets an error of ~4·eps·√121 (11×11 window) through 1/C2 (C2 = 0.03²).
    release = single.metric == "ssim_release"
    pd.testing.assert_frame_equal(single[~release], batched[~release])
    tolerance = 4 * np.finfo(np.float32).eps * 11 / 0.03**2
    np.testing.assert_allclose(batched.value[release], single.value[release], rtol=0, atol=tolerance)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["batch_size"] == 5
    assert len(pd.read_csv(tmp_path / "run" / "latency.csv")) == 2 * 8 * 4


def test_resuming_with_other_settings_is_refused(finished_run, tmp_path, capsys):
    import shutil

    shutil.copytree(finished_run / "run", tmp_path / "run")
    assert run_cli(tmp_path, "--methods", "telea", "--seed", "5") == 2
    assert "other settings (seed)" in capsys.readouterr().err


def test_resuming_on_changed_images_is_refused(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / "a.png")
    arguments = ["--methods", "telea", "--dataset", f"folder:{photos}"]
    assert run_cli(tmp_path, *arguments) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["command"].endswith(f"folder:{photos}")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / "a.png")
    assert run_cli(tmp_path, *arguments) == 2
    assert "test images differ" in capsys.readouterr().err


def test_missing_data_exits_2_with_the_layout_and_no_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--dataset",
            "paris",
            "--data-root",
            str(tmp_path),
            "--methods",
            "telea",
            "--out",
            str(tmp_path / "run"),
            "--report",
            "",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 2
    assert "paris_eval_gt" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--methods", "teela"], "Did you mean telea"),
        (["--methods", "telea", "--masks", "folder:/nonexistent"], "does not exist"),
        (["--methods", "telea", "--checkpoint", "telea"], "NAME=PATH"),
        (["--methods", "telea", "--device", "cuda:3"], "no CUDA device"),
        (["--methods", "lbam", "--allow-untrained", "--size", "96"], "divisible by 128"),
        (
            ["--methods", "lbam", "--option", "lbam.variant=nope", "--allow-untrained"],
            "variant must be one of",
        ),
        (["--methods", "telea", "--option", "telea.radius"], "NAME.KEY=VALUE"),
        (["--methods", "telea", "--batch-size", "0"], "at least 1"),
    ],
)
def test_bad_command_lines_exit_2_with_a_message(tmp_path, capsys, arguments, message):
    if arguments[-1] == "cuda:3":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    assert run_cli(tmp_path, *arguments) == 2
    assert message in capsys.readouterr().err


def test_report_shows_both_tables_every_image_and_the_banner(finished_run):
    html = (finished_run / "index.html").read_text()
    table = html[html.index('id="table1-table"') : html.index("</table>", html.index('id="table1-table"'))]
    assert table.count('<tr><td class="label">') == 12  # 3 metrics × 4 buckets
    assert 'id="not-comparable"' in html
    sources = re.findall(r'src="([^"]+)"', html)
    assert len(sources) >= 3 + 4 * 2 * 4  # plots + buckets × examples × (input, 2 methods, gt)
    for source in sources:
        assert (finished_run / source).is_file(), source
    assert "ground truth" in html and "telea" in html
    settings = prepare_process()  # the run's, recorded in run.json (this process decided them once)
    shown = f'<dd id="process">allocator: {settings["allocator"]}; denormals: {settings["denormals"]}</dd>'
    assert shown in html


def test_report_escapes_text_that_comes_from_data(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / "ok.png")
    (photos / "<img src=x onerror=alert(1)>.png").write_bytes(b"junk")
    assert run_cli(tmp_path, "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    html = (tmp_path / "index.html").read_text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html


def test_report_command_rerenders_from_records(finished_run, tmp_path):
    out = tmp_path / "again.html"
    assert report.main([str(finished_run / "run"), "--out", str(out)]) == 0
    assert 'id="table1-table"' in out.read_text()
    assert report.main([str(tmp_path), "--out", str(out)]) == 2


def test_report_of_a_run_interrupted_before_any_score(finished_run, tmp_path):
    import shutil

    run_dir = tmp_path / "early"
    run_dir.mkdir()
    provenance = json.loads((finished_run / "run" / "run.json").read_text())
    provenance["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(provenance))
    shutil.copyfile(finished_run / "run" / "scores.csv", run_dir / "scores.csv")
    (run_dir / "scores.csv").write_text((run_dir / "scores.csv").read_text().splitlines()[0] + "\n")
    out = tmp_path / "reports" / "index.html"
    assert report.main([str(run_dir), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<strong>running</strong>" in html and "<img" not in html


def test_batched_learned_method_matches_batch_one(tmp_path):
    # PConv's Kaiming initialisation gives image-dependent outputs even untrained
    common = ["--methods", "pconv", "--allow-untrained", "--option", "pconv.width=0.0625", "--size", "128"]
    assert run_cli(tmp_path, *common, out="one") == 0
    assert run_cli(tmp_path, *common, "--batch-size", "3", out="three") == 0
    key = ["image_id", "mask_id", "metric"]
    one = pd.read_csv(tmp_path / "one" / "scores.csv").sort_values(key).reset_index(drop=True)
    three = pd.read_csv(tmp_path / "three" / "scores.csv").sort_values(key).reset_index(drop=True)
    # The outputs differ by oneDNN's batch-size blocking, at most δ per pixel (reordering_tolerance
    # of the network; outputs are clamped to [0,1] before scoring, which keeps the bound). Each
    # metric moves at most by its Lipschitz bound: ℓ1 by δ (100·δ in percent); PSNR = −20·log10(RMSE) by
    # (20/ln 10)·δ/RMSE, as |ΔRMSE| ≤ δ; SSIM (C1 = 0.01², C2 = 0.03²) by 2/√C1 + 1/√C2 ≈ 234 per δ.
    torch.manual_seed(0)
    delta = reordering_tolerance(methods.create("pconv", width=0.0625).net, torch.ones(1))
    bound = {"l1": 100 * delta, "ssim": (2 / 0.01 + 1 / 0.03) * delta}  # ℓ1 is in percent
    for metric in ("l1", "psnr", "ssim"):
        rows = (one.metric == metric) & np.isfinite(one.value)
        if metric == "psnr":
            rmse = 10 ** (-np.maximum(one.value[rows], three.value[rows]) / 20)  # the smaller RMSE
            tolerance = 20 / np.log(10) * delta / (rmse - delta).clip(lower=1e-12)
        else:
            tolerance = bound[metric]
        assert (np.abs(three.value[rows] - one.value[rows]) <= tolerance).all(), metric
    psnr = one[one.metric == "psnr"].value
    assert psnr.std() > 0.5  # pairs really differ, so a mixed-up batch row could not pass
