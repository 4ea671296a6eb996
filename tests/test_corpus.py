"""The CPU-scale corpus (bench.datasets.corpus, python -m bench.corpus) on small fake sources: a
local package file (a wheel-like zip and, where dpkg-deb exists, a real .deb) and a folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import corpus as corpus_cli
from bench.datasets import corpus
from bench.datasets.demo import DEMO_PHOTOS


def photo(seed: int, size: tuple[int, int] = (320, 288)) -> np.ndarray:
    """A smooth random colour image (distinct per seed, so no two count as one photo)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (6, 6, 3)).astype(np.float32)
    big = np.asarray(Image.fromarray(small.astype(np.uint8)).resize(size, Image.BICUBIC))
    return big


def png_bytes(rgb: np.ndarray, path: Path) -> bytes:
    Image.fromarray(rgb).save(path)
    return path.read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source(name, kind, package, split, files, licence="MIT") -> corpus.Source:
    return corpus.Source(name, kind, str(package), "1.0", licence, split, files)


@pytest.fixture
def fake_sources(tmp_path: Path) -> list[corpus.Source]:
    """train: a zip with two photos (one with its own licence); val: a folder with one photo."""
    staging = tmp_path / "staging"
    staging.mkdir()
    first, second = png_bytes(photo(1), staging / "a.png"), png_bytes(photo(2), staging / "b.png")
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/images/a.png", first)
        archive.writestr("pkg/images/sub/b.png", second)
        archive.writestr("pkg/__init__.py", "raise SystemExit('never run')")
    folder = tmp_path / "folder"
    (folder / "photos").mkdir(parents=True)
    third = png_bytes(photo(3), folder / "photos" / "c.png")
    train_files = {
        "pkg/images/a.png": {"sha256": sha(first)},
        "pkg/images/sub/b.png": {"sha256": sha(second), "licence": "CC0-1.0"},
    }
    return [
        source("zipped", "file", wheel, "train", train_files),
        source("local", "folder", folder, "val", {"photos/c.png": {"sha256": sha(third)}}, "GPL-2+"),
    ]


def test_fetch_lays_out_splits_and_manifest(tmp_path: Path, fake_sources) -> None:
    out = tmp_path / "corpus"
    report = corpus.fetch(out, tmp_path / "cache", fake_sources, progress=lambda _: None)
    assert not report.refused and not report.unreachable
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 2, "val": 1, "test": 0}
    by_path = {entry["path"]: entry for entry in manifest["files"]}
    assert by_path["pkg/images/sub/b.png"]["licence"] == "CC0-1.0"  # the file's own licence
    assert by_path["pkg/images/a.png"]["licence"] == "MIT"  # else the source's
    assert by_path["photos/c.png"]["licence"] == "GPL-2+"
    for entry in manifest["files"]:
        stored = out / entry["file"]
        assert stored.is_file() and sha(stored.read_bytes()) == entry["sha256"]  # byte for byte
        assert entry["file"].startswith(entry["split"] + "/")
        assert entry["size"] == "320x288" and entry["bytes"] == stored.stat().st_size
    assert manifest["digest"] == corpus.corpus_digest(manifest["files"])
    stored_names = sorted(p.name for p in (out / "train").rglob("*.png"))
    assert stored_names == ["pkg__images__a.png", "pkg__images__sub__b.png"]
    assert not list(out.rglob("*.py"))  # only the pinned photos leave the package


def test_a_changed_file_is_refused_and_the_rest_kept(tmp_path: Path, fake_sources) -> None:
    zipped, local = fake_sources
    files = dict(zipped.files)
    files["pkg/images/a.png"] = {"sha256": "0" * 64}
    changed = corpus.Source(**{**zipped.__dict__, "files": files})
    report = corpus.fetch(tmp_path / "c", tmp_path / "cache", [changed, local], progress=lambda _: None)
    assert [name for name, _ in report.refused] == ["zipped:pkg/images/a.png"]
    assert "changed: sha256" in report.refused[0][1]
    assert not (tmp_path / "c" / "train" / "zipped" / "pkg__images__a.png").exists()
    assert len(report.kept) == 2


def test_unreachable_source_is_reported_and_the_others_fetched(tmp_path: Path, fake_sources) -> None:
    gone = source("gone", "file", tmp_path / "missing.whl", "train", {"x.png": {"sha256": "0" * 64}})
    lines: list[str] = []
    report = corpus.fetch(tmp_path / "c", tmp_path / "cache", [*fake_sources, gone], progress=lines.append)
    assert list(report.unreachable) == ["gone"] and "does not exist" in report.unreachable["gone"]
    assert any(line.startswith("unreachable: gone") for line in lines)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["unreachable"] == report.unreachable and manifest["counts"]["train"] == 2


