"""The user study's pure parts: choice of pairs, voter plans, the vote store's rules, and the
statistics against hand-computed values and scipy."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from bench.core.errors import BadInput
from bench.study import db
from bench.study.__main__ import interface_warning
from bench.study.create import choose_pairs
from bench.study.design import Study, StudyError, Trial, make_trials, voter_plan
from bench.study.results import bradley_terry, fleiss_kappa, method_tables, position_bias

BUCKETS = ["(0.1, 0.2]", "(0.2, 0.3]", "(0.3, 0.4]", "(0.4, 0.5]"]


def test_pairs_take_the_buckets_in_turn_prefer_new_images_and_follow_the_seed():
    pairs = [(f"img{i}", f"m{b}", bucket) for i in range(6) for b, bucket in enumerate(BUCKETS)]
    chosen = choose_pairs(pairs, 8, seed=3)
    assert [p[2] for p in chosen] == BUCKETS * 2
    assert len({p[0] for p in chosen[:6]}) == 6  # distinct images while any is left
    assert chosen == choose_pairs(pairs, 8, seed=3)
    assert chosen != choose_pairs(pairs, 8, seed=4)
    with pytest.raises(StudyError, match="asked for 25"):
        choose_pairs(pairs, 25, seed=0)


def small_study(tmp_path: Path, mode: str = "best-of-n", images: int = 4) -> Study:
    methods = ["a", "b", "c"]
    pairs = [
        {
            "image_id": f"img{i}",
            "mask_id": "m",
            "bucket": BUCKETS[i % 4],
            "input": uuid.uuid4().hex,
            "assets": {m: uuid.uuid4().hex for m in methods},
        }
        for i in range(images)
    ]
    trials = make_trials(mode, pairs, methods)
    return Study(tmp_path, "t", mode, methods, 0, len(trials), {t.id: t for t in trials})


def test_trials_of_both_modes_list_options_in_asset_order_not_method_order(tmp_path):
    best, pairs = small_study(tmp_path), small_study(tmp_path, "two-alternative")
    assert len(best.trials) == 4 and len(pairs.trials) == 4 * 3
    for trial in [*best.trials.values(), *pairs.trials.values()]:
        assert list(trial.options) == sorted(trial.options)
    assert {tuple(sorted(t.options.values())) for t in pairs.trials.values()} == {
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    }


def test_voter_plans_are_reproducible_and_differ_between_voters(tmp_path):
    study = small_study(tmp_path, "two-alternative", images=6)
    one, again, other = voter_plan(study, "1" * 32), voter_plan(study, "1" * 32), voter_plan(study, "2" * 32)
    assert one == again and one != other
    assert sorted(e["trial"] for e in one) == sorted(study.trials)
    for entry in one:
        assert sorted(entry["arrangement"]) == sorted(study.trials[entry["trial"]].options)
    trial = one[0]["trial"]
    plans = [voter_plan(study, f"{v:032x}") for v in range(40)]
    seen = {tuple(e["arrangement"]) for plan in plans for e in plan if e["trial"] == trial}
    assert len(seen) == 2  # both orders of a pair turn up across voters


@pytest.fixture
def store(tmp_path):
    study = small_study(tmp_path)
    path = tmp_path / db.DATABASE
    db.initialise(path)
    connection = db.connect(path)
    db.add_voter(connection, "a" * 32, voter_plan(study, "a" * 32))
    db.add_voter(connection, "b" * 32, voter_plan(study, "b" * 32))
    yield study, connection
    connection.close()


def count(connection) -> int:
    return connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0]


def test_a_vote_is_stored_once_and_bad_votes_are_refused_with_nothing_changed(store):
    study, connection = store
    plan = db.voter_plan(connection, "a" * 32)
    trial, choice = plan[0]["trial"], plan[0]["arrangement"][2]
    vote = db.Vote(str(uuid.uuid4()), "a" * 32, trial, choice, 900)
    assert db.record_vote(connection, vote) is True
    assert db.record_vote(connection, vote) is False  # resent: acknowledged, not stored again
    row = connection.execute("SELECT position, arrangement, step FROM votes").fetchone()
    assert (row["position"], row["step"]) == (2, 0) and choice in row["arrangement"]
    other_trial = plan[1]["trial"]
    foreign_asset = next(a for t in study.trials.values() if t.id != other_trial for a in t.options)
    refused = {
        409: [vote.__class__(vote.vote_id, "a" * 32, trial, plan[0]["arrangement"][0], 1)],  # id reused
        404: [db.Vote(str(uuid.uuid4()), "a" * 32, "f" * 16, choice, 1)],
        422: [db.Vote(str(uuid.uuid4()), "a" * 32, other_trial, foreign_asset, 1)],
        403: [db.Vote(str(uuid.uuid4()), "c" * 32, trial, choice, 1)],
    }
    refused[409].append(db.Vote(str(uuid.uuid4()), "a" * 32, trial, choice, 1))  # trial answered
    for status, votes in refused.items():
        for bad in votes:
            with pytest.raises(db.VoteRefused) as error:
                db.record_vote(connection, bad)
            assert error.value.status == status
    assert count(connection) == 1
    assert connection.execute("SELECT version FROM schema_version").fetchone()[0] == db.SCHEMA_VERSION
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_last_vote_of_a_plan_marks_the_voter_finished(store):
    _, connection = store
    for entry in db.voter_plan(connection, "b" * 32):
        assert (
            connection.execute("SELECT finished FROM voters WHERE id = ?", ("b" * 32,)).fetchone()[0] is None
        )
        db.record_vote(
            connection, db.Vote(str(uuid.uuid4()), "b" * 32, entry["trial"], entry["arrangement"][0], 5)
        )
    assert connection.execute("SELECT finished FROM voters WHERE id = ?", ("b" * 32,)).fetchone()[0] > 0


def kappa_votes(table: list[list[int]]) -> pd.DataFrame:
    rows = []
    for item, counts in enumerate(table):
        for category, n in enumerate(counts):
            rows += [{"trial_id": f"t{item}", "chosen_method": f"c{category}"}] * n
    return pd.DataFrame(rows)


def test_fleiss_kappa_by_hand_and_fleiss_worked_example():
    # two trials, two voters: P̄ = (1 + 0) / 2, P_e = (3/4)² + (1/4)², κ = (0.5 − 0.625) / 0.375
    by_hand = fleiss_kappa(kappa_votes([[2, 0], [1, 1]]))
    assert by_hand["kappa"] == pytest.approx(-1 / 3, abs=1e-12)
    assert fleiss_kappa(kappa_votes([[3, 0], [0, 3]]))["kappa"] == pytest.approx(1.0)
    # the worked example of Fleiss' kappa (10 subjects, 14 raters, 5 categories): κ ≈ 0.210
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    worked = fleiss_kappa(kappa_votes(table))
    assert worked["kappa"] == pytest.approx(0.210, abs=5e-4)
    assert worked["observed"] == pytest.approx(0.378, abs=5e-4)


def test_bradley_terry_matches_a_direct_maximum_likelihood_fit():
    methods = 3
    wins = {(0, 1): 7, (1, 0): 3, (0, 2): 9, (2, 0): 1, (1, 2): 6, (2, 1): 4}
    won, shown = [], []
    for (winner, loser), n in wins.items():
        for _ in range(n):
            won.append(np.eye(methods)[winner])
            shown.append(np.eye(methods)[winner] + np.eye(methods)[loser])
    won, shown = np.array(won), np.array(shown)
    ours = bradley_terry(won, shown, np.ones(len(won)))
    padded = {k: v + 0.5 for k, v in wins.items()}  # the same 0.5 pseudo-wins each way

    def negative_log_likelihood(free: np.ndarray) -> float:
        s = np.concatenate([[0.0], free])
        return sum(n * np.logaddexp(0, s[j] - s[i]) for (i, j), n in padded.items())

    fitted = optimize.minimize(negative_log_likelihood, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    reference = np.concatenate([[0.0], fitted.x])
    np.testing.assert_allclose(ours, reference - reference.mean(), atol=1e-5)
    assert ours[0] > ours[1] > ours[2]


def test_position_bias_p_value_is_scipys_chi_square():
    positions = [0] * 30 + [1] * 20 + [2] * 10
    votes = pd.DataFrame({"position": positions, "n_options": 3})
    table, p_value = position_bias(votes)
    assert list(table.votes) == [30, 20, 10]
    assert p_value == pytest.approx(stats.chisquare([30, 20, 10]).pvalue, rel=1e-12)


def test_every_method_pair_is_a_trial_once(tmp_path):
    study = small_study(tmp_path, "two-alternative", images=2)
    per_image = {}
    for trial in study.trials.values():
        per_image.setdefault(trial.image_id, []).append(tuple(sorted(trial.options.values())))
    for groups in per_image.values():
        assert sorted(groups) == list(itertools.combinations(["a", "b", "c"], 2))
    assert all(isinstance(t, Trial) for t in study.trials.values())


def test_a_database_of_another_schema_version_is_refused(tmp_path):
    path = tmp_path / db.DATABASE
    db.initialise(path)
    db.initialise(path)  # the same version: opened again
    connection = db.connect(path)
    connection.execute("UPDATE schema_version SET version = ?", (db.SCHEMA_VERSION + 1,))
    connection.close()
    with pytest.raises(BadInput, match=f"schema version {db.SCHEMA_VERSION + 1}"):
        db.initialise(path)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_the_loopback_interface_is_served_without_a_warning(host):
    assert interface_warning(host, 8000) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_any_other_interface_is_served_with_a_warning(host):
    warning = interface_warning(host, 8000)
    assert warning.startswith(f"warning: serving on {host}") and "port 8000" in warning


def votes_decided_by(decide) -> pd.DataFrame:
    """8 voters × 8 images, options a and b; the vote is `decide(voter, image)`."""
    rows = [
        {"voter_id": f"v{v}", "image": f"i{i}", "arrangement": "a|b", "chosen_method": decide(v, i)}
        for v in range(8)
        for i in range(8)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("decided_by", ["image", "voter"])
def test_the_bootstrap_resamples_both_voters_and_images(decided_by):
    # Votes that depend on the image only (or on the voter only): a bootstrap over the other factor
    # alone would give a zero-width interval. Resampling 8 of 8 images (voters), a's share is
    # Binomial(8, 1/2) / 8, whose 2.5 % and 97.5 % quantiles are 1/8 and 7/8; allowed: one step.
    decide = (lambda v, i: "a" if i < 4 else "b") if decided_by == "image" else (lambda v, i: "ab"[v >= 4])
    study = SimpleNamespace(methods=["a", "b"], mode="best-of-n")
    rates, _ = method_tables(study, votes_decided_by(decide), seed=0)
    a = rates.set_index("method").loc["a"]
    assert a.win_rate == 0.5
    assert a.ci_low == pytest.approx(stats.binom.ppf(0.025, 8, 0.5) / 8, abs=1 / 8)
    assert a.ci_high == pytest.approx(stats.binom.ppf(0.975, 8, 0.5) / 8, abs=1 / 8)
    assert a.ci_high - a.ci_low >= 0.5
