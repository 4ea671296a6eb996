"""--save-outputs and the predictions method: saved composites re-scored give the same numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench import methods
from bench.datasets.masks import bucketed_mask_set
from bench.datasets.sources import load_test_set
from bench.evaluation.predictions import Predictions
from bench.run import main

TINY = ["--size", "64", "--masks-per-bucket", "1", "--no-progress", "--workers", "1", "--report", ""]
KEY = ["image_id", "mask_id", "metric"]


def scores_of(run_dir: Path, method: str) -> pd.DataFrame:
    scores = pd.read_csv(run_dir / "scores.csv", dtype={"image_id": str, "mask_id": str})
    mine = scores[scores.method == method].drop(columns="method")
    return mine.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("saved") / "run"
    assert main([*TINY, "--methods", "telea,ns", "--save-outputs", "--out", str(run_dir)]) == 0
    return run_dir


def test_saved_outputs_are_the_composites_of_every_pair(saved_run):
    files = sorted((saved_run / "outputs" / "telea").glob("*.png"))
    assert len(files) == 8 * 4 and len(list((saved_run / "outputs" / "ns").glob("*.png"))) == 32
    images, masks = load_test_set("demo", size=64), bucketed_mask_set("free_form", 1, 0, 64)
    image = torch.from_numpy(images.images[2]).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(masks.masks[3])[None, None]
    expected = methods.create("telea").inpaint(image, mask)
    name = f"{images.image_ids[2]}__{masks.mask_ids[3]}.png"
    saved = np.asarray(Image.open(saved_run / "outputs" / "telea" / name))
    np.testing.assert_array_equal(saved, (expected[0].permute(1, 2, 0) * 255).round().byte().numpy())
    assert json.loads((saved_run / "run.json").read_text())["config"]["save_outputs"] is True


def test_predictions_of_a_saved_run_reproduce_its_scores_exactly(saved_run, tmp_path):
    out = tmp_path / "rescored"
    folder = saved_run / "outputs"
    arguments = ["--methods", f"predictions:{folder / 'telea'}", "--predictions", f"ns_again={folder / 'ns'}"]
    assert main([*TINY, *arguments, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(scores_of(out, "predictions@telea"), scores_of(saved_run, "telea"))
    pd.testing.assert_frame_equal(scores_of(out, "ns_again"), scores_of(saved_run, "ns"))
    provenance = json.loads((out / "run.json").read_text())
    assert provenance["methods"]["ns_again"]["options"] == {"folder": str(folder / "ns")}


def test_missing_and_mis_sized_predictions_are_listed_and_nothing_is_scored(saved_run, tmp_path, capsys):
    folder = tmp_path / "preds"
    shutil.copytree(saved_run / "outputs" / "telea", folder)
    files = sorted(folder.glob("*.png"))
    files[0].unlink()
    Image.new("RGB", (32, 32)).save(files[1])
    files[2].write_bytes(b"not an image")
    out = tmp_path / "run"
    assert main([*TINY, "--methods", f"predictions:{folder}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"missing: {files[0].name}" in err
    assert f"mis-sized: {files[1].name} is 32×32, expected 64×64" in err
    assert f"unreadable: {files[2].name}" in err
    assert "3 of 32 predictions" in err
    assert not (out / "scores.csv").exists()


def test_predictions_refuse_an_absent_folder_and_unselected_batches(tmp_path, capsys):
    assert (
        main([*TINY, "--methods", f"predictions:{tmp_path / 'nowhere'}", "--out", str(tmp_path / "r")]) == 2
    )
    assert "predictions folder" in capsys.readouterr().err
    reader = Predictions("p", tmp_path)
    with pytest.raises(methods.MethodError, match="select_pairs"):
        reader.predict(torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8))
