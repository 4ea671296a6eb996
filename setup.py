"""Package discovery for the one import namespace `bench` (metadata: pyproject.toml).

Every folder holding a shipped file is a package, found by walking the folders, so none can be
forgotten: bench/ is `bench`, and the checkout's methods/, datasets/ and reports/ are installed
as bench.methods, bench.datasets and bench.reports (imported under their folder names they
refuse, or for datasets/ hand over to Hugging Face's package: see their __init__.py). Every
other file in those folders (the report's templates and paper tables, the corpus list, shipped
weights under methods/weights/) is package data of its own folder, which is therefore a package
too (a namespace package where it holds no .py file: setuptools warns of data folders that are
importable but not listed), except what git ignores (a rendered reports/index.html and its assets).
tests/test_layout.py builds the wheel and checks that it holds every file.
"""

import subprocess
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
# folder of the checkout → the package it is installed as
PARTS = {
    "bench": "bench",
    "methods": "bench.methods",
    "datasets": "bench.datasets",
    "reports": "bench.reports",
}


def shipped(path: Path) -> bool:
    """A file of the package: not a cache, a compiled file or a hidden file."""
    hidden = any(part == "__pycache__" or part.startswith(".") for part in path.relative_to(ROOT).parts)
    return path.is_file() and path.suffix != ".pyc" and not hidden


def git_ignored(paths: list[Path]) -> set[Path]:
    """The paths git ignores in this checkout (none outside a git checkout or without git)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "check-ignore", "--stdin"],
            input="\n".join(str(p) for p in paths),
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except OSError:
        return set()
    return {Path(line) for line in listed.splitlines()}


def package_files() -> dict[str, list[str]]:
    """Every file of the package, by the package of its own folder (the name it is installed as)."""
    owned: dict[str, list[str]] = {}
    for folder, package in PARTS.items():
        files = [p for p in sorted((ROOT / folder).rglob("*")) if shipped(p)]
        ignored = git_ignored([p for p in files if p.suffix != ".py"])
        for path in files:
            if path not in ignored:
                inner = path.parent.relative_to(ROOT / folder).parts
                owned.setdefault(".".join([package, *inner]), []).append(path.name)
    return owned


FILES = package_files()


setup(
    packages=sorted(FILES),
    package_data={package: [n for n in names if not n.endswith(".py")] for package, names in FILES.items()},
    package_dir={package: folder for folder, package in PARTS.items() if folder != package},
)