def test_demo_photos_and_cross_split_duplicates_are_refused(tmp_path: Path, fake_sources) -> None:
    zipped, local = fake_sources
    folder = Path(local.package)
    astronaut = np.asarray(DEMO_PHOTOS["astronaut"]())  # a demo test photo, re-encoded and resized
    Image.fromarray(astronaut).resize((400, 400)).save(folder / "photos" / "astro.jpg", quality=85)
    # the val source also ships a rescaled copy of a training photo
    Image.fromarray(photo(1)).resize((640, 576)).save(folder / "photos" / "again.png")
    files = {
        **local.files,
        "photos/astro.jpg": {"sha256": sha((folder / "photos" / "astro.jpg").read_bytes())},
        "photos/again.png": {"sha256": sha((folder / "photos" / "again.png").read_bytes())},
    }
    local = corpus.Source(**{**local.__dict__, "files": files})
    report = corpus.fetch(tmp_path / "c", tmp_path / "cache", [local, zipped], progress=lambda _: None)
    refused = dict(report.refused)
    assert refused["local:photos/astro.jpg"] == "the demo test photo astronaut"
    duplicate = "the same photo as zipped/pkg__images__a.png in train"
    assert refused["local:photos/again.png"].startswith(duplicate)
    assert len(report.kept) == 3


def test_every_demo_photo_is_recognised_and_distinct_photos_are_not() -> None:
    prints = corpus.demo_fingerprints()
    for name, load in DEMO_PHOTOS.items():
        data = np.asarray(load()).astype(np.float32)
        data = data / (65535.0 if data.max() > 255 else 255.0)
        rgb = np.repeat(data[..., None], 3, 2) if data.ndim == 2 else data[..., :3]
        assert corpus.same_photo(corpus.fingerprint(rgb[::2, ::2]), prints) == name
    for seed in range(20):
        assert corpus.same_photo(corpus.fingerprint(photo(100 + seed) / 255.0), prints) is None


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb absent")
def test_reads_pinned_files_from_a_real_deb_without_installing_it(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-wallpapers\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    )
    (root / "DEBIAN" / "postinst").write_text("#!/bin/sh\ntouch /tmp/never\n")
    (root / "DEBIAN" / "postinst").chmod(0o755)
    (root / "usr" / "share" / "backgrounds").mkdir(parents=True)
    data = png_bytes(photo(7), root / "usr" / "share" / "backgrounds" / "lake.png")
    deb = tmp_path / "fake-wallpapers_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True
    )
    wanted = {"usr/share/backgrounds/lake.png": {"sha256": sha(data)}}
    report = corpus.fetch(
        tmp_path / "c",
        tmp_path / "cache",
        [source("deb", "file", deb, "test", wanted)],
        progress=lambda _: None,
    )
    assert [e["file"] for e in report.kept] == ["test/deb/backgrounds__lake.png"]


def test_cli_exit_codes(tmp_path: Path, fake_sources, capsys) -> None:
    listing = tmp_path / "sources.json"
    entries = [dict(s.__dict__) for s in fake_sources]
    listing.write_text(json.dumps({"sources": entries}))
    assert corpus_cli.main(["fetch", "--out", str(tmp_path / "ok"), "--sources", str(listing)]) == 0
    assert "2 train, 1 val, 0 test" in capsys.readouterr().out
    entries[0]["files"]["pkg/images/a.png"]["sha256"] = "1" * 64
    listing.write_text(json.dumps({"sources": entries}))
    assert corpus_cli.main(["fetch", "--out", str(tmp_path / "bad"), "--sources", str(listing)]) == 2
    listing.write_text("{not json")
    assert corpus_cli.main(["fetch", "--out", str(tmp_path / "x"), "--sources", str(listing)]) == 2
    assert "unreadable" in capsys.readouterr().err


def test_the_shipped_source_list_splits_whole_sources() -> None:
    sources = corpus.load_sources()
    splits = {s.split for s in sources}
    assert splits == {"train", "val", "test"}
    packages = {split: {s.package for s in sources if s.split == split} for split in splits}
    assert not packages["train"] & (packages["val"] | packages["test"])  # no package in two splits
    for entry in sources:
        assert entry.kind in ("pypi", "deb") and entry.licence and entry.version
        for spec in entry.files.values():
            assert len(spec["sha256"]) == 64 and int(spec["sha256"], 16) >= 0
