"""`python -m bench.study results STUDY`: the votes read back and summarised (no torch).

- Win rate per method: the share of votes that chose it (best-of-n, the paper's figure) or the
  share of the trials it appeared in that it won (two-alternative). 95 % intervals from a
  two-way bootstrap that resamples voters and images (test pairs) with replacement and weights
  each vote by the product of its voter's and its image's counts (Owen 2007, "The pigeonhole
  bootstrap"), so both sources of variation are in the interval.
- Bradley–Terry scores (two-alternative mode): maximum likelihood by Hunter's (2004) MM
  iterations, log-scores centred at 0, with the same bootstrap.
- Agreement between voters: Fleiss' (1971) kappa over the trials answered by two or more voters
  (the generalisation with a varying number of raters per item), and the observed agreement.
- Position bias: the share of votes per screen position against 1/N, with a chi-square test.
- Votes per voter and median answer time.

Writes STUDY/results/: votes.csv, win_rates.csv, positions.csv, voters.csv, bradley_terry.csv
(two-alternative) and results.json; bench.reports.study renders STUDY/report.html from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.core.files import atomic_write_text, write_json
from bench.reports.study import paper_win_rate
from bench.study import db
from bench.study.design import Study

BOOTSTRAP = 2000
VOTE_COLUMNS = [
    "vote_id", "voter_id", "step", "trial_id", "image", "bucket", "chosen_method", "position",
    "n_options", "arrangement", "client_ms", "server_ms", "created",
]  # fmt: skip


def votes_table(study: Study, database: Path) -> pd.DataFrame:
    """One row per vote with the method resolved from study.json and the arrangement as methods."""
    rows = []
    for vote in db.read_votes(database) if database.is_file() else []:
        trial = study.trials[vote["trial_id"]]
        arrangement = json.loads(vote["arrangement"])
        rows.append(
            {
                **{k: vote[k] for k in ("vote_id", "voter_id", "step", "trial_id", "position", "created")},
                "image": f"{trial.image_id}__{trial.mask_id}",
                "bucket": trial.bucket,
                "chosen_method": trial.options[vote["chosen"]],
                "n_options": len(arrangement),
                "arrangement": "|".join(trial.options[a] for a in arrangement),
                "client_ms": vote["client_ms"],
                "server_ms": vote["server_ms"],
            }
        )
    return pd.DataFrame(rows, columns=VOTE_COLUMNS)


def summary_for_admin(study: Study, database: Path) -> dict[str, Any]:
    votes = votes_table(study, database)
    voters = db.read_voters(database)
    shown = votes.arrangement.str.split("|").explode().value_counts() if len(votes) else pd.Series()
    chosen = votes.chosen_method.value_counts()
    methods = [
        {"method": m, "wins": int(chosen.get(m, 0)), "shown": int(shown.get(m, 0))} for m in study.methods
    ]
    for row in methods:
        row["rate"] = row["wins"] / row["shown"] if row["shown"] else 0.0
    per_voter = votes.groupby("voter_id").size()
    return {
        "voters": len(voters),
        "finished": sum(v["finished"] is not None for v in voters),
        "votes": len(votes),
        "methods": methods,
        "per_voter": [
            {"voter": v["id"], "votes": int(per_voter.get(v["id"], 0)), "finished": v["finished"] is not None}
            for v in voters
        ],
    }


def appearances(votes: pd.DataFrame, methods: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per vote × method: 1 where the method was among the options, 1 where it was chosen."""
    shown = np.array([[m in a.split("|") for m in methods] for a in votes.arrangement], dtype=float)
    won = (votes.chosen_method.to_numpy()[:, None] == np.array(methods)[None, :]).astype(float)
    return shown.reshape(len(votes), len(methods)), won.reshape(len(votes), len(methods))


