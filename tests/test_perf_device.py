"""bench.perf's options and device side on the CPU: refused arguments (one line, exit code 2), the
device-agnostic timing, the variant comparison (AMP, channels-last) and PConv's fast-vs-eager row."""

from __future__ import annotations

import argparse

import pytest
import torch

from bench import methods, perf
from bench.perf_device import PerfOptions, add_arguments, compare_variants, perf_options, timed, variants


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--skip", "learned,gpu"], "--skip gpu: no such part"),
        (["--device", "foo"], "--device 'foo'"),
    ],
)
def test_bad_arguments_are_one_error_line_and_exit_code_2(argv, message, capsys, tmp_path):
    assert perf.main([*argv, "--out", str(tmp_path / "perf.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "perf.json").exists()


def test_options_are_parsed_into_the_variants():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = perf_options(parser.parse_args(["--device", "cpu", "--skip", "e2e, scaling", "--amp", "bf16"]))
    assert options.skip == {"e2e", "scaling"} and options.device == "cpu"
    assert variants(options) == ["amp_bf16"]
    both = perf_options(parser.parse_args(["--channels-last", "--compile", "--device", "cpu"]))
    assert variants(both) == ["channels_last", "compile"]


def test_timing_is_the_median_after_the_warmup_calls():
    calls = []
    seconds = timed(lambda: calls.append(1), torch.device("cpu"), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 1


def test_variants_report_time_and_output_difference_and_restore_the_network():
    torch.manual_seed(0)
    method = methods.create("pconv", width=0.125)
    image, mask = perf.sample_batch(1, torch.device("cpu"))
    image, mask = image[..., :128, :128], mask[..., :128, :128]
    options = PerfOptions("cpu", 1, frozenset(), "", amp="bf16", channels_last=True)
    row = compare_variants(method, image, mask, options, repeats=1)
    with torch.inference_mode():
        scale = float(method.raw_output(image, mask).abs().max())  # untrained: O(10-100)
    # bf16 keeps 8 significant bits (relative 2^-9 per rounding): through 14 layers a few % of the
    # output's scale, never 0 (it ran) and not 5 %
    assert 0 < row["max_abs_diff_amp_bf16"] <= 0.05 * scale
    assert row["max_abs_diff_channels_last"] <= 1e-5 * scale
    assert row["max_abs_output_default"] == pytest.approx(scale, rel=1e-6)
    for variant in ("amp_bf16", "channels_last"):
        assert (
            row[f"relative_diff_{variant}"] == row[f"max_abs_diff_{variant}"] / row["max_abs_output_default"]
        )
    assert row["time_vs_default_channels_last"] == pytest.approx(row["ms_channels_last"] / row["ms_default"])
    assert all(p.is_contiguous() for p in method.net.parameters())


def test_pconv_fast_versus_eager_on_the_same_weights():
    torch.manual_seed(0)
    method = methods.create("pconv", width=0.125)
    row = perf.versus_eager(method, torch.device("cpu"), repeats=1)
    with torch.inference_mode():  # untrained outputs reach O(10-100): float32 sums in another order
        scale = float(method.raw_output(*perf.sample_batch(1, torch.device("cpu"))).abs().max())
    assert 0 <= row["max_abs_diff_vs_eager_fast"] <= 1e-5 * max(1.0, scale)
    assert row["time_vs_eager_fast"] == pytest.approx(row["ms_batch1_fast"] / row["ms_batch1_eager"])
    assert "first_call_ms_compiled" not in row


def test_training_step_counts_flops_of_forward_and_backward():
    """One step's FLOPs cover forward and backward: at least twice the forward's (the weight
    gradients alone cost what the forward does; the input gradients add about as much again)."""
    from torch.utils.flop_counter import FlopCounterMode

    from bench.perf_training import training_step

    options = {"profile": "mini", "size": 128, "width": 0.125, "batch_size": 2, "perceptual": "none"}
    row = training_step("pconv", "tiny", options, torch.device("cpu"), repeats=1)
    assert (row["batch"], row["size"], row["width"]) == (2, 128, 0.125)
    net = methods.create("pconv", width=0.125).net.train()
    counter = FlopCounterMode(display=False)
    with counter:
        net(torch.rand(2, 3, 128, 128), torch.ones(2, 3, 128, 128))
    assert row["gflop_per_step"] * 1e9 >= 2 * counter.get_total_flops()
    assert row["images_per_s"] == pytest.approx(2 / row["seconds_per_step"])


def test_the_sub_pixel_step_is_timed_and_runs_fewer_flops():
    """bench.perf times PConv's step again with --subpixel-decoder: stored in the row, and the
    FLOPs it runs are fewer than the modules' (the upsampled part's 36 products per pixel and
    channel pair become 16), though not below half (the encoder and skip parts are unchanged)."""
    from bench.perf_training import other_step, training_step

    options = {"profile": "mini", "size": 128, "width": 0.125, "batch_size": 2, "perceptual": "none"}
    row = training_step("pconv", "tiny", options, torch.device("cpu"), repeats=1)
    seconds, gflop = other_step(row, "subpixel_decoder", options, torch.device("cpu"), repeats=1)
    assert row["subpixel_decoder_seconds_per_step"] == seconds > 0
    assert 0.5 * row["gflop_per_step"] < gflop < 0.9 * row["gflop_per_step"]


@pytest.mark.parametrize("method", ["lbam", "pconv"])
def test_the_cpu_profile_step_starts_from_the_shipped_weights(method, tmp_path):
    """A trained LBAM underflows where an initial one does not, so bench.perf times the cpu
    profile's step on the shipped CPU-scale weights: every tensor is theirs."""
    from bench.methods import released
    from bench.methods.checkpoints import load_file
    from bench.perf_training import SIZES, load_shipped
    from bench.training.config import TrainConfig
    from bench.training.trainer import Trainer

    options = dict(SIZES)["cpu"]
    trainer = Trainer(TrainConfig(**options, method=method, out=str(tmp_path), steps=1))
    assert load_shipped(trainer.generator, method) == f"shipped {method}=cpu"
    shipped = load_file(released.locate(released.shipped_default(method)))["generator"]
    loaded = trainer.generator.state_dict()
    assert loaded.keys() == shipped.keys()
    assert all(torch.equal(loaded[k], shipped[k].to(loaded[k].dtype)) for k in shipped)
