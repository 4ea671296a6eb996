"""Validation of a run's settings in one place (RunConfig checks itself with these): each bad value
gets a one-line error naming the command line's flag, before anything is computed or written."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.errors import BadInput
from bench.core.files import unwritable
from bench.core.vocabulary import PROTOCOLS, method_of
from bench.evaluation.pairing import PAIRINGS
from bench.methods.registry import option_types

if TYPE_CHECKING:
    from bench.evaluation.config import RunConfig

TEST_CROPS = ("centre", "release")  # datasets/release_crop.py for the second
MIN_SIZE = 16  # the SSIM window is 11 px; free-form strokes need room to fall in every bucket


class ArgumentError(BadInput):
    """A command-line value that cannot be used; the message names the flag and the problem."""


# Options only some pairings use (their defaults): given with another pairing they would be ignored.
PAIRING_OPTIONS = {"masks_per_bucket": (("cross", "per-image"), 2), "masks_per_image": (("per-image",), 1)}


def check_pairing_options(args: argparse.Namespace) -> None:
    """Refuse a command-line option the chosen --pairing does not use (its default is None: given
    or not is known); fill the defaults of the others."""
    for name, (pairings, default) in PAIRING_OPTIONS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif args.pairing not in pairings:
            raise ArgumentError(
                f"--{name.replace('_', '-')} applies to --pairing {' and '.join(pairings)}, not "
                f"{args.pairing}: leave it out"
            )


def check_run_config(config: RunConfig) -> None:
    """The settings of one run, checked when a RunConfig is made (from Python or the command
    line): one-line errors naming the command line's flag."""
    if not config.methods:
        raise ArgumentError("--methods is empty: name at least one method, or 'all'")
    if config.size < MIN_SIZE:
        raise ArgumentError(f"--size must be at least {MIN_SIZE} pixels, got {config.size}")
    if config.seed < 0:
        raise ArgumentError(f"--seed must be 0 or more, got {config.seed}")
    for flag, value in (("--masks-per-bucket", config.masks_per_bucket), ("--batch-size", config.batch_size)):
        if value < 1:
            raise ArgumentError(f"{flag} must be at least 1, got {value}")
    if config.masks_per_image < 1:
        raise ArgumentError(f"--masks-per-image must be at least 1, got {config.masks_per_image}")
    if config.workers < 0:
        raise ArgumentError(f"--workers must be 0 (every core) or more, got {config.workers}")
    for flag, value, allowed in (
        ("--pairing", config.pairing, PAIRINGS),
        ("--test-crop", config.test_crop, TEST_CROPS),
        ("--target", config.protocol["target"], ("composite", "raw")),
        ("--color", config.protocol["color"], ("rgb", "y")),
        ("--protocol", config.protocol["name"], PROTOCOLS),
    ):
        if value not in allowed:
            raise ArgumentError(f"{flag} {value!r}: use one of {', '.join(allowed)}")
    if len(set(config.methods)) < len(config.methods):
        raise ArgumentError(f"a method name is given twice: {', '.join(config.methods)}")


def check_report(report: str | Path) -> None:
    """The report's file can be written (checked before the run starts; '' for no report)."""
    if report:
        report = Path(report)
        if report.is_dir():
            raise ArgumentError(
                f"--report {report} is a folder; name the HTML file, e.g. {report}/index.html"
            )
        blocked = unwritable(report.resolve().parent)
        if blocked is not None:
            raise ArgumentError(f"--report {report}: cannot write in {blocked} (read-only); pass --report ''")


def typed_value(flag: str, value: Any, annotation: Any) -> Any:
    """`value` as the option's annotated type (float, int, bool, str, or one of them | None)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    allowed = [a for a in typing.get_args(annotation) if a is not type(None)] if union else [annotation]
    if bool in allowed and isinstance(value, bool):
        return value
    if float in allowed and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if str in allowed and isinstance(value, str):
        return value
    if Any in allowed:
        return value
    wanted = " or ".join(
        {bool: "True/False", float: "a number", int: "a whole number", str: "text"}.get(a, str(a))
        for a in allowed
    )
    raise ArgumentError(f"--option {flag}={value!r}: expected {wanted}")


def typed_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options of method `name` (NAME or NAME@LABEL) converted to their annotated types; unknown
    keys are left for the method registry to name."""
    base = method_of(name)
    types_ = option_types(base)
    return {
        key: typed_value(f"{name}.{key}", value, types_[key]) if key in types_ else value
        for key, value in options.items()
    }
