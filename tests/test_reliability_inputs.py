"""Issue 20, inputs that gave tracebacks or were accepted silently: run.json fields of the wrong
type (generated for every field the suite reads back), options the chosen pairing does not use,
bench.perf's arguments. Each is one line, exit code 2, nothing written or measured."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from reliability_fixtures import mask_folder, one_line_error, photo_folder, run_cli

from bench import perf, report
from bench.core.errors import MAX_ERROR_LINE, BadInput, error_line
from bench.core.run_json import REQUIRED, SHAPE, shape_problem, values_at
from bench.evaluation.pairing import PAIRINGS
from bench.run import main

# One value of every JSON type; a field is given each type it may not hold.
JSON_VALUES = {
    "object": {"k": 1},
    "list": [1],
    "text": "x",
    "whole": 3,
    "number": 1.5,
    "null": None,
    "bool": True,
}
ALLOWED = {dict: ("object",), list: ("list",), str: ("text",), int: ("whole",), type(None): ("null",)}


def wrong_values(path: str) -> list[str]:
    allowed = {name for t in SHAPE[path] for name in ALLOWED[t]}
    return [name for name in JSON_VALUES if name not in allowed]


def replaced(data: dict, field_path: str, value: object) -> dict:
    """A deep copy of `data` with every value the dotted path reaches set to `value`."""
    data = copy.deepcopy(data)
    *parents, last = field_path.split(".")
    for _, parent in values_at(data, parents):
        if last != "*":
            keys = [last] if isinstance(parent, dict) and last in parent else []
        else:
            keys = (
                list(parent)
                if isinstance(parent, dict)
                else range(len(parent))
                if isinstance(parent, list)
                else []
            )
        for key in keys:
            parent[key] = copy.deepcopy(value)
    return data


def every_field(data: dict) -> dict:
    """A stored telea run's run.json with the fields only learned methods fill filled too."""
    data = copy.deepcopy(data)
    data.update(
        figures={"lbam": {"figure7": "7.png", "figure8": "8.png"}}, training_logs={"lbam": "lbam.csv"}
    )
    data["checkpoints_sha256"] = {"lbam": "ab" * 32}
    validation = {"curve": [{"step": 1, "bucket": "(0.1, 0.2]", "psnr": 20.0}], "telea": {"(0.1, 0.2]": {}}}
    data["methods"]["telea"]["training"] = {"deviations": ["none"], "validation": validation}
    return data


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("stored")
    photos = photo_folder(root / "photos", ["a.png", "b.png"])
    assert run_cli(root / "run", "--methods", "telea", "--dataset", f"folder:{photos}") == 0
    return photos, json.loads((root / "run" / "run.json").read_text())


def test_the_run_json_bench_run_writes_fits_its_shape(stored_run):
    _, data = stored_run
    assert shape_problem(data) is None and shape_problem(every_field(data)) is None
    assert all(values_at(every_field(data), path.split(".")) for path in SHAPE)  # every field reached


@pytest.mark.parametrize("path", sorted(SHAPE))
def test_every_field_of_another_type_is_named(stored_run, path):
    data = every_field(stored_run[1])
    for wrong in wrong_values(path):
        damaged = replaced(data, path, JSON_VALUES[wrong])
        assert damaged != data, (path, wrong)
        problem = shape_problem(damaged)
        assert problem is not None and problem.startswith("the field '"), (path, wrong, problem)
        named = problem.split("'")[1]
        assert named.split("[")[0].split(".")[0] == path.split(".")[0], (path, wrong, problem)


