"""The suite's own regression numbers (tests/regression.py; update: python tests/regression.py)."""

from __future__ import annotations

import json

import pytest
import torch
from regression import RUN, STORED, measure

FLOAT32_EPS = torch.finfo(torch.float32).eps


@pytest.mark.slow
def test_the_demo_digests_and_the_classical_means_are_the_stored_ones():
    stored = json.loads(STORED.read_text())
    assert stored["run"] == RUN, "tests/data/regression.json is of another run: python tests/regression.py"
    found = measure()
    assert found["test_set_sha256"] == stored["test_set_sha256"]  # the demo crops and their ids
    assert found["mask_set_sha256"] == stored["mask_set_sha256"]  # the seeded free-form masks
    # The fills are uint8 and exact; a metric is a float32 sum over size² pixels, whose order may
    # change with the CPU's vector width: relative error ≤ 8·eps·√(size²) (Higham §3.1), far below
    # any change of what is measured.
    relative = 8 * FLOAT32_EPS * RUN["size"]
    assert found["means"].keys() == stored["means"].keys()
    for method, metrics in stored["means"].items():
        for metric, buckets in metrics.items():
            assert found["means"][method][metric] == pytest.approx(buckets, rel=relative), (method, metric)
