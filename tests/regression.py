"""Our own regression numbers (pyiqa's practice): the demo's test-set and mask-set digests and the
per-bucket means of telea and ns on one fixed small run, stored in tests/data/regression.json and
checked by tests/test_regression.py. A change of any of them is a change of what the suite
measures; update the file only on purpose, with the one-line command

    python tests/regression.py

and say why in the commit."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from pathlib import Path

STORED = Path(__file__).resolve().parent / "data" / "regression.json"
RUN = {"methods": "telea,ns", "size": 64, "masks_per_bucket": 1, "seed": 0, "device": "cpu"}
METRICS = ("psnr", "ssim", "l1")  # LPIPS needs AlexNet weights that may be absent: left out


def measure() -> dict:
    """The numbers of the fixed run: digests from run.json, per-image means from summary.csv."""
    import bench

    with tempfile.TemporaryDirectory() as folder:
        run = bench.evaluate(bench.RunConfig(**RUN), Path(folder) / "run", report="", progress=False)
        provenance = json.loads((run / "run.json").read_text())
        with open(run / "summary.csv", newline="") as file:
            rows = list(csv.DictReader(file))
    rows = [r for r in rows if r["protocol"] == "per-image" and r["metric"] in METRICS]
    means: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        means.setdefault(row["method"], {}).setdefault(row["metric"], {})[row["bucket"]] = float(row["value"])
    return {
        "run": RUN,
        "test_set_sha256": provenance["dataset"]["sha256"],
        "mask_set_sha256": provenance["mask_set"]["sha256"],
        "means": means,
    }


if __name__ == "__main__":
    STORED.write_text(json.dumps(measure(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {STORED}", file=sys.stderr)
