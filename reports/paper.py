"""The LBAM paper's numbers (package data: bench/paper_data/*.csv) in tidy form."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from bench.core.vocabulary import method_of

# Our method names → column names of the paper's Table 1.
PAPER_METHOD_NAMES = {"gl": "GL", "patchmatch": "PM", "ca": "CA", "pconv": "PConv", "lbam": "LBAM"}
PAPER_METRIC_NAMES = {"psnr": "psnr", "ssim": "ssim", "mean_l1": "l1"}


def _read(filename: str) -> pd.DataFrame:
    with resources.files("bench.reports").joinpath("paper_data", filename).open() as handle:
        return pd.read_csv(handle, comment="#")


def table1() -> pd.DataFrame:
    """Table 1 (Places365, 10 categories) as rows: paper_method, metric, bucket, value."""
    wide = _read("lbam_paper_table1_places.csv")
    tidy = wide.melt(id_vars=["metric", "bucket"], var_name="paper_method", value_name="value")
    tidy["metric"] = tidy["metric"].map(PAPER_METRIC_NAMES)
    return tidy


def table1_value(method: str, metric: str, bucket: str) -> float | None:
    paper_method = PAPER_METHOD_NAMES.get(method_of(method))
    if paper_method is None:
        return None
    rows = _TABLE1[
        (_TABLE1.paper_method == paper_method) & (_TABLE1.metric == metric) & (_TABLE1.bucket == bucket)
    ]
    return float(rows.value.iloc[0]) if len(rows) else None


def table2() -> pd.DataFrame:
    """Table 2 (Paris StreetView ablation) as rows: variant, bucket, psnr, ssim."""
    return _read("lbam_paper_table2_paris_ablation.csv")


_TABLE1 = table1()
