"""Issue 12, bench.train: a kill at any moment then the same command gives identical weights and a
log with each step once; changed settings on --resume and bad arguments are one-line errors."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.train import main as train_main
from bench.training import trainer as train
from bench.training.trainer import CHECKPOINT, LOG

ROOT = Path(__file__).resolve().parents[1]
TINY_CLI = ["--method", "lbam", "--width", "0.0625", "--size", "128", "--batch-size", "2", "--device", "cpu"]
TINY_CLI += ["--no-progress", "--steps", "6", "--checkpoint-every", "3"]


@pytest.fixture(autouse=True)
def no_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no VGG16 file: mini runs without


def logged_steps(out: Path) -> list[int]:
    with open(out / LOG, newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def generator_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / CHECKPOINT, weights_only=True)["generator"]


def kill_when_logged(command: list[str], out: Path, steps: int) -> None:
    """Start `command`, SIGKILL it once its log holds `steps` rows (it must still be running)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.DEVNULL)
    try:
        while not ((out / LOG).exists() and len((out / LOG).read_text().splitlines()) > steps):
            assert process.poll() is None, "training ended before the kill"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()


@pytest.mark.slow
def test_kill_9_before_the_first_checkpoint_then_the_same_command(tmp_path):
    """(A kill after a checkpoint, then --resume: test_train's resumed-training test and the one below.)"""
    assert train_main([*TINY_CLI, "--out", str(tmp_path / "straight")]) == 0
    out = tmp_path / "killed"
    kill_when_logged([sys.executable, "-m", "bench.train", *TINY_CLI, "--out", str(out)], out, 2)
    assert not (out / CHECKPOINT).exists() and logged_steps(out)[:2] == [1, 2]
    assert train_main([*TINY_CLI, "--out", str(out)]) == 0
    assert logged_steps(out) == [1, 2, 3, 4, 5, 6]
    straight, again = generator_weights(tmp_path / "straight"), generator_weights(out)
    assert all(torch.equal(straight[k], again[k]) for k in straight)


def test_a_restart_after_a_kill_before_the_first_checkpoint_logs_each_step_once(tmp_path):
    out = tmp_path / "run"
    arguments = [*TINY_CLI[:-4], "--steps", "2", "--checkpoint-every", "2", "--out", str(out)]
    assert train_main(arguments) == 0
    (out / CHECKPOINT).unlink()  # as if killed just before writing it
    with open(out / LOG, "a") as handle:
        handle.write("3,0.5")  # and mid-row
    assert train_main(arguments) == 0
    assert logged_steps(out) == [1, 2]


def test_resume_with_changed_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    arguments = [*TINY_CLI[:-4], "--steps", "2", "--checkpoint-every", "1", "--out", str(out)]
    assert train_main([*arguments, "--stop-after", "1"]) == 0
    before = (out / CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert train_main([*arguments, "--resume", "--lr-g", "0.0002"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")
    assert "lr_g 0.0001 → 0.0002" in err
    assert (out / CHECKPOINT).read_bytes() == before
    assert train_main([*arguments, "--resume"]) == 0


def bare_tensor(path: Path) -> None:
    path.mkdir()
    torch.save(torch.zeros(3), path / CHECKPOINT)


BAD_TRAINING = [
    (["--steps", "-5"], "--steps must be 0 or more"),
    (["--lr-g", "-1"], "--lr-g must be positive"),
    (["--device", "foo"], "--device 'foo'"),
    (["--out", "{tmp}/file"], "is a file, not a folder"),
    (["--out", "{tmp}/bare", "--resume"], "is not a lbam training checkpoint"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_TRAINING)
def test_bad_training_arguments_exit_2_with_one_line(tmp_path, capsys, arguments, message):
    (tmp_path / "file").write_text("x")
    bare_tensor(tmp_path / "bare")
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    if "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "run")]
    assert train_main([*TINY_CLI, *arguments]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")
    assert message in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    assert train_main([*TINY_CLI, "--device", "cuda", "--out", str(tmp_path / "run")]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_a_full_disk_while_saving_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    arguments = [*TINY_CLI[:-4], "--steps", "2", "--checkpoint-every", "1", "--out", str(out)]
    assert train_main([*arguments, "--stop-after", "1"]) == 0
    before = (out / CHECKPOINT).read_bytes()

    def full(data, path):
        Path(path).write_bytes(b"partial")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file"
        )

    monkeypatch.setattr(train.torch, "save", full)
    capsys.readouterr()
    assert train_main([*arguments, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot write" in err and "previous checkpoint is unchanged" in err
    assert (out / CHECKPOINT).read_bytes() == before and not (out / "checkpoint.tmp").exists()