def bootstrap_weights(votes: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Per vote: (times its voter was drawn) × (times its image was drawn)."""
    voters, voter_index = np.unique(votes.voter_id, return_inverse=True)
    images, image_index = np.unique(votes.image, return_inverse=True)
    voter_counts = rng.multinomial(len(voters), np.full(len(voters), 1 / len(voters)))
    image_counts = rng.multinomial(len(images), np.full(len(images), 1 / len(images)))
    return voter_counts[voter_index] * image_counts[image_index]


def win_rates(shown: np.ndarray, won: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    weights = np.ones(len(shown)) if weights is None else weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ won) / (weights @ shown)


def bradley_terry(won: np.ndarray, shown: np.ndarray, weights: np.ndarray, steps: int = 500) -> np.ndarray:
    """Log-strengths (centred) from pairwise votes by Hunter's (2004) MM update
    p_i ← W_i / Σ_j n_ij / (p_i + p_j); 0.5 pseudo-wins each way per compared pair keep it finite."""
    k = won.shape[1]
    wins = np.zeros((k, k))
    for row_won, row_shown, w in zip(won, shown, weights, strict=True):
        if w and row_shown.sum() == 2:
            winner, loser = int(np.argmax(row_won)), int(np.flatnonzero(row_shown * (1 - row_won))[0])
            wins[winner, loser] += w
    compared = (wins + wins.T) > 0
    wins = wins + 0.5 * compared
    games = wins + wins.T
    strength = np.ones(k)
    for _ in range(steps):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(1)
        updated = np.where(denominator > 0, wins.sum(1) / np.where(denominator > 0, denominator, 1), strength)
        updated /= np.exp(np.log(updated).mean())
        if np.allclose(updated, strength, rtol=1e-10, atol=0):
            break
        strength = updated
    logs = np.log(strength)
    return logs - logs.mean()


def fleiss_kappa(votes: pd.DataFrame) -> dict[str, float | int]:
    """Fleiss' kappa over trials with two or more votes (raters may differ per trial):
    P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)), P̄ their mean, P_e = Σ_j p_j² with p_j the share of
    all those votes for category j; κ = (P̄ − P_e) / (1 − P_e)."""
    counts = votes.groupby(["trial_id", "chosen_method"]).size().unstack(fill_value=0)
    counts = counts[counts.sum(axis=1) >= 2]
    if counts.empty:
        return {"trials": 0, "kappa": float("nan"), "observed": float("nan"), "expected": float("nan")}
    n = counts.sum(axis=1).to_numpy(float)
    table = counts.to_numpy(float)
    observed = float((((table**2).sum(1) - n) / (n * (n - 1))).mean())
    expected = float(((table.sum(0) / table.sum()) ** 2).sum())
    kappa = (observed - expected) / (1 - expected) if expected < 1 else float("nan")
    return {"trials": len(counts), "kappa": kappa, "observed": observed, "expected": expected}


def position_bias(votes: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Share of votes per screen position (per number of options) and the chi-square p-value of
    'every position equally likely' over all of them."""
    rows, observed, expected = [], [], []
    for n_options, group in votes.groupby("n_options"):
        counts = group.position.value_counts().reindex(range(n_options), fill_value=0)
        for position, count in counts.items():
            rows.append(
                {
                    "n_options": n_options,
                    "position": position + 1,
                    "votes": int(count),
                    "share": count / len(group),
                    "uniform": 1 / n_options,
                }
            )
        observed += list(counts)
        expected += [len(group) / n_options] * n_options
    table = pd.DataFrame(rows, columns=["n_options", "position", "votes", "share", "uniform"])
    if len(observed) < 2:
        return table, float("nan")
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    dof = len(observed) - votes.n_options.nunique()
    return table, float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")


def interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nanpercentile(samples, 2.5, axis=0), np.nanpercentile(samples, 97.5, axis=0)


def method_tables(study: Study, votes: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Win rates (and Bradley–Terry scores in two-alternative mode) with bootstrap intervals."""
    methods = study.methods
    shown, won = appearances(votes, methods)
    rng = np.random.default_rng(seed)
    pairs = study.mode == "two-alternative"
    rate_samples, bt_samples = [], []
    for _ in range(BOOTSTRAP if len(votes) else 0):
        weights = bootstrap_weights(votes, rng)
        rate_samples.append(win_rates(shown, won, weights))
        if pairs:
            bt_samples.append(bradley_terry(won, shown, weights))
    low, high = interval(np.array(rate_samples)) if rate_samples else ([np.nan] * len(methods),) * 2
    rates = pd.DataFrame(
        {
            "method": methods,
            "votes_won": won.sum(0).astype(int),
            "shown": shown.sum(0).astype(int),
            "win_rate": win_rates(shown, won) if len(votes) else np.nan,
            "ci_low": low,
            "ci_high": high,
            "paper_win_rate": [paper_win_rate(m) for m in methods],
        }
    )
    if not pairs:
        return rates, None
    bt_low, bt_high = interval(np.array(bt_samples)) if bt_samples else ([np.nan] * len(methods),) * 2
    scores = bradley_terry(won, shown, np.ones(len(votes))) if len(votes) else np.full(len(methods), np.nan)
    columns = {"method": methods, "log_strength": scores, "ci_low": bt_low, "ci_high": bt_high}
    return rates, pd.DataFrame(columns)


def voters_table(votes: pd.DataFrame, database: Path) -> pd.DataFrame:
    voters = pd.DataFrame(db.read_voters(database), columns=["id", "created", "finished"])
    per_voter = votes.groupby("voter_id").agg(votes=("vote_id", "size"), median_ms=("client_ms", "median"))
    table = voters.rename(columns={"id": "voter_id"}).join(per_voter, on="voter_id")
    table["votes"] = table["votes"].fillna(0).astype(int)
    table["finished"] = table["finished"].notna()
    return table[["voter_id", "votes", "finished", "median_ms"]]


def compute_results(study: Study, seed: int = 0) -> dict[str, Any]:
    """Every results file written into STUDY/results/; returns results.json's content."""
    database = study.folder / db.DATABASE
    votes = votes_table(study, database)
    voters = voters_table(votes, database) if database.is_file() else pd.DataFrame()
    rates, scores = method_tables(study, votes, seed)
    positions, position_p = position_bias(votes)
    folder = study.folder / "results"
    folder.mkdir(exist_ok=True)
    tables = {"votes": votes, "win_rates": rates, "positions": positions, "voters": voters}
    if scores is not None:
        tables["bradley_terry"] = scores
    for name, table in tables.items():
        atomic_write_text(folder / f"{name}.csv", table.to_csv(index=False))
    summary = {
        "title": study.title,
        "mode": study.mode,
        "methods": study.methods,
        "trials": len(study.trials),
        "trials_per_voter": study.trials_per_voter,
        "images": len({(t.image_id, t.mask_id) for t in study.trials.values()}),
        "votes": len(votes),
        "voters": int((voters.votes > 0).sum()) if len(voters) else 0,
        "bootstrap": {"resamples": BOOTSTRAP, "seed": seed, "over": ["voters", "images"], "level": 0.95},
        "agreement": fleiss_kappa(votes),
        "position_p_value": position_p,
        "median_answer_ms": float(votes.client_ms.median()) if len(votes) else float("nan"),
        "tables": sorted(f"{name}.csv" for name in tables),
    }
    write_json(folder / "results.json", summary)
    return summary
