"""Package discovery for the one import namespace `bench` (metadata: pyproject.toml).

Every folder holding a .py file is a package, found by walking the folders, so none can be
forgotten: bench/ is `bench`, and the checkout's methods/, datasets/ and reports/ are installed
as bench.methods, bench.datasets and bench.reports (datasets/ without __init__.py on purpose:
see bench/__init__.py). tests/test_layout.py builds the wheel and checks that it holds every
.py file and the report's data.
"""

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


def packages() -> list[str]:
    found = set()
    for folder, package in PARTS.items():
        for source in (ROOT / folder).rglob("*.py"):
            inner = source.parent.relative_to(ROOT / folder).parts
            if "__pycache__" not in inner:
                found.add(".".join([package, *inner]))
    return sorted(found)


setup(
    packages=packages(),
    package_dir={package: folder for folder, package in PARTS.items() if folder != package},
)
