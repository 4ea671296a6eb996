"""`python -m bench.weights`: the weights catalogue (methods/released.py).

python -m bench.weights list                              # every entry, and whether its file is here
python -m bench.weights export runs/train/lbam-cpu --name cpu   # ship a finished training (fp16)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.core.errors import EXIT_BAD_INPUT, BadInput, error_line
from bench.methods import released


def list_entries(weights_dir: str | None) -> None:
    for entry in released.CATALOGUE:
        try:
            where = f"present: {released.locate(entry, weights_dir)}"
        except released.ReleasedWeightsMissing:
            where = "missing"
        except released.ReleasedWeightsError as error:
            where = f"refused: {error}"
        kind = "shipped" if entry.shipped else "released"
        print(f"{entry.method}={entry.name}  [{kind}] {entry.description}\n    {where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["list", "export"])
    parser.add_argument("run", nargs="?", help="export: a training folder holding checkpoint.pt")
    parser.add_argument("--name", default="cpu", help="export: the catalogue name (default: %(default)s)")
    parser.add_argument("--out", default=str(released.SHIPPED_DIR), help="export: weights folder")
    parser.add_argument("--commit", default=None, help="export: the commit it trained at, if unrecorded")
    parser.add_argument(
        "--trained-on", default=None, help="export: the hardware it trained on, if unrecorded (e.g. 'cpu')"
    )
    parser.add_argument("--weights-dir", default=None, help="list: where released weights are looked for")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            list_entries(args.weights_dir)
            return 0
        if not args.run:
            raise BadInput("export needs the training folder, e.g. runs/train/lbam-cpu")
        from bench.training.export import export_weights

        entry = export_weights(Path(args.run), args.name, Path(args.out), args.commit, args.trained_on)
    except BadInput as error:
        print(error_line(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"{entry['method']}={entry['name']}: {entry['filename']} ({entry['bytes'] / 2**20:.1f} MiB, "
        f"sha256 {entry['sha256'][:16]}…)\n    {entry['training_command']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
