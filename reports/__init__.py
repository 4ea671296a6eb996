"""Aggregation and the HTML report, from stored records only (no torch, no methods)."""

if __name__ != "bench.reports":  # imported under the folder's name: every file would load twice
    raise ImportError(
        "import bench.reports, not reports: the folder reports/ is installed as bench.reports "
        "(pip install -e . in the checkout)"
    )
