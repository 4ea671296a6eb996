"""Issue 12, bench.run: no input, crash or second process may lose or mislabel a result; every bad
input gets a one-line error and exit code 2 (docs/reliability.md lists the cases)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from reliability_fixtures import mask_folder, one_line_error, photo_folder, run_cli, write_photo

from bench import report
from bench.core import records
from bench.core.records import completed_items, read_scores
from bench.core.vocabulary import METRICS
from bench.evaluation.entry import choose_run_dir
from bench.evaluation.run_folder import RunFolderError, check_method_identity, lock_run_folder
from bench.methods.checkpoints import OWN_FORMAT
from bench.reports.aggregate import bucket_means

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def photos(tmp_path) -> Path:
    return photo_folder(tmp_path / "photos", ["a.png", "b.png"])


def per_image_counts(run_dir: Path) -> dict[tuple[str, str], int]:
    psnr = read_scores(run_dir / "scores.csv").query("metric == 'psnr'")
    return psnr.groupby(["method", "image_id"]).size().to_dict()


# --- results lost or mislabelled -----------------------------------------------------------------


def test_images_sharing_a_stem_keep_their_own_ids_through_a_resume(tmp_path):
    photos = photo_folder(tmp_path / "photos", ["a.png", "a.jpg", "b.png"])
    run_dir = tmp_path / "run"
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    counts = per_image_counts(run_dir)
    assert counts == {("telea", "a.png"): 4, ("telea", "a.jpg"): 4, ("telea", "b"): 4}
    full = read_scores(run_dir / "scores.csv")
    lines = (run_dir / "scores.csv").read_text().splitlines(keepends=True)
    kept = [line for line in lines if ",a.png," not in line][:-3]  # a.png's rows lost, then a cut
    (run_dir / "scores.csv").write_text("".join(kept))
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    assert per_image_counts(run_dir) == counts
    key = ["image_id", "mask_id", "metric"]
    again = read_scores(run_dir / "scores.csv").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(again, full.sort_values(key).reset_index(drop=True))


def test_ids_that_pandas_would_read_as_missing_are_kept(tmp_path):
    photos = photo_folder(tmp_path / "photos", ["NA.png", "null.jpg", "nan.png"])
    masks = mask_folder(tmp_path / "masks")
    for index, name in enumerate(["NA", "null", "None"]):
        (masks / f"m{index}.png").rename(masks / f"{name}.png")
    run_dir = tmp_path / "run"
    arguments = ["--methods", "telea,ns", "--dataset", f"folder:{photos}", "--masks", f"folder:{masks}"]
    assert run_cli(run_dir, *arguments) == 0
    counts = per_image_counts(run_dir)
    assert counts == {(m, i): 4 for m in ("telea", "ns") for i in ("NA", "null", "nan")}
    assert set(read_scores(run_dir / "scores.csv").mask_id) == {"NA", "null", "None", "m3"}
    means = bucket_means(read_scores(run_dir / "scores.csv"))
    # 3 images per bucket and method (NaN ids made it 1); LPIPS without weights: 3 left out, counted
    assert ((means["count"] + means["nonfinite"]) == 3).all()


@pytest.mark.parametrize("folder", ["images", "masks"])
def test_file_names_that_are_not_utf8_are_escaped_not_fatal(tmp_path, folder):
    photos = photo_folder(tmp_path / "photos", ["b.png"])
    masks = mask_folder(tmp_path / "masks")
    if folder == "images":
        write_photo(os.fsencode(photos) + b"/caf\xe9.png", 5)
    else:
        (masks / "m0.png").rename(os.fsdecode(os.fsencode(masks) + b"/caf\xe9.png"))
    run_dir = tmp_path / "run"
    arguments = ["--methods", "telea", "--dataset", f"folder:{photos}", "--masks", f"folder:{masks}"]
    assert run_cli(run_dir, *arguments) == 0
    scores = read_scores(run_dir / "scores.csv")
    assert "caf\\xe9" in set(scores.image_id if folder == "images" else scores.mask_id)
    assert len(scores) == (2 if folder == "images" else 1) * 4 * len(METRICS)  # pairs × metrics


def test_a_second_process_on_the_same_folder_is_refused_naming_the_holder(tmp_path, photos, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from bench.evaluation.run_folder import lock_run_folder; "
            "lock = lock_run_folder(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 2
        line = one_line_error(capsys.readouterr().err)
        assert f"pid {holder.pid} on " in line and "in use" in line
        assert not (tmp_path / "run" / "scores.csv").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock
        holder.wait()
    assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    assert per_image_counts(tmp_path / "run") == {("telea", "a"): 4, ("telea", "b"): 4}


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    first = lock_run_folder(tmp_path / "run")
    with pytest.raises(RunFolderError, match=f"pid {os.getpid()}"):
        lock_run_folder(tmp_path / "run")
    first.close()
    lock_run_folder(tmp_path / "run").close()


def test_resume_with_other_method_options_is_refused_and_keeps_the_scores(tmp_path, photos, capsys):
    run_dir = tmp_path / "run"
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    before = (run_dir / "scores.csv").read_bytes(), json.loads((run_dir / "run.json").read_text())
    capsys.readouterr()
    extra = ["--option", "telea.radius=25"]
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}", *extra) == 2
    assert "radius 3.0 → 25.0" in one_line_error(capsys.readouterr().err)
    assert (run_dir / "scores.csv").read_bytes() == before[0]
    assert json.loads((run_dir / "run.json").read_text()) == before[1]
    # the same options under a new label are a new instance in the same folder
    labelled = ["--methods", "telea@r25", "--option", "telea@r25.radius=25"]
    assert run_cli(run_dir, *labelled, "--dataset", f"folder:{photos}") == 0
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["methods"]["telea"]["options"] == {"radius": 3.0}
    assert stored["methods"]["telea@r25"]["options"] == {"radius": 25.0}
    psnr = read_scores(run_dir / "scores.csv").query("metric == 'psnr'").groupby("method").value.mean()
    assert psnr["telea"] != psnr["telea@r25"]


def test_resume_with_another_checkpoint_is_refused():
    stored = {"methods": {"lbam": {"options": {"width": 1.0}}}, "checkpoints_sha256": {"lbam": "a" * 64}}
    same = {"lbam": {"options": {"width": 1.0}}}
    check_method_identity(stored, same, {"lbam": "a" * 64})
    with pytest.raises(RunFolderError, match="another checkpoint"):
        check_method_identity(stored, same, {"lbam": "b" * 64})
    with pytest.raises(RunFolderError, match="width 1.0 → 0.5"):
        check_method_identity(stored, {"lbam": {"options": {"width": 0.5}}}, {"lbam": "a" * 64})


def test_resume_takes_the_most_recent_run_not_the_greatest_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for age, name in ((100, "my-run"), (0, "20200101-000000"), (50, "zzz")):
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        (folder / "run.json").write_text("{}")
        stamp = time.time() - age
        os.utime(folder / "run.json", (stamp, stamp))
    assert choose_run_dir(None, resume=True) == Path("runs/20200101-000000")


def test_scores_cut_at_any_point_are_repaired_to_whole_items(tmp_path, photos):
    run_dir = tmp_path / "run"
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    text = (run_dir / "scores.csv").read_text()
    latency = (run_dir / "latency.csv").read_text()
    whole = read_scores(run_dir / "scores.csv")
    quoted = text.index('"(0.4')  # a cut inside the quoted bucket field, as in the issue
    cuts = [quoted + 1, quoted + 4, len(text) - 1, len(text) - 30, text.index("\n") + 1, 3, 0]
    for cut in cuts:
        (run_dir / "scores.csv").write_text(text[:cut])
        (run_dir / "latency.csv").write_text(latency)
        done = completed_items(run_dir)
        kept = read_scores(run_dir / "scores.csv")
        assert len(kept) == len(METRICS) * len(done), cut
        merged = kept.merge(whole, on=["image_id", "mask_id", "metric"], suffixes=("", "_whole"))
        assert len(merged) == len(kept) and (merged.value.fillna(-1) == merged.value_whole.fillna(-1)).all()
    (run_dir / "scores.csv").write_text(text[: quoted + 4])
    (run_dir / "latency.csv").write_text(latency)
    assert report.main([str(run_dir), "--out", str(tmp_path / "report" / "index.html")]) == 0
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    assert (run_dir / "scores.csv").read_text().count("\n") == text.count("\n")


def test_records_keep_the_process_umask(tmp_path, photos):
    old = os.umask(0o022)
    try:
        assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 0
        records.completed_items(tmp_path / "run")  # rewrites both record files
    finally:
        os.umask(old)
    for name in ("scores.csv", "latency.csv", "run.json"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_labelled_classical_instances_run(tmp_path, photos):
    arguments = ["--methods", "telea@r5,ns", "--option", "telea@r5.radius=5", "--dataset", f"folder:{photos}"]
    assert run_cli(tmp_path / "run", *arguments) == 0
    stored = json.loads((tmp_path / "run" / "run.json").read_text())
    assert stored["status"] == "complete" and stored["methods"]["telea@r5"]["options"] == {"radius": 5.0}


def test_out_of_bucket_masks_are_listed_and_short_buckets_refused(tmp_path, photos, capsys):
    masks = mask_folder(tmp_path / "masks", (9, 16, 22, 29, 40))  # the last: hole ratio 0.625
    arguments = ["--methods", "telea", "--dataset", f"folder:{photos}", "--masks", f"folder:{masks}"]
    assert run_cli(tmp_path / "run", *arguments) == 0
    assert "skipped m4: hole ratio 0.625 is outside every bucket" in capsys.readouterr().err
    stored = json.loads((tmp_path / "run" / "run.json").read_text())
    assert stored["mask_set"]["skipped"] == [["m4", "hole ratio 0.625 is outside every bucket"]]
    (masks / "m3.png").unlink()
    assert run_cli(tmp_path / "run2", *arguments) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "fewer than --masks-per-bucket 1" in line and "(0.4, 0.5]: 0" in line
    assert run_cli(
        tmp_path / "run3", *arguments[:-2], "--masks", f"folder:{masks}", "--masks-per-bucket", "2"
    )
    assert "(0.1, 0.2]: 1" in one_line_error(capsys.readouterr().err)


# --- one-line errors, exit code 2 ----------------------------------------------------------------


def own_checkpoint(path: Path, **changes) -> str:
    from bench import methods

    lbam = methods.create("lbam", width=0.0625)
    data = {
        "format": OWN_FORMAT,
        "method": "lbam",
        "options": asdict(lbam.config),
        "generator": lbam.net.state_dict(),
    }
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value(data[key]) if callable(value) else value
    torch.save(data, path)
    return str(path)


def nan_weights(state: dict) -> dict:
    return {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def bad_checkpoint(tmp_path: Path, kind: str) -> str:
    path = tmp_path / f"{kind}.pt"
    if kind == "no_options":
        return own_checkpoint(path, options=None)
    if kind == "no_generator":
        return own_checkpoint(path, generator=None)
    if kind == "unknown_option":
        return own_checkpoint(path, options=lambda options: {**options, "colour": "red"})
    if kind == "nan":
        return own_checkpoint(path, generator=nan_weights)
    torch.save({"generator": Evil()}, path)
    return str(path)


CHECKPOINT_CASES = {
    "no_options": "'options' entry is missing",
    "no_generator": "'generator' entry is missing",
    "unknown_option": "does not know: colour",
    "nan": "hold NaN or infinite values",
    "pickle": "posix.system",
}

BAD_COMMAND_LINES = [
    (["--methods", "telea", "--option", "telea.radius=abc"], "telea.radius='abc': expected a number"),
    (["--methods", "patchmatch", "--option", "patchmatch.patch_size=abc"], "expected a whole number"),
    (["--methods", "lbam", "--allow-untrained", "--option", "lbam.width=abc"], "lbam.width='abc'"),
    (["--methods", "telea", "--option", "telea.radius=True"], "telea.radius=True: expected a number"),
    (["--methods", "patchmatch", "--option", "patchmatch.patch_size=0"], "patch_size must be 1 or more"),
    (["--methods", "patchmatch", "--option", "patchmatch.patch_size=-3"], "patch_size must be 1 or more"),
    (["--methods", "telea", "--size", "0"], "--size must be at least 16"),
    (["--methods", "telea", "--size", "-1"], "--size must be at least 16"),
    (["--methods", "telea", "--size", "1"], "--size must be at least 16"),
    (["--methods", "telea", "--size", "7"], "--size must be at least 16"),
    (["--methods", "telea", "--seed", "-1"], "--seed must be 0 or more"),
    (["--methods", ""], "--methods is empty"),
    (["--methods", " , "], "--methods is empty"),
    (["--methods", "telea", "--device", "foo"], "--device 'foo' is not a device"),
    (["--methods", "telea", "--device", "mps"], "--device mps: only auto, cpu and cuda"),
    (["--methods", "telea", "--masks-per-bucket", "0"], "--masks-per-bucket must be at least 1"),
    (["--methods", "telea", "--masks-per-bucket", "-1"], "--masks-per-bucket must be at least 1"),
    (["--methods", "telea", "--dataset", "folder:"], "folder: needs a path"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_COMMAND_LINES)
def test_bad_values_exit_2_with_one_line(tmp_path, capsys, arguments, message):
    assert run_cli(tmp_path / "run", *arguments) == 2
    assert message in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()  # nothing written, no empty folder left


@pytest.mark.parametrize("kind", sorted(CHECKPOINT_CASES))
def test_bad_checkpoints_exit_2_with_one_line(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    path = bad_checkpoint(tmp_path, kind)
    assert (
        run_cli(tmp_path / "run", "--methods", "lbam", "--checkpoint", f"lbam={path}", "--size", "128") == 2
    )
    assert CHECKPOINT_CASES[kind] in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "pwned").exists()


def test_out_naming_a_file_and_a_damaged_run_json(tmp_path, photos, capsys):
    (tmp_path / "file").write_text("x")
    assert run_cli(tmp_path / "file", "--methods", "telea") == 2
    assert "is a file, not a folder" in one_line_error(capsys.readouterr().err)
    assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    scores = (tmp_path / "run" / "scores.csv").read_bytes()
    (tmp_path / "run" / "run.json").write_text('{"config": {"dataset": ')
    capsys.readouterr()
    assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 2
    assert "run.json is damaged" in one_line_error(capsys.readouterr().err)
    assert report.main([str(tmp_path / "run"), "--out", str(tmp_path / "r" / "index.html")]) == 2
    assert "run.json is damaged" in one_line_error(capsys.readouterr().err)
    assert (tmp_path / "run" / "scores.csv").read_bytes() == scores


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_and_report_folders(tmp_path, photos, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert run_cli(locked / "run", "--methods", "telea") == 2
    assert "read-only" in one_line_error(capsys.readouterr().err)
    report_arg = str(locked / "index.html")
    assert run_cli(tmp_path / "run", "--methods", "telea", report=report_arg) == 2
    assert "--report" in one_line_error(capsys.readouterr().err)


def test_a_full_disk_is_one_line_and_keeps_finished_items(tmp_path, photos, capsys, monkeypatch):
    appended = []
    original = records.CsvAppender.append

    def append_until_full(self, rows):
        if self.path.name == "scores.csv":
            if len(appended) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            appended.append(1)
        original(self, rows)

    monkeypatch.setattr(records.CsvAppender, "append", append_until_full)
    assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 2
    line = one_line_error(capsys.readouterr().err)
    assert "No space left on device" in line and "scores.csv" in line
    monkeypatch.undo()
    assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    assert per_image_counts(tmp_path / "run") == {("telea", "a"): 4, ("telea", "b"): 4}


def test_report_of_a_damaged_scores_file_renders(tmp_path, photos):
    assert run_cli(tmp_path / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    text = (tmp_path / "run" / "scores.csv").read_text()
    (tmp_path / "run" / "scores.csv").write_text(text[: text.rindex('"(0.4') + 4])
    assert report.main([str(tmp_path / "run"), "--out", str(tmp_path / "r" / "index.html")]) == 0


def test_zero_one_mask_images_are_masks_not_empty(tmp_path, photos):
    masks = tmp_path / "masks"
    masks.mkdir()
    for index, width in enumerate((9, 16, 22, 29)):
        Image.fromarray((np.arange(64)[None, :] < width).repeat(64, 0).astype(np.uint8)).save(
            masks / f"m{index}.png"
        )
    arguments = ["--methods", "telea", "--dataset", f"folder:{photos}", "--masks", f"folder:{masks}"]
    assert run_cli(tmp_path / "run", *arguments) == 0
    ratios = read_scores(tmp_path / "run" / "scores.csv").groupby("mask_id").hole_ratio.first()
    np.testing.assert_allclose(ratios.sort_index().values, np.array([9, 16, 22, 29]) / 64)


@pytest.mark.slow
def test_kill_9_mid_run_then_the_same_command_gives_the_same_numbers(tmp_path):
    photos = photo_folder(tmp_path / "photos", [f"p{i}.png" for i in range(6)], (128, 140))
    arguments = ["--methods", "telea,ns", "--dataset", f"folder:{photos}", "--size", "128"]
    assert run_cli(tmp_path / "straight", *arguments, "--masks-per-bucket", "2") == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "bench.run", *arguments, "--masks-per-bucket", "2", "--no-progress"]
    process = subprocess.Popen(
        [*command, "--out", str(out), "--report", ""],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:  # killed inside the second method, between or inside appends
        while not ((out / "scores.csv").exists() and (out / "scores.csv").read_text().count("\nns,") > 9):
            assert process.poll() is None, "the run ended before the kill"
            time.sleep(0.002)
        process.kill()
    finally:
        process.wait()
    assert run_cli(out, *arguments, "--masks-per-bucket", "2") == 0
    key = ["method", "image_id", "mask_id", "metric"]
    straight = read_scores(tmp_path / "straight" / "scores.csv").sort_values(key).reset_index(drop=True)
    resumed = read_scores(out / "scores.csv").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(straight, resumed)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_folders_with_non_utf8_names_run_and_report(tmp_path):
    photos = Path(os.fsdecode(os.fsencode(tmp_path) + b"/ph\xf6tos"))
    masks = Path(os.fsdecode(os.fsencode(tmp_path) + b"/m\xe4sks"))
    photo_folder(photos, ["a.png"])
    mask_folder(masks)
    arguments = ["--methods", "telea", "--dataset", f"folder:{photos}", "--masks", f"folder:{masks}"]
    assert run_cli(tmp_path / "run", *arguments, report=str(tmp_path / "r" / "index.html")) == 0
    assert "ph\\xf6tos" in (tmp_path / "r" / "index.html").read_text()


def test_resume_with_another_checkpoint_file_is_refused_on_the_command_line(tmp_path, capsys):
    photos = photo_folder(tmp_path / "photos", ["a.png"], (128, 128))
    first, second = own_checkpoint(tmp_path / "first.pt"), own_checkpoint(tmp_path / "second.pt")
    arguments = ["--methods", "lbam", "--size", "128", "--dataset", f"folder:{photos}"]
    assert run_cli(tmp_path / "run", *arguments, "--checkpoint", f"lbam={first}") == 0
    scores = (tmp_path / "run" / "scores.csv").read_bytes()
    capsys.readouterr()
    assert run_cli(tmp_path / "run", *arguments, "--checkpoint", f"lbam={second}") == 2
    assert "lbam was scored in this run folder with another checkpoint" in one_line_error(
        capsys.readouterr().err
    )
    assert (tmp_path / "run" / "scores.csv").read_bytes() == scores
