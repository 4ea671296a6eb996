"""The catalogue of released weights: the learned methods' files as their authors publish them.

`--checkpoint gl=places2` (or `methods.create("gl", checkpoint="places2")`) names an entry; the file
is looked up in a weights folder (`--weights-dir`, default the torch hub cache folder
`$TORCH_HOME/hub/checkpoints`), or, for an entry with `shipped=True`, inside this package (its
`filename` relative to this folder, e.g. "weights/lbam_cpu.pth", which setup's package data
installs). Nothing is downloaded: a missing file gets a message with its source and the path to put
it at. Where a hash is known (md5, sha1, sha256), a file that does not match is refused.
`resolve_checkpoint` is the one rule every method's checkpoint argument goes through.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import MethodError
from bench.core.files import file_digest
from bench.core.tensors import default_weights_dir

GL_SOURCE = (
    "http://iizuka.cs.tsukuba.ac.jp/data/ (download_model.sh of satoshiiizuka/siggraph2017_inpainting)"
)
CA_SOURCE = "Google Drive folder linked from the README of JiahuiYu/generative_inpainting, tag v1.0.0"
CA_FILES = ("snap-0.index", "snap-0.data-00000-of-00001")
PACKAGE_DIR = Path(__file__).resolve().parent  # where the files of shipped entries live
SHIPPED_DIR = PACKAGE_DIR / "weights"  # weights this suite trained, shipped in the package
SHIPPED_CATALOGUE = "catalogue.json"  # their entries (written by python -m bench.weights export)
SHIPPED_LICENCE = "MIT (this repository); trained on the corpus of python -m bench.corpus fetch"


class ReleasedWeightsError(MethodError):
    """A catalogue name that is unknown, or whose file is missing or does not match its hash."""


class ReleasedWeightsMissing(ReleasedWeightsError):
    """A catalogue entry whose file (or one of its files) is not where it is looked for."""


@dataclass(frozen=True)
class ReleasedWeights:
    method: str
    name: str  # the catalogue name: --checkpoint METHOD=NAME
    filename: str  # the file (or, with `files`, the folder) in the weights folder
    source: str  # where its authors publish it
    licence: str
    description: str
    md5: str | None = None
    sha1: str | None = None
    files: tuple[str, ...] = ()  # a folder entry (TensorFlow checkpoints): the files it must hold
    sha256: str | None = None
    shipped: bool = False  # the file ships inside this package: `filename` is relative to PACKAGE_DIR


CATALOGUE: tuple[ReleasedWeights, ...] = (
    ReleasedWeights(
        "gl",
        "places2",
        "completionnet_places2.t7",
        GL_SOURCE,
        "CC BY-NC-SA 4.0",
        "GL completion network, Places2, rectangular holes (2017; Torch7, 47 MB)",
        # as published by a third-party download script of the same file
        md5="b1527543a0ee22c23fca44cefdf48531",
        sha1="4206897fd900b6a5509491900a2c6fb521bf272e",
    ),
    ReleasedWeights(
        "gl",
        "places2_freeform",
        "completionnet_places2_freeform.t7",
        GL_SOURCE,
        "CC BY-NC-SA 4.0",
        "GL completion network, Places2, free-form holes (2020; Torch7)",
    ),
    ReleasedWeights(
        "gl",
        "celeba",
        "completionnet_celeba.t7",
        GL_SOURCE,
        "CC BY-NC-SA 4.0",
        "GL completion network, CelebA (2020; Torch7)",
    ),
    ReleasedWeights(
        "lbam",
        "paris",
        "lbam_paris_streetview_G.pth",
        "Google Drive folder linked from the README of Vious/LBAM_Pytorch "
        "(https://drive.google.com/drive/folders/17DJEp0APDcZoWPIHwMFs78ak59pYlDPw)",
        "MIT (repository licence)",
        "LBAM generator, Paris StreetView (plain state dict; saved under this name)",
    ),
    ReleasedWeights(
        "lbam",
        "places2",
        "lbam_places2_G.pth",
        "Google Drive folder linked from the README of Vious/LBAM_Pytorch "
        "(https://drive.google.com/drive/folders/17DJEp0APDcZoWPIHwMFs78ak59pYlDPw)",
        "MIT (repository licence)",
        "LBAM generator, Places2 (plain state dict; saved under this name)",
    ),
    ReleasedWeights(
        "pconv",
        "community",
        "1000000.pth",
        "https://github.com/naoto0804/pytorch-inpainting-with-partial-conv/releases/tag/v0.0.0",
        "MIT (repository licence)",
        "PConv community reimplementation, Places2, 1,000,000 iterations ({'model': state_dict, …})",
    ),
    *(
        ReleasedWeights(
            "ca",
            name,
            f"release_{name}_256",
            CA_SOURCE,
            "CC BY-NC 4.0",
            f"DeepFill v1 (contextual attention), {label}, 256×256 (TensorFlow checkpoint folder)",
            files=CA_FILES,
        )
        for name, label in (
            ("places2", "Places2"),
            ("celeba", "CelebA"),
            ("celeba_hq", "CelebA-HQ"),
            ("imagenet", "ImageNet"),
        )
    ),
)


def shipped_entries(path: Path = SHIPPED_DIR / SHIPPED_CATALOGUE) -> tuple[ReleasedWeights, ...]:
    """The weights this suite trained and ships (methods/weights/catalogue.json), as entries."""
    if not path.is_file():
        return ()
    return tuple(
        ReleasedWeights(
            e["method"],
            e["name"],
            e["filename"],
            f"trained by this suite: {e['training_command']}",
            e["licence"],
            e["description"],
            sha256=e["sha256"],
            shipped=True,
        )
        for e in json.loads(path.read_text())
    )


CATALOGUE = CATALOGUE + shipped_entries()


def shipped_default(method: str) -> ReleasedWeights | None:
    """The weights `method` runs with when no checkpoint is given: the suite's CPU-scale ones."""
    return next((e for e in entries(method) if e.shipped and e.name == "cpu"), None)


