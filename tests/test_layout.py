"""Which unit may import which, and coexistence with Hugging Face's `datasets` package."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
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
        for heavy in ("torch", "cv2", "matplotlib", "jinja2", "skimage"):
            assert f"import {heavy}" not in text and f"from {heavy}" not in text, (path, heavy)


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
