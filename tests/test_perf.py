"""bench.perf's pieces that decide its figures: FLOP counts and the fast-vs-eager comparison."""

from __future__ import annotations

import pytest
import torch
from test_lbam import TINY

from bench import methods, perf


def test_flops_are_counted_through_the_modules_for_either_kernel_choice():
    torch.manual_seed(0)
    method = methods.create("lbam", width=TINY)
    image, mask = perf.sample_batch(1, torch.device("cpu"))
    with torch.inference_mode():
        fast = perf.flops_of(lambda: method.predict(image, mask), method)
        assert method.net.inference_kernels == "fast"
        method.net.inference_kernels = "eager"
        eager = perf.flops_of(lambda: method.predict(image, mask))
    c = method.config.channels()
    first_layer = 2 * 128 * 128 * c[0] * 4 * 16  # ec1's image conv alone: 4 channels in, 4×4 kernel
    assert fast == eager > 3 * first_layer


def test_versus_eager_times_both_paths_on_the_same_weights():
    torch.manual_seed(0)
    row = perf.versus_eager(methods.create("lbam", width=TINY), torch.device("cpu"), repeats=2)
    for kind in ("fast", "compiled"):
        # float32 rounding of the same operations in another order: ≈ 1e-7 of the output's scale
        assert row[f"relative_diff_vs_eager_{kind}"] <= 1e-5
        assert row[f"ms_batch1_{kind}"] > 0
        assert row[f"time_vs_eager_{kind}"] == pytest.approx(
            row[f"ms_batch1_{kind}"] / row["ms_batch1_eager"]
        )
    assert row["first_call_ms_compiled"] > 0
