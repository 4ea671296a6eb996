"""`python -m bench.perf`: speed figures on the current device, printed and written to JSON.

Medians over repeats after warm-up (CUDA synchronised). Ratios make the figures comparable from
machine to machine: achieved GFLOP/s of a network over the machine's matrix-product rate, metric
throughput over scikit-image's on the same pairs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import methods
from bench.core.errors import EXIT_BAD_INPUT, BadInput, error_line
from bench.core.process import prepare_process
from bench.core.records import package_versions
from bench.evaluation import metrics, perf_scale
from bench.perf_device import (
    PerfOptions,
    add_arguments,
    compare_variants,
    output_difference,
    perf_options,
    print_variants,
    synchronize,
    timed,
    variants,
)
from bench.perf_training import training_part


def reference_rates(device: torch.device, repeats: int) -> dict[str, float]:
    n = 2048
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    seconds = timed(lambda: a @ b, device, repeats)
    big = torch.rand(64 * 1024 * 1024 // 4, device=device)  # 64 MiB
    copy_seconds = timed(lambda: big.clone(), device, repeats)
    return {"matmul_gflops": 2 * n**3 / seconds / 1e9, "copy_gbs": 2 * big.numel() * 4 / copy_seconds / 1e9}


def flops_of(function: Callable[[], object], method: Any = None) -> int:
    """FLOPs by torch's counter. It sees aten convolutions, not oneDNN's prepacked calls, so a learned
    method is counted through its modules as written (the same arithmetic)."""
    net = getattr(method, "net", None)
    kernels = getattr(net, "inference_kernels", None)
    counter = FlopCounterMode(display=False)
    try:
        if kernels is not None:
            net.inference_kernels = "eager"
        with counter:
            function()
    finally:
        if kernels is not None:
            net.inference_kernels = kernels
    return int(counter.get_total_flops())


def learned(
    name: str,
    options: dict[str, Any],
    device: torch.device,
    reference_gflops: float,
    repeats: int,
    batches: tuple[int, ...],
) -> dict[str, Any]:
    method = methods.create(name, device=str(device), **options)
    row: dict[str, Any] = {"method": name, **options}
    with torch.inference_mode():
        for batch in (1, *batches):
            image, mask = sample_batch(batch, device)
            if batch == 1:
                start = time.perf_counter()
                method.predict(image, mask)  # first call: weight packing, allocations
                synchronize(device)
                row["first_call_ms"] = (time.perf_counter() - start) * 1000
            seconds = timed(lambda image=image, mask=mask: method.predict(image, mask), device, repeats)
            if batch == 1:
                flops = flops_of(lambda image=image, mask=mask: method.predict(image, mask), method)
                row.update(
                    ms_batch1=seconds * 1000,
                    gflop=flops / 1e9,
                    fraction_of_matmul=flops / seconds / 1e9 / reference_gflops,
                )
            else:
                row[f"images_per_s_batch{batch}"] = batch / seconds
    if name in KERNEL_KINDS and device.type == "cpu":
        row.update(versus_eager(method, device, repeats))
        for kind in KERNEL_KINDS[name]:
            row[f"fraction_of_matmul_{kind}"] = (
                flops / (row[f"ms_batch1_{kind}"] / 1000) / 1e9 / reference_gflops
            )
    return row


def sample_batch(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch)
    image = torch.rand(batch, 3, 256, 256, generator=generator).to(device)
    mask = torch.ones(batch, 1, 256, 256, device=device)
    mask[..., 64:160, 80:200] = 0
    return image, mask


KERNEL_KINDS = {"lbam": ("eager", "fast", "compiled"), "pconv": ("eager", "fast")}


def versus_eager(fast: Any, device: torch.device, repeats: int) -> dict[str, Any]:
    """The same weights through the modules as written (kernels=eager), the default fast kernels and
    (LBAM) kernels=compiled, timed in turn at batch 1; the compiled first call (compilation) and the
    largest differences of the raw (unclamped) outputs from eager's, also relative to eager's
    largest |output| (random weights give outputs far outside [0, 1])."""
    image, mask = sample_batch(1, device)
    kernels = {"fast": fast}
    for kind in KERNEL_KINDS[fast.name]:
        if kind != "fast":
            kernels[kind] = methods.create(fast.name, device=str(device), kernels=kind, **asdict(fast.config))
            kernels[kind].net.load_state_dict(fast.net.state_dict())
    row: dict[str, Any] = {}
    samples: dict[str, list[float]] = {kind: [] for kind in kernels}
    with torch.inference_mode():
        if "compiled" in kernels:
            start = time.perf_counter()
            kernels["compiled"].predict(image, mask)
            synchronize(device)
            row["first_call_ms_compiled"] = (time.perf_counter() - start) * 1000
        outputs = {kind: method.raw_output(image, mask) for kind, method in kernels.items()}
        for _ in range(repeats):
            for kind, method in kernels.items():
                samples[kind].append(timed(lambda m=method: m.predict(image, mask), device, 1, warmup=0))
    eager_seconds = statistics.median(samples["eager"])
    row["max_abs_output_eager"] = float(outputs["eager"].abs().max())
    for kind in kernels:
        seconds = statistics.median(samples[kind])
        row[f"ms_batch1_{kind}"] = seconds * 1000
        if kind != "eager":
            row[f"time_vs_eager_{kind}"] = seconds / eager_seconds
            difference, relative = output_difference(outputs[kind], outputs["eager"])
            row[f"max_abs_diff_vs_eager_{kind}"], row[f"relative_diff_vs_eager_{kind}"] = difference, relative
    return row


def classical(device: torch.device, repeats: int) -> list[dict[str, Any]]:
    from bench.datasets.demo import load_demo
    from bench.datasets.masks import bucketed_mask_set

    image = torch.from_numpy(load_demo(256, ["chelsea"]).images[0]).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(bucketed_mask_set("free_form", 1, 0, 256).masks[2])[None, None]
    rows = []
    for name in ("telea", "ns", "patchmatch"):
        method = methods.create(name)
        rows.append(
            {
                "method": name,
                "ms_per_image": timed(lambda m=method: m.predict(image, mask), device, repeats) * 1000,
            }
        )
    return rows


def metric_speed(device: torch.device, repeats: int, count: int = 32) -> dict[str, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    truth = rng.random((count, 256, 256, 3), dtype=np.float32)
    other = np.clip(truth + rng.normal(0, 0.05, truth.shape), 0, 1).astype(np.float32)
    t_truth = torch.from_numpy(truth).permute(0, 3, 1, 2).contiguous().to(device)
    t_other = torch.from_numpy(other).permute(0, 3, 1, 2).contiguous().to(device)

    def ours() -> None:
        (
            metrics.psnr(t_other, t_truth),
            metrics.ssim(t_other, t_truth),
            metrics.mean_l1_percent(t_other, t_truth),
        )

    def scikit() -> None:
        for x, y in zip(truth, other, strict=True):
            peak_signal_noise_ratio(x, y, data_range=1.0)
            structural_similarity(
                x,
                y,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
                channel_axis=2,
            )
            np.abs(x - y).mean()

    ours(), scikit()  # warm-up
    rounds = []  # in turn, so that a slow spell of the machine hits both sides of a ratio
    for _ in range(repeats):
        ours_seconds = timed(ours, device, 1, warmup=0)
        rounds.append((ours_seconds, timed(scikit, torch.device("cpu"), 1, warmup=0)))
    return {
        "ours_images_per_s": count / statistics.median(r[0] for r in rounds),
        "skimage_images_per_s": count / statistics.median(r[1] for r in rounds),
        "speedup": statistics.median(r[1] / r[0] for r in rounds),
    }


def end_to_end() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.run",
                "--no-progress",
                "--out",
                f"{folder}/run",
                "--report",
                f"{folder}/index.html",
            ],
            check=True,
            capture_output=True,
        )
        return {"demo_bench_run_seconds": time.perf_counter() - start}


LEARNED_ROWS = (
    ("lbam", {"variant": "official"}),
    ("lbam", {"variant": "paper"}),
    ("pconv", {"variant": "paper"}),
    ("ca", {}),
)


def print_learned(row: dict[str, Any]) -> None:
    print(
        f"{row['method']:>6} {row.get('variant', ''):>8}: {row['ms_batch1']:7.1f} ms/img (batch 1), "
        f"{row['images_per_s_batch8']:5.1f} img/s (8), "
        f"{row['images_per_s_batch16']:5.1f} img/s (16), "
        f"{row['gflop']:.1f} GFLOP, {row['fraction_of_matmul']:.0%} of matmul rate, "
        f"first call {row['first_call_ms']:.0f} ms"
    )
    if "time_vs_eager_fast" not in row:
        return
    print(
        f"{'':>16} in turn, batch 1: eager {row['ms_batch1_eager']:.1f} ms "
        f"({row['fraction_of_matmul_eager']:.0%} of matmul)"
    )
    for kind in KERNEL_KINDS[row["method"]][1:]:
        print(
            f"{'':>16} {kind:>8}: {row[f'ms_batch1_{kind}']:.1f} ms "
            f"({row[f'fraction_of_matmul_{kind}']:.0%}), {row[f'time_vs_eager_{kind}']:.2f}x "
            f"the eager time, max |{kind} - eager| {row[f'max_abs_diff_vs_eager_{kind}']:.1e} "
            f"({row[f'relative_diff_vs_eager_{kind}']:.1e} of max |eager|)"
        )
    if "first_call_ms_compiled" in row:
        print(f"{'':>16} compiled first call (compiles): {row['first_call_ms_compiled'] / 1000:.1f} s")


def learned_part(device: torch.device, matmul_gflops: float, options: PerfOptions) -> dict[str, Any]:
    batches = (8, 16) if device.type == "cpu" else (8, 16, 64)
    rows = [learned(name, kw, device, matmul_gflops, options.repeats, batches) for name, kw in LEARNED_ROWS]
    for row in rows:
        print_learned(row)
        if device.type == "cuda":
            print(f"{'':>16} batch 64: {row['images_per_s_batch64']:.0f} img/s")
    if variants(options):
        for (name, kw), row in zip(LEARNED_ROWS, rows, strict=True):
            method = methods.create(name, device=str(device), **kw)
            image, mask = sample_batch(1, device)
            row["variants_batch1"] = compare_variants(method, image, mask, options, options.repeats)
            print_variants(f"{name} {kw.get('variant', '')}", row["variants_batch1"])
    ms = {(row["method"], row.get("variant")): row["ms_batch1"] for row in rows}
    ratio = ms[("ca", None)] / ms[("lbam", "official")]
    print(f"CA / LBAM (official) time at batch 1: {ratio:.2f} (the LBAM paper: LBAM about 5x faster)")
    return {"learned": rows, "ca_over_lbam_batch1": ratio}


def classical_part(device: torch.device, repeats: int) -> dict[str, Any]:
    rows = classical(device, repeats)
    for row in rows:
        print(f"{row['method']:>10}: {row['ms_per_image']:7.1f} ms/img")
    return {"classical": rows}


def metrics_part(device: torch.device, repeats: int) -> dict[str, Any]:
    m = metric_speed(device, repeats)
    print(
        f"metrics PSNR+SSIM+l1: {m['ours_images_per_s']:.0f} img/s vs scikit-image "
        f"{m['skimage_images_per_s']:.0f} img/s ({m['speedup']:.2f}x)"
    )
    return {"metrics": m}


def scaling_part() -> dict[str, Any]:
    scaling = perf_scale.scaling()
    perf_scale.print_scaling(scaling)
    return {"scaling": scaling}


def end_to_end_part() -> dict[str, Any]:
    figures = end_to_end()
    print(f"demo python -m bench.run: {figures['demo_bench_run_seconds']:.0f} s")
    return {"end_to_end": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    add_arguments(parser)
    try:
        options = perf_options(parser.parse_args(argv))
        results = measure(torch.device(options.device), options.skip, options.repeats, options)
        Path(options.out).parent.mkdir(parents=True, exist_ok=True)
        Path(options.out).write_text(json.dumps(results, indent=2) + "\n")
    except BadInput as error:
        print(error_line(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: cannot write {options.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"written: {options.out}")
    return 0


def measure(
    device: torch.device, skip: frozenset[str], repeats: int, options: PerfOptions | None = None
) -> dict[str, Any]:
    options = options or PerfOptions(str(device), repeats, skip, "")
    results: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "process": prepare_process(),
        "versions": package_versions(),
        "options": {"amp": options.amp, "channels_last": options.channels_last, "compile": options.compile},
    }
    reference = results["reference"] = reference_rates(device, repeats)
    print(
        f"reference: {reference['matmul_gflops']:.1f} GFLOP/s matmul, "
        f"{reference['copy_gbs']:.1f} GB/s copy ({device}, {results['threads']} threads)"
    )
    print(f"allocator: {results['process']['allocator']}; denormals: {results['process']['denormals']}")
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "learned": lambda: learned_part(device, reference["matmul_gflops"], options),
        "training": lambda: training_part(device, reference["matmul_gflops"], repeats, options.channels_last),
        "classical": lambda: classical_part(device, repeats),
        "metrics": lambda: metrics_part(device, repeats),
        "scaling": scaling_part,
        "e2e": end_to_end_part,
    }
    for name, part in parts.items():
        if name not in skip:
            results.update(part())
    return results


if __name__ == "__main__":
    sys.exit(main())
