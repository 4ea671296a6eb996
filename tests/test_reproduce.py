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


def test_table1_on_other_data_needs_checkpoints(tmp_path, capsys):
    assert reproduce.main(["table1", "--dataset", "places", "--data-root", str(tmp_path)]) == 2
    assert "--checkpoint lbam=PATH" in capsys.readouterr().err
