"""Issue 12, bench.train: a kill at any moment then the same command gives identical weights and a
log with each step once; changed settings on --resume and bad arguments are one-line errors."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.core import files
from bench.core.process import prepare_process
from bench.core.tensors import FLUSHED
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


def stopped_after_one_step(tmp_path: Path) -> tuple[Path, list[str]]:
    """A two-step run stopped, with its checkpoint, after step 1: (its folder, its arguments)."""
    out = tmp_path / "run"
    arguments = [*TINY_CLI[:-4], "--steps", "2", "--checkpoint-every", "1", "--out", str(out)]
    assert train_main([*arguments, "--stop-after", "1"]) == 0
    return out, arguments


def test_resume_with_changed_settings_is_refused(tmp_path, capsys):
    out, arguments = stopped_after_one_step(tmp_path)
    before = (out / CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert train_main([*arguments, "--resume", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")
    assert "seed 0 → 3" in err
    assert (out / CHECKPOINT).read_bytes() == before
    assert train_main([*arguments, "--resume"]) == 0


@pytest.mark.parametrize("recorded", [None, False])
def test_resume_with_another_adam_kernel_is_refused(tmp_path, capsys, recorded):
    """--fused-adam rounds otherwise, so a run resumes with its checkpoint's kernel; a checkpoint
    from before the setting existed trained with the default one."""
    out, arguments = stopped_after_one_step(tmp_path)
    data = torch.load(out / CHECKPOINT, weights_only=True)
    assert data["train_config"]["fused_adam"] is False
    if recorded is None:
        del data["train_config"]["fused_adam"]
        torch.save(data, out / CHECKPOINT)
    before = (out / CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert train_main([*arguments, "--resume", "--fused-adam"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "fused_adam False → True" in line
    assert (out / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("recorded", [None, "kept (INPAINT_BENCH_DENORMALS=keep)"])
def test_resume_under_another_denormal_mode_is_refused(tmp_path, capsys, recorded):
    out, arguments = stopped_after_one_step(tmp_path)
    data = torch.load(out / CHECKPOINT, weights_only=True)
    assert data["process"] == prepare_process() and data["process"]["denormals"] == FLUSHED
    if recorded is None:  # a checkpoint from before the mode was recorded: trained with them kept
        del data["process"]
    else:
        data["process"]["denormals"] = recorded
    torch.save(data, out / CHECKPOINT)
    capsys.readouterr()
    assert train_main([*arguments, "--resume"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"denormals kept → {FLUSHED} (INPAINT_BENCH_DENORMALS=keep resumes it)" in line


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
    out, arguments = stopped_after_one_step(tmp_path)
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


# --- issue 20 ------------------------------------------------------------------------------------

INTEGER_OPTIONS = ["--size", "--resize-short", "--batch-size", "--epochs", "--steps", "--finetune-steps"]
INTEGER_OPTIONS += ["--checkpoint-every", "--seed", "--workers", "--stop-after"]


@pytest.mark.parametrize("value", ["0", "-1"])
@pytest.mark.parametrize("flag", INTEGER_OPTIONS)
def test_every_integer_option_at_0_or_below_is_refused_or_keeps_its_word(tmp_path, capsys, flag, value):
    """Either one line and exit 2 with nothing written, or a run whose printed checkpoint exists."""
    out = tmp_path / "run"
    code = train_main([*TINY_CLI, "--steps", "1", flag, value, "--out", str(out)])
    printed = capsys.readouterr()
    if code == 2:
        assert "Traceback" not in printed.err and printed.err.strip().splitlines()[-1].startswith("error: ")
        assert not (out / CHECKPOINT).exists() and "checkpoint: " not in printed.out
        return
    assert code == 0, printed.err
    line = next(line for line in printed.out.splitlines() if line.startswith("checkpoint: "))
    assert Path(line.split()[1]).is_file(), line


def poison_step(monkeypatch, run_step: int) -> None:
    """The generator's loss is NaN at the step after `run_step` steps of this process."""
    real_terms, calls = train.losses.generator_terms, []

    def terms(*args, **kwargs):
        values = real_terms(*args, **kwargs)
        calls.append(1)
        return {**values, "hole": values["hole"] * float("nan")} if len(calls) == run_step + 1 else values

    monkeypatch.setattr(train.losses, "generator_terms", terms)


def test_after_a_nan_stop_the_advised_lower_rate_resumes_as_a_recorded_deviation(
    tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    arguments = [*TINY_CLI[:-4], "--steps", "4", "--checkpoint-every", "2", "--out", str(out)]
    with monkeypatch.context() as patch:
        poison_step(patch, 2)
        assert train_main(arguments) == 2
    err = capsys.readouterr().err
    assert "non-finite loss at step 3" in err and "--resume and a lower --lr-g" in err
    assert train_main([*arguments, "--resume", "--lr-g", "0.00005"]) == 0
    data = torch.load(out / CHECKPOINT, weights_only=True)
    assert data["step"] == 4 and data["train_config"]["lr_g"] == 0.00005
    assert "lr_g 0.0001 → 5e-05 from step 3 (--resume)" in data["train_config"]["deviations"]
    assert "lr_g 0.0001 → 5e-05 from step 3" in capsys.readouterr().out
    with open(out / LOG, newline="") as handle:
        rates = {int(row["step"]): float(row["lr_g"]) for row in csv.DictReader(handle)}
    assert rates == {1: 1e-4, 2: 1e-4, 3: 5e-5, 4: 5e-5}  # the optimiser uses the new rate


def test_a_nan_stop_before_any_checkpoint_advises_a_plain_rerun(tmp_path, capsys, monkeypatch):
    poison_step(monkeypatch, 0)
    assert train_main([*TINY_CLI, "--out", str(tmp_path / "run")]) == 2
    assert "no checkpoint was written yet: run again with a lower --lr-g" in capsys.readouterr().err


def test_a_full_disk_is_called_a_full_disk(tmp_path, capsys, monkeypatch):
    def full(data, path):
        Path(path).write_bytes(b"partial")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file"
        )

    monkeypatch.setattr(train.torch, "save", full)
    monkeypatch.setattr(
        files.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)
    )
    assert train_main([*TINY_CLI[:-4], "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    line = capsys.readouterr().err.strip()
    assert "is full (1,000 bytes free)" in line and not (tmp_path / "run" / "checkpoint.tmp").exists()


def test_a_run_scored_from_a_checkpoint_keeps_only_the_log_rows_its_weights_had(tmp_path, capsys):
    out = tmp_path / "train"
    assert train_main([*TINY_CLI[:-4], "--steps", "2", "--checkpoint-every", "1", "--out", str(out)]) == 0
    rows = (out / LOG).read_text().splitlines()
    step_two = rows[2].split(",", 1)[1]
    with open(out / LOG, "a") as handle:  # training went on after the checkpoint, then was killed
        handle.write(f"3,{step_two}\n4,{step_two}\n5,0.")
    from bench.run import main as run_main

    run_dir = tmp_path / "scored"
    arguments = ["--methods", "lbam", "--checkpoint", f"lbam={out / CHECKPOINT}", "--size", "128"]
    arguments += ["--masks-per-bucket", "1", "--no-progress", "--out", str(run_dir), "--report", ""]
    assert run_main(arguments) == 0
    with open(run_dir / "training" / "lbam.csv", newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [1, 2]