def entries(method: str) -> list[ReleasedWeights]:
    return [entry for entry in CATALOGUE if entry.method == method]


def find(method: str, name: str) -> ReleasedWeights | None:
    """The entry called `name` (or whose file is called `name`) for `method`, if any."""
    return next((e for e in entries(method) if name in (e.name, e.filename)), None)


def check_hashes(entry: ReleasedWeights, path: Path) -> None:
    for algorithm, expected in (("md5", entry.md5), ("sha1", entry.sha1), ("sha256", entry.sha256)):
        if expected and (found := file_digest(path, algorithm)) != expected:
            raise ReleasedWeightsError(
                f"{entry.method}={entry.name}: {path} has {algorithm} {found}, but the released "
                f"{entry.filename} has {expected}: a different or damaged file (source: {entry.source})"
            )


def locate(entry: ReleasedWeights, weights_dir: str | Path | None = None) -> Path:
    """The entry's file (or folder) in the weights folder, checked against its known hashes."""
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if entry.shipped:
        folder = PACKAGE_DIR
    path = folder / entry.filename
    needed = [path / f for f in entry.files] if entry.files else [path]
    missing = [p for p in needed if not p.is_file()]
    if missing and entry.shipped:
        raise ReleasedWeightsMissing(
            f"{entry.method}={entry.name}: {missing[0]} ships with this package but is missing; "
            "reinstall inpaint-bench"
        )
    if missing:
        what = f"a folder holding {' + '.join(entry.files)}" if entry.files else "the file"
        raise ReleasedWeightsMissing(
            f"{entry.method}={entry.name}: {missing[0]} is missing. Download {entry.filename} "
            f"({entry.description}; licence {entry.licence}) from {entry.source} and put {what} "
            f"at {path} (or pass --weights-dir)"
        )
    if not entry.files:
        check_hashes(entry, path)
    return path


def visibly_a_path(value: str | Path) -> bool:
    """An argument written as a path: a Path, or text with a folder separator or starting with ~."""
    text = str(value)
    return isinstance(value, Path) or "/" in text or os.sep in text or text.startswith("~")


def resolve_checkpoint(method: str, value: str | Path, weights_dir: str | Path | None = None) -> Path:
    """A checkpoint argument → a path. A catalogue name of `method` wins over a file or folder of
    that name in the working directory unless the argument is visibly a path (`./places2`); any
    other argument is an existing file or folder, or the prefix of one (CA's `snap-0`). This is the
    one rule of every method's checkpoint argument (methods.create and RunConfig)."""
    if visibly_a_path(value):  # taken as written; the method's loader says if it is missing
        return Path(value).expanduser()
    entry = find(method, str(value))
    if entry is not None:
        try:
            return locate(entry, weights_dir)
        except ReleasedWeightsError as error:
            if Path(value).exists():  # say how to mean the local one
                raise ReleasedWeightsError(f"{error}; to load ./{value} instead, write ./{value}") from None
            raise
    path = Path(value).expanduser()
    if path.exists() or glob.glob(glob.escape(str(path)) + ".*"):
        return path
    names = ", ".join(e.name for e in entries(method)) or "none"
    raise ReleasedWeightsError(
        f"{method}: checkpoint {value} does not exist and is not a catalogue name "
        f"(released weights of {method}: {names})"
    )
