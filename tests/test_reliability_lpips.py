"""LPIPS weights are identified by their SHA-256 (issue 20, bug 6): recorded in run.json, part of
the resume identity check, checked against the hash prefix of their file name; weights that are
not torchvision's ImageNet file are never reported as LPIPS v0.1. Bad files give one line."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from bench.core.errors import BadInput
from bench.evaluation import metrics, session
from bench.evaluation.config import RunError
from bench.methods.checkpoints import load_file, refusal_reason


@pytest.fixture(scope="module")
def random_alexnet(tmp_path_factory) -> Path:
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "alexnet-random.pth"
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


def test_a_random_alexnet_is_recorded_by_hash_and_not_called_lpips_v01(random_alexnet, capsys):
    model, note, digest = session.load_lpips_or_note(str(random_alexnet))
    assert model is not None and digest == metrics.sha256_path(random_alexnet)
    assert "not torchvision's ImageNet file" in note and "v0.1" not in note
    assert "not comparable" in capsys.readouterr().err


def test_a_file_whose_name_carries_another_hash_is_refused(random_alexnet, tmp_path):
    named = tmp_path / metrics.ALEXNET_FILE  # the random weights under torchvision's name
    named.symlink_to(random_alexnet)
    with pytest.raises(BadInput, match="do not match the hash in its name"):
        metrics.load_lpips(named)


@pytest.mark.parametrize(
    ("then", "now", "refused"),
    [("a" * 64, "a" * 64, False), ("a" * 64, "b" * 64, True), ("a" * 64, None, True), (None, "b" * 64, True)],
)
def test_resume_with_other_lpips_weights_is_refused(then, now, refused, tmp_path):
    previous = {"lpips_sha256": then}
    if refused:
        with pytest.raises(RunError, match="other AlexNet weights"):
            session.check_lpips_identity(previous, now, tmp_path)
    else:
        session.check_lpips_identity(previous, now, tmp_path)
    session.check_lpips_identity({}, now, tmp_path)  # run folders from before the check


def hostile_weights(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that are no AlexNet weights, each with the words of its refusal."""
    (folder / "a-folder.pth").mkdir()
    (folder / "text.pth").write_text("hello world, not weights")
    (folder / "noise.pth").write_bytes(os.urandom(300))
    (folder / "legacy.pth").write_bytes(pickle.dumps({"features.0.weight": 1}, protocol=4))
    torch.save({"features.0.weight": torch.zeros(2)}, folder / "keys.pth")
    torch.save(torch.zeros(3), folder / "tensor.pth")
    return {
        "folder": (folder / "a-folder.pth", "is a folder, not a weights file"),
        "text": (folder / "text.pth", "not a readable PyTorch checkpoint"),
        "noise": (folder / "noise.pth", "PyTorch checkpoint"),  # either refusal, with its reason
        "legacy": (folder / "legacy.pth", "refused by torch.load(weights_only=True)"),
        "keys": (folder / "keys.pth", "not torchvision's AlexNet weights"),
        "tensor": (folder / "tensor.pth", "not an AlexNet state dict"),
    }


def test_every_unusable_lpips_file_is_one_bounded_line_with_its_reason(tmp_path):
    for path, words in hostile_weights(tmp_path).values():
        with pytest.raises(BadInput) as refusal:
            metrics.load_lpips(path)
        message = str(refusal.value)
        assert words in message and "\n" not in message and len(message) < 600, message
        assert "Please file an issue" not in message


def test_the_unpicklers_detail_is_kept_not_torchs_advice(tmp_path):
    path = tmp_path / "p.pt"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(BadInput, match="Unsupported operand"):
        load_file(path)
    torch_text = (
        "Weights only load failed.\nPlease file an issue: WeightsUnpickler error: \n\nUnsupported operand 1\n"
    )
    assert refusal_reason(torch_text) == "Unsupported operand 1"