@pytest.mark.parametrize("seed", range(12))
def test_a_damaged_run_json_is_one_line_for_a_resume_and_the_report(stored_run, tmp_path, capsys, seed):
    """A field drawn at random, given a type it may not hold: bench.run's resume and bench.report
    both refuse in one line; the records are left as they were, and no report is written."""
    photos, data = stored_run
    rng = np.random.default_rng(seed)
    paths = sorted(p for p in SHAPE if values_at(data, p.split(".")))
    path = paths[rng.integers(len(paths))]
    wrong = str(rng.choice(wrong_values(path)))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(replaced(data, path, JSON_VALUES[wrong])))
    (run_dir / "scores.csv").write_text("kept")
    assert run_cli(run_dir, "--methods", "telea", "--dataset", f"folder:{photos}") == 2
    assert "run.json is damaged" in one_line_error(capsys.readouterr().err)
    page = tmp_path / "report" / "index.html"
    assert report.main([str(run_dir), "--out", str(page)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "run.json is damaged" in line and len(line) < 400
    assert (run_dir / "scores.csv").read_text() == "kept" and not (tmp_path / "report").exists()


def test_a_missing_required_field_is_named(stored_run):
    for field in REQUIRED:
        *parents, last = field.split(".")
        data = copy.deepcopy(stored_run[1])
        for _, parent in values_at(data, parents):
            del parent[last]
        assert shape_problem(data) == f"the field {field} is missing"


# --- options the chosen pairing does not use -----------------------------------------------------

PAIRING_FLAGS = {"--masks-per-bucket": ("cross", "per-image"), "--masks-per-image": ("per-image",)}


@pytest.mark.parametrize("pairing", PAIRINGS)
@pytest.mark.parametrize("flag", sorted(PAIRING_FLAGS))
def test_an_option_the_pairing_does_not_use_is_refused(tmp_path, capsys, pairing, flag):
    photos = photo_folder(tmp_path / "photos", ["m0.png", "m1.png"], size=(64, 64))
    masks = mask_folder(tmp_path / "masks")
    arguments = ["--methods", "telea", "--dataset", f"folder:{photos}", "--masks", f"folder:{masks}"]
    arguments += ["--pairing", pairing, flag, "1", "--workers", "1", "--size", "64", "--no-progress"]
    if pairing == "per-image" and flag == "--masks-per-image":
        arguments += ["--masks-per-bucket", "1"]  # the folder holds one mask per bucket
    code = main([*arguments, "--out", str(tmp_path / "run"), "--report", ""])
    if pairing in PAIRING_FLAGS[flag]:
        assert code == 0
        return
    assert code == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"{flag} applies to --pairing" in line and f"not {pairing}" in line
    assert not (tmp_path / "run").exists()


# --- bench.perf ---------------------------------------------------------------------------------

BAD_PERF = [
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--repeats", "-2"], "--repeats must be at least 1, got -2"),
    (["--skip", "learned,bogus"], "--skip bogus: no such part"),
    (["--device", "foo"], "--device 'foo'"),
    (["--out", "{tmp}"], "is a folder"),
    (["--out", "{tmp}/file/perf.json"], "cannot write in"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_PERF)
def test_bad_perf_arguments_are_refused_before_measuring(tmp_path, capsys, monkeypatch, arguments, message):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(perf, "measure", lambda *_: pytest.fail("measured despite a bad argument"))
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    if "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "perf.json")]
    assert perf.main(arguments) == 2
    assert message in one_line_error(capsys.readouterr().err)


def test_perf_writes_what_it_measured(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(perf, "measure", lambda _d, skip, repeats, *_: {"skip": sorted(skip), "r": repeats})
    out = tmp_path / "new" / "perf.json"
    assert perf.main(["--skip", "e2e,scaling", "--repeats", "1", "--out", str(out), "--device", "cpu"]) == 0
    assert json.loads(out.read_text()) == {"skip": ["e2e", "scaling"], "r": 1}


# --- a one-line error is one bounded line ---------------------------------------------------------


@pytest.mark.parametrize("length", [10, MAX_ERROR_LINE, 5600, 100_000])
def test_error_lines_are_one_bounded_line_that_says_what_it_cut(length):
    text = ("x\n" * length)[:length]
    line = error_line(BadInput(text))
    assert "\n" not in line and len(line) <= len("error: ") + MAX_ERROR_LINE + 40
    shown = " ".join(text.split())
    assert line == f"error: {shown}" if len(shown) <= MAX_ERROR_LINE else "characters more)" in line


def test_a_refusal_quoting_a_5_kb_value_prints_one_bounded_line(tmp_path, capsys):
    assert run_cli(tmp_path / "run", "--methods", "telea", "--option", "telea.radius=" + "9x" * 2800) == 2
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith("error: --option telea.radius=") and "characters more)" in line
    assert len(line) <= len("error: ") + MAX_ERROR_LINE + 40
