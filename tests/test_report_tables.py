"""The report's numbers, pinned on hand-made score frames: two methods, a higher-is-better metric
(PSNR) and a lower-is-better one (ℓ1), two buckets, every mean and paper value computed by hand.

Paper values are those of the LBAM paper's Table 1 (Places365), columns PM and PConv."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.reports.aggregate import bucket_means, summary_table
from bench.reports.tables import table1_rows

LOW, HIGH = "(0.1, 0.2]", "(0.4, 0.5]"
# per method, metric, bucket: the per-image values (means by hand below)
VALUES = {
    ("pconv", "psnr", LOW): [30.0, 26.0, 28.0],  # mean 28.00
    ("patchmatch", "psnr", LOW): [27.0, 25.0, 29.0],  # mean 27.00
    ("pconv", "psnr", HIGH): [20.0, 21.0],  # mean 20.50
    ("patchmatch", "psnr", HIGH): [22.0, 21.0],  # mean 21.50
    ("pconv", "l1", LOW): [1.0, 2.0, 3.0],  # mean 2.00
    ("patchmatch", "l1", LOW): [3.0, 3.5, 2.5],  # mean 3.00
    ("pconv", "l1", HIGH): [4.0, 5.0],  # mean 4.50
    ("patchmatch", "l1", HIGH): [6.0, 5.0],  # mean 5.50
}


def score_frame() -> pd.DataFrame:
    rows = []
    for (method, metric, bucket), values in VALUES.items():
        for i, value in enumerate(values):
            rows.append(
                {
                    "method": method,
                    "image_id": f"img{i}",
                    "mask_id": f"mask-{bucket}",
                    "bucket": bucket,
                    "metric": metric,
                    "value": value,
                }
            )
    return pd.DataFrame(rows)


def table1_cells() -> dict[tuple[str, str, str], object]:
    means = bucket_means(score_frame(), intervals=True)
    methods = ["pconv", "patchmatch"]
    cells = {}
    for row in table1_rows(means, methods):
        for method, cell in zip(methods, row["cells"], strict=True):
            cells[(row["metric"], row["bucket"], method)] = cell
    return cells


@pytest.mark.parametrize(
    ("metric", "bucket", "method", "ours", "paper", "delta", "n"),
    [
        ("PSNR (dB)", LOW, "pconv", "28.00", "28.32", "-0.32", 3),
        ("PSNR (dB)", LOW, "patchmatch", "27.00", "26.67", "+0.33", 3),
        ("PSNR (dB)", HIGH, "pconv", "20.50", "21.38", "-0.88", 2),
        ("PSNR (dB)", HIGH, "patchmatch", "21.50", "20.02", "+1.48", 2),
        ("mean ℓ1 (%)", LOW, "pconv", "2.00", "1.09", "+0.91", 3),
        ("mean ℓ1 (%)", LOW, "patchmatch", "3.00", "1.43", "+1.57", 3),
        ("mean ℓ1 (%)", HIGH, "pconv", "4.50", "3.85", "+0.65", 2),
        ("mean ℓ1 (%)", HIGH, "patchmatch", "5.50", "5.22", "+0.28", 2),
    ],
)
def test_table1_cell_shows_the_mean_the_paper_value_of_its_column_and_bucket(
    metric, bucket, method, ours, paper, delta, n
):
    cell = table1_cells()[(metric, bucket, method)]
    assert (cell.ours, cell.paper, cell.delta, cell.n) == (ours, paper, delta, n)


def test_table1_interval_brackets_the_mean_and_is_not_shown_as_it():
    cell = table1_cells()[("PSNR (dB)", LOW, "pconv")]
    low, high = (float(v) for v in cell.interval.strip("[]").split(", "))
    assert low < 28.0 < high  # values 26, 28, 30: the bootstrap interval is wider than a point
    assert cell.ours not in (f"{low:.2f}", f"{high:.2f}")


@pytest.mark.parametrize(
    ("metric", "bucket", "best"),
    [
        ("PSNR (dB)", LOW, "pconv"),  # higher is better: 28.00 > 27.00
        ("PSNR (dB)", HIGH, "patchmatch"),  # 21.50 > 20.50
        ("mean ℓ1 (%)", LOW, "pconv"),  # lower is better: 2.00 < 3.00
        ("mean ℓ1 (%)", HIGH, "pconv"),  # 4.50 < 5.50
    ],
)
def test_table1_best_follows_each_metrics_direction(metric, bucket, best):
    cells = table1_cells()
    flags = {m: cells[(metric, bucket, m)].best for m in ("pconv", "patchmatch")}
    assert flags == {m: m == best for m in flags}


def test_table1_buckets_without_scores_show_no_number():
    cell = table1_cells()[("PSNR (dB)", "(0.2, 0.3]", "pconv")]
    assert (cell.ours, cell.n, cell.delta) == ("–", 0, "")
    assert cell.paper == "25.25"  # the paper's value is still shown beside


def test_summary_table_prints_the_hand_computed_means(tmp_path):
    score_frame().assign(dataset="demo", hole_ratio=0.15).to_csv(tmp_path / "scores.csv", index=False)
    text = summary_table(tmp_path)
    lines = {line.split("]")[0] + "]": line.split("]")[1].split() for line in text.splitlines()[1:]}
    header = text.splitlines()[0].split()
    assert header[-2:] == ["patchmatch", "pconv"]
    assert lines[f"PSNR (dB) {LOW}"] == ["27.000", "28.000"]
    assert lines[f"PSNR (dB) {HIGH}"] == ["21.500", "20.500"]
    assert lines[f"mean ℓ1 (%) {LOW}"] == ["3.000", "2.000"]
    assert lines[f"mean ℓ1 (%) {HIGH}"] == ["5.500", "4.500"]
