"""Study creation from a saved run, and `python -m bench.study results` on votes put in the
database as the server does (no torch in the results command)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from study_fixtures import METHODS, make_study, saved_run

from bench.reports.render import render_report
from bench.study import db
from bench.study.__main__ import main as study_main
from bench.study.create import FIXED_FILE_TIME
from bench.study.design import load_study, voter_plan
from bench.study.results import compute_results

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run(tmp_path_factory):
    return saved_run(tmp_path_factory)


def test_a_study_shows_the_runs_inputs_with_white_holes_and_copies_each_composite(run, tmp_path):
    study = load_study(make_study(run, tmp_path / "study", images=5))
    scores = pd.read_csv(run / "scores.csv")
    assert len(study.trials) == 5
    assert len({t.bucket for t in study.trials.values()}) == 4  # spread over the buckets
    assert len({t.image_id for t in study.trials.values()}) == 5
    for trial in study.trials.values():
        shown = np.asarray(Image.open(study.asset_path(trial.input_asset)))
        for asset, method in trial.options.items():
            saved = run / "outputs" / method / f"{trial.image_id}__{trial.mask_id}.png"
            assert (np.asarray(Image.open(study.asset_path(asset))) == np.asarray(Image.open(saved))).all()
            known = (shown != 255).any(axis=2)
            assert (shown[known] == np.asarray(Image.open(saved))[known]).all()  # same known pixels
        hole = 1 - known.mean()
        ratio = scores[
            (scores.image_id == trial.image_id) & (scores.mask_id == trial.mask_id)
        ].hole_ratio.iloc[0]
        assert hole == pytest.approx(ratio, abs=0.02)  # white photo pixels can only add a little
        assert os.stat(study.asset_path(trial.input_asset)).st_mtime == FIXED_FILE_TIME
    again = load_study(make_study(run, tmp_path / "again", images=5))
    key = sorted((t.image_id, t.mask_id) for t in study.trials.values())
    assert key == sorted((t.image_id, t.mask_id) for t in again.trials.values())  # seeded choice
    assert not set(study.assets) & set(again.assets)  # ids are fresh random, not derived


def test_create_refuses_what_it_cannot_use(run, tmp_path, capsys):
    arguments = ["create", str(run), "--out", str(tmp_path / "s"), "--images", "2"]
    assert study_main([*arguments, "--methods", "telea,lbam"]) == 2
    assert "no results of lbam" in capsys.readouterr().err
    assert study_main([*arguments, "--methods", "telea"]) == 2
    assert study_main([*arguments, "--methods", "telea,ns", "--images", "99"]) == 2
    assert "asked for 99" in capsys.readouterr().err
    assert study_main(["create", str(tmp_path), "--out", str(tmp_path / "s"), "--methods", "telea,ns"]) == 2


def test_create_needs_only_the_runs_data_not_its_machine(run, tmp_path):
    """A run made elsewhere (on a GPU, with weights in another folder) still gives a study here."""
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    record = json.loads((moved / "run.json").read_text())
    record["config"].update(device="cuda:7", checkpoints={"lbam": "/elsewhere/lbam.pth"}, weights_dir="/gone")
    (moved / "run.json").write_text(json.dumps(record))
    study = load_study(make_study(moved, tmp_path / "study", images=2))
    assert len(study.trials) == 2


def cast_votes(study_dir: Path, voters: int, prefer: str) -> None:
    """Each voter answers every trial, choosing `prefer` when shown, else the first option."""
    study = load_study(study_dir)
    path = study_dir / db.DATABASE
    db.initialise(path)
    connection = db.connect(path)
    for number in range(voters):
        voter = f"{number:032x}"
        db.add_voter(connection, voter, voter_plan(study, voter))
        for entry in voter_plan(study, voter):
            options = study.trials[entry["trial"]].options
            chosen = next((a for a in entry["arrangement"] if options[a] == prefer), entry["arrangement"][0])
            db.record_vote(
                connection, db.Vote(str(uuid.uuid4()), voter, entry["trial"], chosen, 800 + number)
            )
    connection.close()


def test_results_count_every_vote_and_write_csvs_and_the_report(run, tmp_path, capsys):
    study_dir = make_study(run, tmp_path / "study", images=4)
    cast_votes(study_dir, voters=5, prefer="ns")
    assert study_main(["results", str(study_dir)]) == 0
    printed = capsys.readouterr().out
    assert "20 votes from 5 voters" in printed
    rates = pd.read_csv(study_dir / "results" / "win_rates.csv").set_index("method")
    assert rates.loc["ns", "win_rate"] == 1.0 and rates.loc["telea", "win_rate"] == 0.0
    assert rates.loc["ns", "ci_low"] == 1.0  # every resample of voters and images gives 1
    assert rates.loc["patchmatch", "paper_win_rate"] == pytest.approx(0.111)
    assert np.isnan(rates.loc["telea", "paper_win_rate"])
    summary = json.loads((study_dir / "results" / "results.json").read_text())
    agreement = summary["agreement"]  # all chose one method: P̄ = P_e = 1, κ undefined
    assert agreement["observed"] == 1.0 and agreement["trials"] == 4 and np.isnan(agreement["kappa"])
    votes = pd.read_csv(study_dir / "results" / "votes.csv")
    assert len(votes) == 20 and set(votes.chosen_method) == {"ns"}
    assert (votes.n_options == 3).all() and votes.arrangement.str.count("ns").eq(1).all()
    voters = pd.read_csv(study_dir / "results" / "voters.csv")
    assert list(voters.votes) == [4] * 5 and voters.finished.all()
    page = (study_dir / "report.html").read_text()
    assert "20 votes from 5 voters" in page and "11.1 %" in page and "Fleiss" in page
    index = render_report(run, tmp_path / "report" / "index.html").read_text()  # the run's report
    section = index[index.index('id="user-study"') :]
    assert "20 votes from 5 voters" in section and (study_dir / "report.html").as_uri() in section


def test_results_of_a_two_alternative_study_give_bradley_terry_scores(run, tmp_path):
    study_dir = make_study(run, tmp_path / "study", images=3, mode="two-alternative")
    cast_votes(study_dir, voters=4, prefer="telea")
    summary = compute_results(load_study(study_dir))
    assert summary["votes"] == 4 * 3
    scores = pd.read_csv(study_dir / "results" / "bradley_terry.csv").set_index("method")
    assert scores.log_strength.idxmax() == "telea"
    assert (scores.ci_low <= scores.log_strength).all() and (scores.log_strength <= scores.ci_high).all()
    rates = pd.read_csv(study_dir / "results" / "win_rates.csv").set_index("method")
    assert rates.loc["telea", "win_rate"] == 1.0
    assert rates.shown.sum() == 2 * 12


def test_the_results_command_imports_neither_torch_nor_the_methods(run, tmp_path):
    study_dir = make_study(run, tmp_path / "study", images=2, methods=METHODS[:2])
    cast_votes(study_dir, voters=2, prefer="ns")
    probe = (
        "import sys\nfrom bench.study.__main__ import main\n"
        f"assert main(['results', {str(study_dir)!r}]) == 0\n"
        "heavy = ('torch', 'torchvision', 'cv2', 'lpips', 'skimage')\n"
        "units = ('bench.methods', 'bench.datasets', 'bench.evaluation', 'bench.training')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(units)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
