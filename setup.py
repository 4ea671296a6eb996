"""Package discovery for the one import namespace `bench` (metadata: pyproject.toml).

Every folder holding a .py file is a package, found by walking the folders, so none can be
forgotten: bench/ is `bench`, and the checkout's methods/, datasets/ and reports/ are installed
as bench.methods, bench.datasets and bench.reports (imported under their folder names they
refuse, or for datasets/ hand over to Hugging Face's package: see their __init__.py). Every
other file in those folders (the report's templates and paper tables, the corpus list, shipped
weights under methods/weights/) is package data of the nearest package above it, found the same
way, except what git ignores (a rendered reports/index.html and its assets).
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


def packages() -> list[str]:
    found = set()
    for folder, package in PARTS.items():
        for source in (ROOT / folder).rglob("*.py"):
            inner = source.parent.relative_to(ROOT / folder).parts
            if shipped(source):
                found.add(".".join([package, *inner]))
    return sorted(found)


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


def package_data(names: list[str]) -> dict[str, list[str]]:
    """Every other file, as data of the nearest package above it."""
    data: dict[str, list[str]] = {}
    for folder, package in PARTS.items():
        files = [p for p in sorted((ROOT / folder).rglob("*")) if p.suffix != ".py" and shipped(p)]
        ignored = git_ignored(files)
        for path in files:
            inner = path.relative_to(ROOT / folder).parts
            if path in ignored:
                continue
            depth = max(d for d in range(len(inner)) if ".".join([package, *inner[:d]]) in names)
            owner = ".".join([package, *inner[:depth]])
            data.setdefault(owner, []).append("/".join(inner[depth:]))
    return data


setup(
    packages=packages(),
    package_data=package_data(packages()),
    package_dir={package: folder for folder, package in PARTS.items() if folder != package},
)
