"""inpaint-bench: one import namespace for the whole suite.

    bench.methods   (folder methods/)   the methods behind one interface
    bench.datasets  (folder datasets/)  test sets, masks, training streams
    bench.reports   (folder reports/)   aggregation and the HTML report (no torch)
    bench.*                             evaluation, training and the command lines

An installed copy holds the three folders inside bench/ (pyproject's package-dir). In a source
checkout they sit beside this folder, so the checkout's root joins this package's search path.
datasets/ has no __init__.py: a top-level `import datasets` never finds it, even from the
repository root, and reaches Hugging Face's package when that is installed.
"""

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "methods" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))
