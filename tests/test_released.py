"""The catalogue of released weights (methods/released.py) and its names on the command line."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from test_gl import DILATED, PLACES2_MEAN, hand_built_network
from torch7_writer import torch7_model, write_t7

from bench import methods
from bench.core.files import sha256_path
from bench.methods import released
from bench.methods.checkpoints import project_checkpoint


def test_catalogue_lists_every_released_file():
    found = {(entry.method, entry.name): entry for entry in released.CATALOGUE if not entry.shipped}
    shipped = {(entry.method, entry.name) for entry in released.CATALOGUE if entry.shipped}
    assert shipped == {("lbam", "cpu"), ("pconv", "cpu")}  # the suite's own (tests/test_shipped_weights.py)
    assert set(found) == {
        ("gl", "places2"),
        ("gl", "places2_freeform"),
        ("gl", "celeba"),
        ("lbam", "paris"),
        ("lbam", "places2"),
        ("pconv", "community"),
        ("ca", "places2"),
        ("ca", "celeba"),
        ("ca", "celeba_hq"),
        ("ca", "imagenet"),
    }
    assert found["gl", "places2"].md5 == "b1527543a0ee22c23fca44cefdf48531"  # as published with the file
    assert [found["ca", n].filename for n in ("places2", "celeba", "celeba_hq", "imagenet")] == [
        "release_places2_256",
        "release_celeba_256",
        "release_celeba_hq_256",
        "release_imagenet_256",
    ]
    assert all(
        e.files == ("snap-0.index", "snap-0.data-00000-of-00001") for e in found.values() if e.method == "ca"
    )
    assert all(e.source and e.licence and e.description for e in found.values())


def test_a_catalogue_name_loads_from_the_torch_hub_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    reference = hand_built_network()
    data = {"model": torch7_model(reference, DILATED), "mean": PLACES2_MEAN}
    write_t7(folder / "completionnet_places2_freeform.t7", data)
    method = methods.create("gl", checkpoint="places2_freeform")
    assert torch.equal(method.net[0].weight, reference[0].weight)


def test_a_missing_released_file_names_its_source_and_path(tmp_path):
    with pytest.raises(released.ReleasedWeightsError) as error:
        released.resolve_checkpoint("gl", "places2", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "completionnet_places2.t7") in message
    assert "iizuka.cs.tsukuba.ac.jp" in message and "CC BY-NC-SA 4.0" in message


def test_a_file_that_does_not_match_the_known_hash_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "completionnet_places2.t7"
    path.write_bytes(b"not the released file")
    with pytest.raises(released.ReleasedWeightsError, match="b1527543a0ee22c23fca44cefdf48531"):
        released.resolve_checkpoint("gl", "places2", tmp_path)
    entry = released.find("gl", "places2")
    matching = dataclasses.replace(entry, md5=hashlib.md5(path.read_bytes()).hexdigest(), sha1=None)
    monkeypatch.setattr(released, "CATALOGUE", (matching,))
    assert released.resolve_checkpoint("gl", "places2", tmp_path) == path


def test_a_tensorflow_folder_entry_needs_both_files(tmp_path):
    folder = tmp_path / "release_places2_256"
    folder.mkdir()
    (folder / "snap-0.index").write_bytes(b"")
    with pytest.raises(released.ReleasedWeightsError, match="snap-0.data-00000-of-00001 is missing"):
        released.resolve_checkpoint("ca", "places2", tmp_path)
    (folder / "snap-0.data-00000-of-00001").write_bytes(b"")
    assert released.resolve_checkpoint("ca", "release_places2_256", tmp_path) == folder
    assert sha256_path(folder) != sha256_path(folder / "snap-0.index")


def test_an_unknown_catalogue_name_lists_the_known_ones():
    with pytest.raises(
        methods.MethodError, match="released weights of gl: places2, places2_freeform, celeba"
    ):
        methods.create("gl", checkpoint="imagenet")


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [("gl=places2", "completionnet_places2.t7 is missing. Download"), ("gl=nope", "released weights of gl")],
)
def test_the_cli_explains_a_missing_or_unknown_release(tmp_path, capsys, checkpoint, message):
    from bench.run import main

    arguments = ["--methods", "gl", "--checkpoint", checkpoint, "--weights-dir", str(tmp_path)]
    assert main([*arguments, "--out", str(tmp_path / "run"), "--report", ""]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def shipped_entry(method: str, path, **fields) -> released.ReleasedWeights:
    return released.ReleasedWeights(
        method, "cpu", f"weights/{path.name}", "this package", "MIT", "CPU-trained", shipped=True, **fields
    )


@pytest.mark.parametrize("name", ["lbam", "pconv"])
def test_an_entry_shipped_inside_the_package_loads_by_name_and_is_hash_checked(name, tmp_path, monkeypatch):
    torch.manual_seed(0)
    source = methods.create(name, width=0.0625)
    file = tmp_path / "weights" / f"{name}_cpu.pth"
    file.parent.mkdir()
    options = {"variant": source.config.variant, "width": 0.0625}  # a project checkpoint carries them
    torch.save(project_checkpoint(name, options, source.net.state_dict()), file)
    monkeypatch.setattr(released, "PACKAGE_DIR", tmp_path)  # stands for bench/methods/ (methods/ here)
    entry = shipped_entry(name, file, sha256=sha256_path(file))
    others = tuple(e for e in released.CATALOGUE if not e.shipped)  # the package's own left out
    monkeypatch.setattr(released, "CATALOGUE", (*others, entry))
    monkeypatch.chdir(tmp_path)  # where a folder called "cpu" may not shadow the name
    (tmp_path / "cpu").mkdir()
    loaded = methods.create(name, checkpoint="cpu")  # the options come with the checkpoint
    assert loaded.trained
    expected = source.net.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in loaded.net.state_dict().items())
    damaged = dataclasses.replace(entry, sha256="0" * 64)
    monkeypatch.setattr(released, "CATALOGUE", (*others, damaged))
    with pytest.raises(methods.MethodError, match="sha256"):
        methods.create(name, checkpoint="cpu")


@pytest.mark.parametrize(
    ("argument", "where"),
    [
        ("paris", "catalogue"),  # a catalogue name wins over a file of that name here
        ("./paris", "here"),
        ("~/paris", "home"),
        ("mine.pth", "here"),  # no such entry: a file here
        ("lbam_paris_streetview_G.pth", "catalogue"),  # a released file's name, absent here
    ],
)
def test_one_rule_tells_a_catalogue_name_from_a_path(argument, where, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paris").write_bytes(b"")
    (tmp_path / "mine.pth").write_bytes(b"")
    expected = {
        "catalogue": tmp_path / "w" / released.find("lbam", argument).filename
        if released.find("lbam", argument)
        else None,
        "here": tmp_path / argument.removeprefix("./"),
        "home": Path("~/paris").expanduser(),
    }[where]
    if where == "catalogue":
        expected.parent.mkdir()
        expected.write_bytes(b"")
    resolved = released.resolve_checkpoint("lbam", argument, tmp_path / "w")
    assert resolved.absolute() == Path(expected).absolute()


@pytest.mark.parametrize(
    ("name", "entry"), [("gl", "celeba"), ("lbam", "places2"), ("pconv", "community"), ("ca", "imagenet")]
)
def test_every_learned_method_takes_a_catalogue_name_through_one_resolver(name, entry, tmp_path, monkeypatch):
    from bench.methods import registry

    located = tmp_path / released.find(name, entry).filename
    for needed in [located / f for f in released.find(name, entry).files] or [located]:
        needed.parent.mkdir(parents=True, exist_ok=True)
        needed.write_bytes(b"")
    given = []

    def factory(device: str = "cpu", checkpoint=None, width: float = 1.0):
        given.append(checkpoint)

    monkeypatch.setitem(registry._FACTORIES, name, factory)  # what the method's loader would get
    methods.create(name, checkpoint=entry, weights_dir=tmp_path)
    methods.create(name, checkpoint=str(located))  # a path as given
    methods.create(name, checkpoint=located)
    assert given == [located, located, located]
