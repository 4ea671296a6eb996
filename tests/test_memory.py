"""peak_mb beside latency: the measured growth of a known allocation; old record files upgraded."""

from __future__ import annotations

import math
import mmap

import numpy as np
import pandas as pd
import pytest
import torch

from bench.core.records import LATENCY_COLUMNS, CsvAppender, completed_items
from bench.core.vocabulary import METRICS
from bench.evaluation.memory import PeakMemory
from bench.reports.aggregate import latency_stats


def test_cpu_peak_is_the_resident_growth_of_the_call():
    memory = PeakMemory(torch.device("cpu"))
    page = b"x" * 2**20
    memory.start()
    block = mmap.mmap(-1, 64 * 2**20)  # 64 MiB of fresh pages (malloc may reuse resident heap)
    for offset in range(0, len(block), len(page)):
        block[offset : offset + len(page)] = page
    block.close()
    grown = memory.stop()
    if math.isnan(grown):
        pytest.skip("no /proc/self/clear_refs here")
    assert 60 <= grown <= 70  # freed before stop(), still counted: it is a peak
    memory.start()
    small = np.ones(1024, np.uint8)
    assert memory.stop() < 4 and small.sum() == 1024


def test_records_made_before_peak_mb_are_upgraded_and_resumed(tmp_path):
    old = pd.DataFrame([("telea", "a", "m", 2.0, "cpu")], columns=LATENCY_COLUMNS[:5])
    old.to_csv(tmp_path / "latency.csv", index=False)
    scores = [("telea", "demo", "a", "m", "(0.1, 0.2]", 0.15, m, 1.0) for m in METRICS]
    columns = ["method", "dataset", "image_id", "mask_id", "bucket", "hole_ratio", "metric", "value"]
    pd.DataFrame(scores, columns=columns).to_csv(tmp_path / "scores.csv", index=False)
    row = {"method": "telea", "image_id": "b", "mask_id": "m", "ms": 3.0, "device": "cpu", "peak_mb": 1.5}
    with CsvAppender(tmp_path / "latency.csv", LATENCY_COLUMNS) as appender:
        appender.append([row])
    latency = pd.read_csv(tmp_path / "latency.csv")
    assert tuple(latency.columns) == LATENCY_COLUMNS
    assert latency.peak_mb.isna().tolist() == [True, False]
    assert completed_items(tmp_path) == {("telea", "a", "m")}
    assert latency_stats(latency).set_index("method").loc["telea", "peak_mb"] == 1.5
