"""The CPU-scale weights the suite ships: export (fp16, catalogue entry), the shipped files against
their catalogue, and the default run that uses them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from markupsafe import escape
from test_cpu_profile import tiny_cpu_config

from bench import methods
from bench import weights as weights_cli
from bench.core.files import file_digest
from bench.core.vocabulary import CPU_SCALE_LABEL
from bench.evaluation.config import RunConfig
from bench.evaluation.session import create_methods
from bench.methods import released
from bench.train import parse_args
from bench.training.config import TrainConfig
from bench.training.export import ExportError, export_weights, training_command
from bench.training.trainer import Trainer


def tiny_training(tmp_path: Path, steps: int = 2, stop_after: int | None = None) -> TrainConfig:
    config = tiny_cpu_config(
        tmp_path,
        method="pconv",
        batch_size=2,
        steps=steps,
        warmup_steps=1,
        val_every=steps,
        checkpoint_every=1,
    )
    (tmp_path / "corpus" / "manifest.json").write_text(json.dumps({"digest": "d" * 64}))
    Trainer(config).run(progress=False, stop_after=stop_after)
    return config


def test_export_ships_fp16_weights_that_predict_as_the_rounded_training_weights(tmp_path: Path):
    config = tiny_training(tmp_path)
    entry = export_weights(Path(config.out), "cpu", tmp_path / "weights", commit="abc123")
    shipped = tmp_path / "weights" / "pconv_cpu.pth"
    assert entry["filename"] == "weights/pconv_cpu.pth" and entry["sha256"] == file_digest(shipped)
    assert entry["corpus_digest"] == "d" * 64 and entry["final_validation"]["step"] == 2
    assert set(entry["final_validation"]["scores"]) == set(entry["final_validation"]["telea"])
    assert entry["trained_on"].startswith("cpu: ")  # recorded by the trainer, like its commit
    threads = torch.get_num_threads()  # the trainer's count, recorded: a bit-for-bit rerun needs it
    assert entry["training_command"] == f"OMP_NUM_THREADS={threads} " + training_command(asdict(config))
    assert entry["git_commits"] != ["abc123"]  # the trainer recorded its own commit; --commit is a fallback
    catalogue = json.loads((tmp_path / "weights" / "catalogue.json").read_text())
    assert catalogue == [entry]
    data = torch.load(shipped, weights_only=True)
    assert {v.dtype for v in data["generator"].values() if v.is_floating_point()} == {torch.float16}
    assert (
        "optimizer_g" not in data
        and shipped.stat().st_size < (Path(config.out) / "checkpoint.pt").stat().st_size
    )

    from_shipped = methods.create("pconv", checkpoint=str(shipped))
    reference = methods.create("pconv", checkpoint=str(Path(config.out) / "checkpoint.pt"))
    with torch.no_grad():
        for tensor in reference.net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())  # the float32 weights rounded as shipped
    image, mask = torch.rand(2, 3, 128, 128), (torch.rand(2, 1, 128, 128) > 0.3).float()
    torch.testing.assert_close(
        from_shipped.predict(image, mask), reference.predict(image, mask), rtol=0, atol=0
    )
    assert from_shipped.training["validation"]["curve"]


def test_training_command_rebuilds_the_same_config(tmp_path: Path):
    config = TrainConfig(
        method="pconv",
        profile="cpu",
        size=128,
        width=0.0625,
        betas_g=(0.5, 0.9),
        steps=7,
        fused_adam=True,
        out=str(tmp_path),
    ).resolve()
    config.resolve_steps(10)
    command = training_command(asdict(config))
    assert command.startswith("python -m bench.train --profile cpu --method pconv")
    assert training_command(asdict(config), cpu_threads=3) == "OMP_NUM_THREADS=3 " + command
    rebuilt, _ = parse_args(command.split()[3:] + ["--out", config.out])
    ignored = {"deviations", "world_size", "rank_batch_size", "finetune_steps"}
    expected = {k: v for k, v in asdict(config).items() if k not in ignored}
    got = {k: v for k, v in asdict(rebuilt.resolve()).items() if k not in ignored}
    assert got == expected


def test_export_refuses_an_unfinished_training_and_the_cli_says_so(tmp_path: Path, capsys):
    config = tiny_training(tmp_path, steps=4, stop_after=1)
    with pytest.raises(ExportError, match="stopped at step 1 of 4"):
        export_weights(Path(config.out), "cpu", tmp_path / "weights")
    assert weights_cli.main(["export", config.out, "--out", str(tmp_path / "weights")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "weights").exists() or not list((tmp_path / "weights").iterdir())


def test_shipped_weights_match_their_catalogue_and_load_by_name():
    shipped = {e.method: e for e in released.shipped_entries()}
    assert set(shipped) == {"lbam", "pconv"}
    for method, entry in shipped.items():
        path = released.locate(entry)
        assert file_digest(path) == entry.sha256 and path.stat().st_size <= 25 * 2**20
        created = methods.create(method, checkpoint=str(released.resolve_checkpoint(method, "cpu")))
        assert created.trained and created.training["profile"] == "cpu"
        assert created.training["validation"]["telea"]


def test_a_changed_shipped_file_is_refused(tmp_path: Path, monkeypatch):
    entry = released.shipped_default("pconv")
    copy = tmp_path / entry.filename
    copy.parent.mkdir(parents=True)
    data = bytearray(released.locate(entry).read_bytes())
    data[len(data) // 2] ^= 1  # one bit of a weight flipped
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(released, "PACKAGE_DIR", tmp_path)
    with pytest.raises(released.ReleasedWeightsError, match="sha256"):
        released.locate(entry)


def test_the_default_run_includes_the_shipped_learned_methods(capsys):
    config = RunConfig(methods=["all"], size=128)
    created = {m.name: m for m in create_methods(config, every_method=True)}
    for method in ("lbam", "pconv"):
        assert created[method].trained
        assert config.checkpoints[method] == str(released.locate(released.shipped_default(method)))
    assert capsys.readouterr().err.count(CPU_SCALE_LABEL) == 2
    untrained = RunConfig(methods=["lbam"], size=128, allow_untrained=True)
    assert not create_methods(untrained, every_method=False)[0].trained  # asked for: random weights


@pytest.mark.slow
def test_a_run_with_the_shipped_weights_labels_them_and_draws_their_learning_curves(tmp_path: Path):
    from bench import run as bench_run

    out, report = tmp_path / "run", tmp_path / "reports" / "index.html"
    arguments = ["--methods", "lbam,pconv,telea", "--size", "128", "--masks-per-bucket", "1"]
    assert bench_run.main([*arguments, "--out", str(out), "--report", str(report), "--no-progress"]) == 0
    provenance = json.loads((out / "run.json").read_text())
    for method in ("lbam", "pconv"):
        entry = released.shipped_default(method)
        assert provenance["checkpoints_sha256"][method] == entry.sha256
        assert provenance["methods"][method]["training"]["profile"] == "cpu"
    html = report.read_text()
    header = html[html.index("<th>metric</th>") : html.index("</tr>", html.index("<th>metric</th>"))]
    assert header.count(escape(CPU_SCALE_LABEL)) == 2  # both learned columns of Table 1, not Telea's
    assert "learning curve: lbam" in html and "learning curve: pconv" in html
    assert len(list(report.parent.rglob("learning_*.png"))) == 2


def test_weights_list_tells_missing_from_refused(tmp_path: Path, capsys):
    """`list` says 'missing' for an absent file and 'refused' with the reason for a present file
    whose contents are not the released ones (by error class, whatever the messages say)."""
    folder = tmp_path / "missing-weights"  # the word in a path says nothing
    folder.mkdir()
    (folder / "completionnet_places2.t7").write_bytes(b"not the released weights")
    assert weights_cli.main(["list", "--weights-dir", str(folder)]) == 0
    listed = capsys.readouterr().out.splitlines()
    where = {line: listed[i + 1].strip() for i, line in enumerate(listed) if not line.startswith(" ")}
    assert where[next(k for k in where if k.startswith("lbam=places2 "))] == "missing"
    refused = where[next(k for k in where if k.startswith("gl=places2 "))]
    assert refused.startswith("refused: ") and "b1527543a0ee22c23fca44cefdf48531" in refused
    assert where[next(k for k in where if k.startswith("lbam=cpu "))].startswith("present: ")
