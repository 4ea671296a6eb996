"""Which unit may import which, and coexistence with Hugging Face's `datasets` package."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# unit (folder) → the bench units it may import (bench.core is the bottom layer, open to all)
ALLOWED = {
    "methods": {"methods", "core"},
    "datasets": {"datasets", "core"},
    "reports": {"reports", "core"},
}


def bench_imports(path: Path) -> set[str]:
    """The bench units (methods, datasets, reports, core, or a bench module) a file imports."""
    units = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "bench" and len(parts) > 1:
                units.add(parts[1])
            elif parts[0] in ALLOWED:  # a top-level import of a folder: never allowed
                units.add(f"top-level {parts[0]}")
    return units


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_each_unit_imports_only_itself_and_the_bottom_layer(unit):
    wrong = {
        str(path.relative_to(ROOT)): sorted(bench_imports(path) - ALLOWED[unit])
        for path in sorted((ROOT / unit).rglob("*.py"))
    }
    assert {file: units for file, units in wrong.items() if units} == {}


def test_the_bottom_layer_imports_no_other_unit_and_nothing_heavy():
    for path in sorted((ROOT / "bench" / "core").rglob("*.py")):
        assert bench_imports(path) <= {"core"}, path
        text = path.read_text()
        heavy = ("cv2", "matplotlib", "jinja2", "skimage") + (() if path.name == "tensors.py" else ("torch",))
        for name in heavy:  # tensors.py: the helpers shared by metrics, losses and methods
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)


@pytest.mark.parametrize("module", ["bench.evaluation.metrics", "bench.training.losses"])
def test_metrics_and_losses_load_no_method_module(module):
    probe = f"import sys, {module}\nprint(sorted(m for m in sys.modules if m.startswith('bench.methods')))"
    result = run_python(["-c", probe], ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def run_python(code: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *code], cwd=cwd, capture_output=True, text=True, env=environment, timeout=300
    )


hugging_face = pytest.mark.skipif(
    importlib.util.find_spec("datasets") is None, reason="Hugging Face datasets is not installed"
)


@hugging_face
@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_import_datasets_is_hugging_faces_from_any_folder(where, tmp_path):
    folder = ROOT if where == "repository root" else tmp_path
    result = run_python(["-c", "import datasets; print(datasets.load_dataset.__module__)"], folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("datasets.")


@hugging_face
def test_bench_run_works_from_a_folder_outside_the_repository(tmp_path):
    arguments = ["--methods", "telea", "--size", "64", "--masks-per-bucket", "1", "--no-progress"]
    result = run_python(["-m", "bench.run", *arguments, "--out", "run", "--report", ""], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "scores.csv").is_file()


def test_bench_report_imports_neither_torch_nor_cv2_nor_the_methods(tmp_path):
    from bench.run import main as run_main

    run_dir, report = tmp_path / "run", tmp_path / "report" / "index.html"
    arguments = ["--methods", "telea", "--size", "64", "--masks-per-bucket", "1", "--no-progress"]
    assert run_main([*arguments, "--out", str(run_dir), "--report", ""]) == 0
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['bench.report', {str(run_dir)!r}, '--out', {str(report)!r}]\n"
        "try:\n    runpy.run_module('bench.report', run_name='__main__')\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "heavy = ('torch', 'torchvision', 'cv2', 'lpips', 'skimage')\n"
        "units = ('bench.methods', 'bench.datasets', 'bench.evaluation', 'bench.training')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(units)))\n"
    )
    result = run_python(["-c", probe], ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert report.is_file()


# folder of the checkout → the package it is installed as (setup.py)
PARTS = {
    "bench": "bench",
    "methods": "bench.methods",
    "datasets": "bench.datasets",
    "reports": "bench.reports",
}


def module_names() -> list[str]:
    """Every module of the installed package, named from the checkout's files."""
    names = []
    for folder, package in PARTS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            names.append(".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)]))
    return names


DUPLICATES = (  # every module imported, then the files of the project's modules loaded more than once
    "import collections, importlib, sys\n"
    "for name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    "ours = [getattr(m, '__file__', None) for n, m in list(sys.modules.items())\n"
    "        if n.split('.')[0] in ('bench', 'methods', 'datasets', 'reports', 'tests')]\n"
    "print(sorted(f for f, n in collections.Counter(ours).items() if f and n > 1))\n"
)


@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_no_file_is_loaded_twice_from_any_folder(where, tmp_path):
    folder = ROOT if where == "repository root" else tmp_path
    result = run_python(["-c", DUPLICATES, *module_names()], folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_no_file_is_loaded_twice_under_pytest():
    for name in module_names():
        importlib.import_module(name)
    files = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    ours = [Path(f).resolve() for f in files if f and not Path(f).resolve().is_relative_to(sys.prefix)]
    ours = [f for f in ours if f.is_relative_to(ROOT)]
    assert len(ours) == len(set(ours))
    assert ROOT not in [Path(entry or ".").resolve() for entry in sys.path]  # no pytest pythonpath


@pytest.mark.parametrize(
    ("statement", "right"),
    [
        ("import methods.pconv", "bench.methods"),
        ("import methods", "bench.methods"),
        ("from reports import tables", "bench.reports"),
    ],
)
def test_top_level_folders_refuse_their_folder_names(statement, right):
    result = run_python(["-c", statement], ROOT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"ImportError: import {right}, not ")


def test_datasets_folder_refuses_its_name_when_hugging_face_is_absent():
    result = run_python(["-S", "-c", "import datasets"], ROOT)  # -S: no site-packages, so no HF
    assert result.stderr.strip().splitlines()[-1].startswith("ImportError: import bench.datasets, not ")


@pytest.mark.parametrize("name", ["bench.bench", "bench.tests", "bench.noxfile", "bench.methods.methods"])
def test_the_checkout_root_is_no_part_of_the_package(name):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_tests_import_their_helpers_by_file_name():
    """tests/ is on sys.path under pytest; `tests.x` would load a second copy of each helper."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        assert not {"tests", "methods", "reports"} & {name.split(".")[0] for name in imported_names(path)}, (
            path
        )


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_the_package_folders(tmp_path):
    """Build the wheel from a copy of the checkout: a module, a sub-package or a data file (the
    report's templates, shipped weights under methods/weights/, a file in a folder added
    tomorrow) missing from it fails here, whatever lists the packages."""
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "runs", "assets")
    shutil.copytree(ROOT, source, ignore=skip)
    shutil.copy(ROOT / ".gitignore", source)
    subprocess.run(["git", "init", "-q", str(source)], check=True)  # what git ignores is left out
    added = ("methods/weights/added_cpu.pth", "datasets/new_folder/list.json", "bench/new_unit/x.py")
    rendered = ("reports/index.html", "reports/assets/plot.png")  # a rendered report (.gitignore)
    for name in added + rendered:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("")
    command = ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    result = run_python(command, source)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("inpaint_bench-*.whl")
    held = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in PARTS.items():
        for path in (source / folder).rglob("*"):
            inner = path.relative_to(source / folder).parts
            if path.is_file() and "__pycache__" not in inner and path.suffix != ".pyc":
                expected.add("/".join([*package.split("."), *inner]))
    expected -= {f"bench/{name}" for name in rendered}
    assert not {f"bench/{name}" for name in rendered} & held
    assert {"bench/methods/weights/added_cpu.pth", "bench/reports/templates/index.html.j2"} <= expected
    assert sorted(expected - held) == []
    assert {name.split("/")[0] for name in held} == {"bench", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
