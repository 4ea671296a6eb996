from __future__ import annotations

import json

import pytest

from bench import reproduce
from bench.training.config import TrainConfig


@pytest.fixture(autouse=True)
def no_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_table2_trains_every_variant_once_and_renders_the_mirror(tmp_path):
    common = [
        "--profile",
        "mini",
        "--train-dir",
        str(tmp_path / "train"),
        "--steps",
        "1",
        "--width",
        "0.0625",
        "--no-progress",
        "--size",
        "128",
        "--masks-per-bucket",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--report",
        str(tmp_path / "reports" / "index.html"),
    ]
    assert reproduce.main(["table2", *common]) == 0
    trained = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert trained == sorted(f"table2-{v}-mini" for v in reproduce.TABLE2_VARIANTS)
    provenance = json.loads((tmp_path / "run" / "run.json").read_text())
    assert provenance["config"]["methods"] == [f"lbam@{v}" for v in reproduce.TABLE2_VARIANTS]
    html = (tmp_path / "reports" / "index.html").read_text()
    assert html.count('<tr><td class="label">') >= 12 + 8  # Table 1 rows and 8 Table 2 rows
    assert 'id="table2-table"' in html
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "train").glob("*/checkpoint.pt")}
    assert reproduce.main(["table2", *common[:-4], "--out", str(tmp_path / "run2"), "--report", ""]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}  # finished trainings are reused


def test_trained_checkpoint_resumes_an_unfinished_training(tmp_path):
    out = tmp_path / "lbam"
    arguments = [
        "--method",
        "lbam",
        "--width",
        "0.0625",
        "--steps",
        "2",
        "--size",
        "128",
        "--batch-size",
        "1",
    ]
    from bench.train import main as train_main

    assert train_main([*arguments, "--out", str(out), "--stop-after", "1", "--no-progress"]) == 0
    config = TrainConfig(method="lbam", width=0.0625, steps=2, size=128, batch_size=1, out=str(out))
    checkpoint = reproduce.trained_checkpoint(config, progress=False)
    assert json.loads((out / "train_summary.json").read_text())["step"] == 2
    assert checkpoint == out / "checkpoint.pt"


def test_table1_paper_profile_retrain_needs_checkpoints(tmp_path, capsys):
    arguments = [
        "table1",
        "--retrain",
        "--profile",
        "paper",
        "--dataset",
        "places",
        "--data-root",
        str(tmp_path),
    ]
    assert reproduce.main(arguments) == 2
    assert "--checkpoint lbam=PATH" in capsys.readouterr().err


def test_table1_uses_the_shipped_weights_unless_retrain(tmp_path):
    args, _ = reproduce.parse(["table1", "--train-dir", str(tmp_path), "--no-progress"])
    assert args.profile == "cpu" and reproduce.table1_checkpoints(args, {}, {}) == {}
    args, _ = reproduce.parse(["table1", "--retrain", "--profile", "mini", "--train-dir", str(tmp_path)])
    args.no_progress = True
    given = {"pconv": "given.pth"}
    checkpoints = reproduce.table1_checkpoints(args, given, {"steps": 1, "width": 0.0625})
    assert checkpoints == {"pconv": "given.pth", "lbam": str(tmp_path / "lbam-mini" / "checkpoint.pt")}
    assert json.loads((tmp_path / "lbam-mini" / "train_summary.json").read_text())["step"] == 1


def test_table2_cpu_variants_keep_the_adversarial_term_except_no_adv(tmp_path):
    args, _ = reproduce.parse(["table2", "--train-dir", str(tmp_path)])
    configs = {v: reproduce.table2_config(args, v, {}).resolve() for v in reproduce.TABLE2_VARIANTS}
    assert {v: c.no_adv for v, c in configs.items()} == {v: v == "no_adv" for v in reproduce.TABLE2_VARIANTS}
    assert {c.steps for c in configs.values()} == {reproduce.TABLE2_CPU_STEPS}
    assert {c.dataset for c in configs.values()} == {"folder:corpus/train"}
    assert configs["forward"].ablation == "forward" and configs["no_adv"].ablation == "full"
    widened = reproduce.table2_config(args, "full", {"steps": 5}).resolve()
    assert widened.steps == 5
