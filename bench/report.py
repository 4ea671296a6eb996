"""`python -m bench.report RUN_DIR`: re-render reports/index.html from a run folder's stored
records. Imports neither torch nor the methods (tests/test_layout.py checks it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.core.errors import EXIT_BAD_INPUT, BadInput, error_line
from bench.reports.render import render_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder written by python -m bench.run")
    parser.add_argument("--out", type=Path, default=Path("reports/index.html"))
    args = parser.parse_args(argv)
    if not (args.run_dir / "run.json").is_file():
        print(f"error: {args.run_dir} is not a run folder (no run.json)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        print(f"report: {render_report(args.run_dir, args.out)}")
    except BadInput as error:  # a damaged run.json; a report that would harm files it did not write
        print(error_line(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, KeyError) as error:  # a field the report needs and run.json lacks
        print(f"error: {args.run_dir / 'run.json'} is damaged or incomplete ({error!r})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(
            f"error: cannot write the report: {error.strerror or error} ({error.filename})", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
