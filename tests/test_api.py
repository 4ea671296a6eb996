"""The Python entry points equal the command lines (README, 'Python API')."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import bench
from bench.core.errors import BadInput
from bench.run import main as run_main
from bench.train import main as train_main

SMALL = {"methods": "telea,ns", "size": 64, "masks_per_bucket": 1, "seed": 3}
SMALL_CLI = ["--methods", "telea,ns", "--size", "64", "--masks-per-bucket", "1", "--seed", "3"]


def test_evaluate_writes_the_records_of_the_command_line_byte_for_byte(tmp_path):
    assert run_main([*SMALL_CLI, "--out", str(tmp_path / "cli"), "--report", "", "--no-progress"]) == 0
    folder = bench.evaluate(bench.RunConfig(**SMALL), tmp_path / "python", report="", progress=False)
    assert folder == tmp_path / "python"
    for name in ("scores.csv", "summary.csv"):
        assert (tmp_path / "cli" / name).read_bytes() == (folder / name).read_bytes(), name
    configs = [json.loads((tmp_path / f / "run.json").read_text())["config"] for f in ("cli", "python")]
    assert configs[0] == configs[1]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"size": 8}, "--size must be at least 16 pixels, got 8"),
        ({"methods": ""}, "--methods is empty"),
        ({"masks_per_bucket": 0}, "--masks-per-bucket must be at least 1, got 0"),
        ({"pairing": "zip"}, "--pairing 'zip': use one of cross, per-image, by-name"),
        ({"device": "tpu"}, "tpu"),
        ({"checkpoints": {"lbam": "no-such-file.pth"}}, "is not a catalogue name"),
    ],
)
def test_run_config_checks_itself_with_the_command_lines_messages(settings, message):
    with pytest.raises(BadInput, match=message):
        bench.RunConfig(**{**SMALL, **settings})


@pytest.mark.parametrize(("flag", "value"), [("--size", "8"), ("--masks-per-bucket", "0")])
def test_the_command_line_refuses_with_the_same_line(flag, value, tmp_path, capsys):
    assert run_main([*SMALL_CLI, flag, value, "--out", str(tmp_path / "x"), "--report", ""]) == 2
    with pytest.raises(BadInput) as raised:
        bench.RunConfig(**{**SMALL, flag.removeprefix("--").replace("-", "_"): int(value)})
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {raised.value}"
    assert not (tmp_path / "x").exists()


def test_run_config_accepts_all_and_predictions_folders():
    assert bench.RunConfig(methods="all").every_method
    config = bench.RunConfig(methods=["telea", "predictions:runs/a/outputs/telea"], size=64)
    assert config.methods == ["telea", "predictions@telea"]
    assert config.predictions == {"predictions@telea": "runs/a/outputs/telea"}
    assert config.device in ("cpu", "cuda") and bench.RunConfig(methods="telea", device="cpu").device == "cpu"


TRAIN = {"method": "pconv", "width": 0.0625, "steps": 1, "size": 128, "batch_size": 2, "seed": 2}
TRAIN_CLI = ["--method", "pconv", "--width", "0.0625", "--steps", "1", "--size", "128", "--batch-size", "2"]


@pytest.mark.slow
def test_fit_trains_the_weights_of_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_vgg"))
    assert train_main([*TRAIN_CLI, "--seed", "2", "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    summary = bench.fit(bench.TrainConfig(**TRAIN, out=str(tmp_path / "python")), progress=False)
    assert summary["step"] == 1
    assert (tmp_path / "python" / "train_summary.json").is_file()
    weights = [torch.load(tmp_path / f / "checkpoint.pt", weights_only=True) for f in ("cli", "python")]
    generator = [w["generator"] for w in weights]
    assert generator[0].keys() == generator[1].keys()
    assert all(torch.equal(generator[0][k], generator[1][k]) for k in generator[0])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": -1}, "--steps must be 0 or more, got -1"),
        ({"profile": "huge"}, "unknown profile 'huge'"),
        ({"objective": "lbam_papr"}, "unknown objective 'lbam_papr'"),
        ({"d_update": "old"}, "recompute, legacy"),
    ],
)
def test_train_config_checks_itself_when_made(settings, message):
    with pytest.raises(BadInput, match=message):
        bench.TrainConfig(**settings)


def test_import_bench_loads_no_torch():
    probe = "import sys, bench; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
