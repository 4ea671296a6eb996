"""Test sets, masks and training streams: `bench.datasets` (the entry is bench.datasets.sources).

This folder is installed as bench.datasets. Imported under its folder name (`import datasets` from
the checkout's root, where the current folder comes first on sys.path) it hands over to Hugging
Face's `datasets` when that is installed, and otherwise refuses with the right name, so that the
name `datasets` means theirs from every folder and no file here is ever loaded twice.
"""

if __name__ == "datasets":
    import importlib.util
    import sys
    from importlib.machinery import PathFinder
    from pathlib import Path

    _checkout = Path(__file__).resolve().parent.parent
    _elsewhere = [entry for entry in sys.path if Path(entry or ".").resolve() != _checkout]
    _theirs = PathFinder.find_spec("datasets", _elsewhere)
    if _theirs is None or _theirs.loader is None:
        raise ImportError(
            "import bench.datasets, not datasets: the folder datasets/ is installed as bench.datasets "
            "(pip install -e . in the checkout); `import datasets` is Hugging Face's package"
        )
    _module = importlib.util.module_from_spec(_theirs)
    sys.modules["datasets"] = _module  # the import system returns what sys.modules holds
    _theirs.loader.exec_module(_module)
