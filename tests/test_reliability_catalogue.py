"""A catalogue name is not shadowed by a same-named file or folder in the working directory unless
the argument is visibly a path, and a TensorFlow checkpoint is hashed over the files it loads
(issue 20, bug 9 and the CA hash)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.methods import released
from bench.methods.checkpoints import checkpoint_sha256
from bench.methods.tf_bundle import write_bundle


@pytest.mark.parametrize("entry", released.CATALOGUE, ids=lambda e: f"{e.method}={e.name}")
def test_a_local_folder_named_like_a_catalogue_entry_never_shadows_it(entry, tmp_path, monkeypatch):
    weights, work = tmp_path / "weights", tmp_path / "work"
    weights.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    if entry.shipped:  # inside the package: the bare name is the shipped file, never ./NAME
        (work / entry.name).mkdir()
        assert released.resolve_checkpoint(entry.method, entry.name, weights) == released.locate(entry)
        assert (
            released.resolve_checkpoint(entry.method, f"./{entry.name}", weights).resolve()
            == work / entry.name
        )
        return
    for name in (entry.name, entry.filename):
        local = work / name
        local.mkdir(exist_ok=True)
        with pytest.raises(released.ReleasedWeightsError, match=rf"is missing.*write \./{name}"):
            released.resolve_checkpoint(entry.method, name, weights)
        assert released.resolve_checkpoint(entry.method, f"./{name}", weights).resolve() == local
    if entry.files:  # the released folder in the weights folder: the catalogue's wins
        for file in entry.files:
            (weights / entry.filename).mkdir(exist_ok=True)
            (weights / entry.filename / file).write_bytes(b"")
        assert released.resolve_checkpoint(entry.method, entry.name, weights) == weights / entry.filename


def test_a_tensorflow_checkpoint_is_hashed_over_the_files_it_loads(tmp_path):
    folder = tmp_path / "release_places2_256"
    folder.mkdir()
    index = write_bundle(folder / "snap-0", {"a": np.arange(4, dtype=np.float32)})
    ways = [folder, folder / "snap-0", index]
    digests = {checkpoint_sha256(way) for way in ways}
    assert len(digests) == 1  # the folder, the prefix and the index load the same files
    (folder / "README.md").write_text("notes")
    (folder / "unrelated.bin").write_bytes(bytes(1000))
    assert {checkpoint_sha256(way) for way in ways} == digests
    data = folder / "snap-0.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1] + b"\x01")
    assert checkpoint_sha256(folder) not in digests
