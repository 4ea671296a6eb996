"""`python -m bench.corpus fetch`: the CPU-scale training corpus (bench.datasets.corpus).

python -m bench.corpus fetch                 # → corpus/{train,val,test}/ and corpus/manifest.json
python -m bench.train --profile cpu --method lbam   # trains on folder:corpus/train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.core.errors import EXIT_BAD_INPUT, BadInput
from bench.datasets.corpus import SOURCES_FILE, fetch, load_sources

DEFAULT_OUT = "corpus"
DEFAULT_CACHE = "~/.cache/inpaint-bench/packages"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--out", default=DEFAULT_OUT, help="corpus folder (default: %(default)s)")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="downloaded packages (default: %(default)s)")
    parser.add_argument("--sources", default=str(SOURCES_FILE), help="pinned source list (JSON)")
    args = parser.parse_args(argv)
    try:
        report = fetch(Path(args.out), Path(args.cache).expanduser(), load_sources(Path(args.sources)))
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    counts = {split: sum(e["split"] == split for e in report.kept) for split in ("train", "val", "test")}
    print(f"corpus {args.out}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))
    if report.unreachable:
        print("unreachable sources: " + "; ".join(f"{k} ({v})" for k, v in report.unreachable.items()))
    if report.refused:
        print(f"{len(report.refused)} files refused (listed in {args.out}/manifest.json)", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
