"""inpaint-bench: one import namespace for the whole suite.

    bench.methods   (folder methods/)   the methods behind one interface
    bench.datasets  (folder datasets/)  test sets, masks, training streams
    bench.reports   (folder reports/)   aggregation and the HTML report (no torch)
    bench.*                             evaluation, training and the command lines

The three folders sit beside this one in the checkout and are installed inside bench/ (setup.py
maps them; `pip install .` or `pip install -e .`): they are imported only under these names. From
the checkout's root `import methods` (or `reports.tables`) is refused with the right name by the
folder's __init__.py, so no file is ever loaded twice; a top-level `import datasets` reaches
Hugging Face's package (or is refused the same way when that is not installed).
"""

from typing import Any

# The Python entry points, equal to the command lines (which only parse into these configs):
#   bench.evaluate(bench.RunConfig(...), out)   = python -m bench.run
#   bench.fit(bench.TrainConfig(...))           = python -m bench.train  (bench.train is that module)
# Loaded on first use, so that `import bench` (and bench.reports) stays free of torch.
_LAZY = {
    "RunConfig": "bench.evaluation.config",
    "evaluate": "bench.evaluation.entry",
    "TrainConfig": "bench.training.config",
    "fit": "bench.training.entry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


__all__ = sorted(_LAZY)
