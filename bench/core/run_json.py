"""run.json read back (by a resume and by the report): the type of every field the suite reads
from it is checked once, when the file is read, so a damaged or hand-edited file is one line naming
the field, never a TypeError deep inside the code that uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput

NONE = type(None)
# field (dots; * = every value of an object or item of a list) → the JSON types it may hold. A
# field that is absent is allowed (older runs lack some); REQUIRED ones must be there.
SHAPE: dict[str, tuple[type, ...]] = {
    "config": (dict,),
    "config.methods": (list,),
    "config.methods.*": (str,),
    "config.seed": (int,),
    "config.protocol": (dict,),
    "config.protocol.name": (str,),
    "methods": (dict,),
    "methods.*": (dict,),
    "methods.*.options": (dict,),
    "methods.*.training": (dict, NONE),
    "methods.*.training.deviations": (list, NONE),
    "methods.*.training.validation": (dict, NONE),
    "methods.*.training.validation.curve": (list, NONE),
    "methods.*.training.validation.curve.*": (dict,),
    "methods.*.training.validation.telea": (dict, NONE),
    "methods.*.training.validation.telea.*": (dict,),
    "checkpoints_sha256": (dict,),
    "checkpoints_sha256.*": (str,),
    "lpips_sha256": (str, NONE),
    "training_logs": (dict,),
    "training_logs.*": (str,),
    "figures": (dict,),
    "figures.*": (dict,),
    "figures.*.figure7": (str,),
    "figures.*.figure8": (str,),
    "started": (str,),
    "status": (str,),
    "dataset": (dict,),
    "dataset.name": (str,),
    "dataset.description": (str,),
    "dataset.sha256": (str,),
    "dataset.image_ids": (list,),
    "dataset.image_ids.*": (str,),
    "mask_set": (dict,),
    "mask_set.source": (str,),
    "mask_set.sha256": (str,),
    "mask_set.mask_ids": (list,),
    "mask_set.mask_ids.*": (str,),
}
REQUIRED = ("config", "config.methods", "dataset", "dataset.name")  # for the report
RESUME_REQUIRED = (*REQUIRED, "methods", "dataset.sha256", "mask_set", "mask_set.sha256")
JSON_NAMES = {dict: "an object", list: "a list", str: "text", int: "a whole number", NONE: "null"}


class RunJsonError(BadInput):
    """A run.json that cannot be read back; the message names the file and the field."""


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return "a number"
    return JSON_NAMES.get(type(value), type(value).__name__)


def values_at(data: Any, parts: list[str], where: str = "") -> list[tuple[str, Any]]:
    """(field, value) of every value the dotted path reaches in `data` (none where a level is
    missing or of another type: that level is checked on its own)."""
    if not parts:
        return [(where, data)]
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(data, dict):
        children = [(f"{where}.{key}", value) for key, value in data.items()]
    elif head == "*" and isinstance(data, list):
        children = [(f"{where}[{i}]", value) for i, value in enumerate(data)]
    elif isinstance(data, dict) and head in data:
        children = [(f"{where}.{head}" if where else head, data[head])]
    else:
        children = []
    return [found for field, value in children for found in values_at(value, rest, field)]


def shape_problem(data: Any, required: tuple[str, ...] = REQUIRED) -> str | None:
    """The first field of `data` whose type is not what run.json holds there (None: all fit)."""
    if not isinstance(data, dict):
        return f"it holds {kind(data)}, not an object"
    for path, types in SHAPE.items():
        for field, value in values_at(data, path.split(".")):
            if isinstance(value, bool) or not isinstance(value, types):
                expected = " or ".join(JSON_NAMES[t] for t in types)
                shown = field if len(field) <= 80 else field[:79] + "…"
                return f"the field {shown!r} holds {kind(value)} where {expected} belongs"
    for field in required:
        if not values_at(data, field.split(".")):
            return f"the field {field} is missing"
    return None


def read_run_json(path: Path, required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """run.json as a dict whose fields have the types the suite reads and which holds the
    `required` ones; RunJsonError otherwise."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunJsonError(f"{path} is damaged ({error})") from None
    problem = shape_problem(data, required)
    if problem:
        raise RunJsonError(f"{path} is damaged: {problem}")
    return data
