"""bench.perf's options and device side: argument checks, timing (CUDA events with synchronisation on
a GPU, the wall clock on the CPU), and the variants a GPU run compares with the default path (AMP
bf16, channels-last, torch.compile), each with its time and its largest output difference."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.core.errors import BadInput
from bench.core.files import unwritable
from bench.methods.base import resolve_device

PARTS = ("learned", "training", "classical", "metrics", "scaling", "e2e")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class PerfOptions:
    device: str
    repeats: int
    skip: frozenset[str]
    out: str
    amp: str | None = None  # bf16 | fp16: autocast variants of the learned methods
    channels_last: bool = False
    compile: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (at least 1)")
    parser.add_argument("--out", default="perf.json")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    parser.add_argument(
        "--amp", choices=sorted(AMP_DTYPES), default=None, help="also time the learned methods under autocast"
    )
    parser.add_argument("--channels-last", action="store_true", help="also time them in channels-last")
    parser.add_argument("--compile", action="store_true", help="also time them through torch.compile")


def perf_options(args: argparse.Namespace) -> PerfOptions:
    """The checked options; a BadInput names the bad one."""
    if args.repeats < 1:
        raise BadInput(f"--repeats must be at least 1, got {args.repeats}")
    skip = frozenset(filter(None, (part.strip() for part in args.skip.split(","))))
    unknown = sorted(skip - set(PARTS))
    if unknown:
        raise BadInput(f"--skip {','.join(unknown)}: no such part; the parts are {','.join(PARTS)}")
    out = Path(args.out)
    if out.is_dir():
        raise BadInput(f"--out {out} is a folder; name the JSON file to write")
    blocked = unwritable(out.absolute().parent)
    if blocked is not None:
        raise BadInput(f"--out {out}: cannot write in {blocked}")
    device = resolve_device(args.device)  # MethodError (a BadInput) for a device that is not there
    return PerfOptions(device, args.repeats, skip, args.out, args.amp, args.channels_last, args.compile)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_of(function: Callable[[], object], device: torch.device) -> float:
    """One call's seconds: CUDA events recorded around it on a GPU (then synchronised), else the
    wall clock."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000
    begin = time.perf_counter()
    function()
    return time.perf_counter() - begin


def timed(function: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median seconds of `function` after `warmup` calls."""
    for _ in range(warmup):
        function()
    synchronize(device)
    return statistics.median(seconds_of(function, device) for _ in range(repeats))


@contextmanager
def autocast(device: torch.device, amp: str | None) -> Iterator[None]:
    context = torch.autocast(device.type, dtype=AMP_DTYPES[amp]) if amp else nullcontext()
    with context:
        yield


def variants(options: PerfOptions) -> list[str]:
    """The variants asked for beside the default path."""
    chosen = [f"amp_{options.amp}"] if options.amp else []
    chosen += ["channels_last"] if options.channels_last else []
    return chosen + (["compile"] if options.compile else [])


def variant_call(
    method: Any, variant: str, image: torch.Tensor, mask: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """A call of the method's network under `variant` (amp_bf16, amp_fp16, channels_last, compile),
    returning its output in image space as float32."""
    net, device = method.net, method.device
    inputs = method.network_inputs(image, mask)
    if variant == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        inputs = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
    if variant == "compile":
        net = torch.compile(net)
    amp = variant.removeprefix("amp_") if variant.startswith("amp_") else None

    def call() -> torch.Tensor:
        with torch.inference_mode(), autocast(device, amp):
            return method.to_image_space(net(*inputs)).float()

    return call


def output_difference(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Largest |output - reference|, absolute and relative to the reference's largest |value|
    (untrained networks' outputs lie far outside [0, 1], and rounding scales with them)."""
    difference = float((output - reference).abs().max())
    scale = float(reference.abs().max())
    return difference, difference / scale if scale > 0 else 0.0


def compare_variants(
    method: Any, image: torch.Tensor, mask: torch.Tensor, options: PerfOptions, repeats: int
) -> dict[str, Any]:
    """Per variant: ms per call at this batch, time relative to the default path, largest |output
    difference| from it, absolute and relative to the default's largest |output|. The first call
    of a variant (compilation) is timed on its own."""
    device = method.device
    default = variant_call(method, "default", image, mask)
    reference = default()
    scale = float(reference.abs().max())
    row: dict[str, Any] = {
        "ms_default": timed(default, device, repeats) * 1000,
        "max_abs_output_default": scale,
    }
    for variant in variants(options):
        call = variant_call(method, variant, image, mask)
        row[f"first_call_ms_{variant}"] = seconds_of(call, device) * 1000
        output = call()
        row[f"ms_{variant}"] = timed(call, device, repeats, warmup=0) * 1000
        row[f"time_vs_default_{variant}"] = row[f"ms_{variant}"] / row["ms_default"]
        difference, relative = output_difference(output, reference)
        row[f"max_abs_diff_{variant}"], row[f"relative_diff_{variant}"] = difference, relative
        if variant == "channels_last":  # Module.to changed the network itself
            method.net.to(memory_format=torch.contiguous_format)
    return row


def print_variants(name: str, row: dict[str, Any]) -> None:
    for key in row:
        if key.startswith("ms_") and key != "ms_default":
            variant = key.removeprefix("ms_")
            print(
                f"{name:>16} {variant}: {row[key]:.2f} ms ({row[f'time_vs_default_{variant}']:.2f}x the "
                f"default {row['ms_default']:.2f} ms), max |difference| "
                f"{row[f'max_abs_diff_{variant}']:.1e} ({row[f'relative_diff_{variant}']:.1e} of max "
                f"|default|), first call {row[f'first_call_ms_{variant}']:.0f} ms"
            )
