"""What a study is: its trials (study.json, never served) and each voter's plan.

A trial shows the input and a set of options (composites under opaque asset ids). In the paper's
mode (`best-of-n`, LBAM Sec. 4.1) a trial holds every method's result for one test pair; in
`two-alternative` mode every pair of methods on one test pair is its own trial. Each voter gets
`trials_per_voter` trials in a random order and every trial's options in a fresh random
arrangement, drawn from a generator seeded with (study seed, voter id) and stored when the voter
starts, so a plan is reproducible from the database and resuming shows the same arrangement.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput
from bench.core.files import read_json

MODES = ("best-of-n", "two-alternative")
STUDY_FORMAT = "inpaint-bench user study v1"
ASSET_ID = re.compile(r"^[0-9a-f]{32}$")
TRIAL_ID = re.compile(r"^[0-9a-f]{16}$")
# The paper's criteria (LBAM Sec. 4.1): what voters are asked to judge.
CRITERIA = (
    "coherence with the surrounding context",
    "semantic structure",
    "fine detail",
)


class StudyError(BadInput):
    """A study folder or study option that cannot be used; the message says why."""


def new_asset_id() -> str:
    """Opaque, unpredictable: nothing in it depends on the method, the image or the order."""
    return secrets.token_hex(16)


def new_trial_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Trial:
    id: str
    input_asset: str
    options: dict[str, str]  # asset id → method (server side only)
    image_id: str
    mask_id: str
    bucket: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def method_pairs(methods: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(methods, 2))


def make_trials(mode: str, pairs: list[dict[str, Any]], methods: list[str]) -> list[Trial]:
    """`pairs`: one dict per chosen test pair with image_id, mask_id, bucket, input (asset id) and
    assets (method → asset id). Options are listed in asset-id order, never the methods' order."""
    trials = []
    for pair in pairs:
        groups = [tuple(methods)] if mode == "best-of-n" else method_pairs(methods)
        for group in groups:
            options = {pair["assets"][m]: m for m in sorted(group, key=lambda m: pair["assets"][m])}
            where = (pair["image_id"], pair["mask_id"], pair["bucket"])
            trials.append(Trial(new_trial_id(), pair["input"], options, *where))
    return trials


@dataclass
class Study:
    folder: Path
    title: str
    mode: str
    methods: list[str]
    seed: int
    trials_per_voter: int
    trials: dict[str, Trial]

    @property
    def assets(self) -> set[str]:
        found = {t.input_asset for t in self.trials.values()}
        return found.union(*(t.options for t in self.trials.values()))

    def asset_path(self, asset: str) -> Path:
        return self.folder / "assets" / f"{asset}.png"


def load_study(folder: str | Path) -> Study:
    folder = Path(folder)
    path = folder / "study.json"
    if not path.is_file():
        raise StudyError(f"{folder} is not a study folder (no study.json; make one with bench.study create)")
    try:
        data = read_json(path)
        if data.get("format") != STUDY_FORMAT:
            raise StudyError(f"{path} is not an {STUDY_FORMAT!r} file")
        trials = {t["id"]: Trial(**t) for t in data["trials"]}
        fields = ("title", "mode", "methods", "seed", "trials_per_voter")
        study = Study(folder, *(data[k] for k in fields), trials)
    except (ValueError, KeyError, TypeError) as error:
        raise StudyError(f"{path} is damaged or incomplete ({error!r})") from error
    missing = [a for a in sorted(study.assets) if not study.asset_path(a).is_file()]
    if missing:
        raise StudyError(f"{folder}: {len(missing)} image(s) missing from assets/, e.g. {missing[0]}.png")
    return study


def voter_rng(seed: int, voter_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{voter_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def voter_plan(study: Study, voter_id: str) -> list[dict[str, Any]]:
    """The voter's trials in a random order, each with a fresh random arrangement of its options."""
    rng = voter_rng(study.seed, voter_id)
    chosen = rng.sample(sorted(study.trials), k=min(study.trials_per_voter, len(study.trials)))
    plan = []
    for trial_id in chosen:
        options = sorted(study.trials[trial_id].options)
        plan.append({"trial": trial_id, "arrangement": rng.sample(options, k=len(options))})
    return plan
