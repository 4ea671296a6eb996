"""GL behind the method interface: the released Torch7 layout, the inference contract of the
official inpaint.lua, its post-processing option and the refusals of other files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from reference import reordering_tolerance
from torch import nn
from torch7_writer import TorchObject, torch7_model, write_t7

from bench import methods
from bench.core.files import sha256_path
from bench.methods import gl, released

# Python indices of the modules that the released completionnet_places2.t7 stores as
# nn.SpatialDilatedConvolution although their dilation is 1 (a public converter's listing)
DILATED_AT_ONE = {12, 15, 30, 33}
DILATED = DILATED_AT_ONE | {18, 21, 24, 27}
PLACES2_MEAN = [0.4560, 0.4472, 0.4155]  # as printed by third-party ports of the places2 file
REAL_FILE = released.default_weights_dir() / "completionnet_places2.t7"


def hand_built_network(seed: int = 0) -> nn.Sequential:
    """The completion network written out layer by layer (a public converter's printout of
    completionnet_places2.t7), with random weights and batch-norm statistics."""

    def block(layer: nn.Module, channels: int) -> list[nn.Module]:
        return [layer, nn.BatchNorm2d(channels), nn.ReLU()]

    layers = [
        *block(nn.Conv2d(4, 64, 5, 1, 2), 64),
        *block(nn.Conv2d(64, 128, 3, 2, 1), 128),
        *block(nn.Conv2d(128, 128, 3, 1, 1), 128),
        *block(nn.Conv2d(128, 256, 3, 2, 1), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 1), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 1), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 2, 2), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 4, 4), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 8, 8), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 16, 16), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 1), 256),
        *block(nn.Conv2d(256, 256, 3, 1, 1), 256),
        *block(nn.ConvTranspose2d(256, 128, 4, 2, 1), 128),
        *block(nn.Conv2d(128, 128, 3, 1, 1), 128),
        *block(nn.ConvTranspose2d(128, 64, 4, 2, 1), 64),
        *block(nn.Conv2d(64, 32, 3, 1, 1), 32),
        nn.Conv2d(32, 3, 3, 1, 1),
        nn.Sigmoid(),
    ]
    net = nn.Sequential(*layers).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net:
            if isinstance(module, nn.BatchNorm2d):
                for tensor in (module.weight, module.bias, module.running_mean):
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                for tensor in (module.weight, module.bias):
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.05)
    return net


@pytest.fixture(scope="module")
def reference() -> nn.Sequential:
    return hand_built_network()


@pytest.fixture(scope="module")
def official_file(tmp_path_factory, reference) -> Path:
    data = {"model": torch7_model(reference, DILATED), "mean": PLACES2_MEAN}
    return write_t7(tmp_path_factory.mktemp("gl") / "completionnet_places2.t7", data)


def photo_and_mask(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, size, size, generator=generator)
    mask = torch.ones(2, 1, size, size)
    mask[0, :, 4:14, 6:20] = 0
    mask[1, :, 16:28, 2:9] = 0
    mask[1, :, 3:7, 22:30] = 0
    return image, mask


def official_input(image: torch.Tensor, mask: torch.Tensor, mean: list[float]) -> torch.Tensor:
    """inpaint.lua, written out: I − mean per channel, hole pixels set to 0, cat(I, M) with M = 1 in holes."""
    hole = 1 - mask
    centred = image - torch.tensor(mean).view(1, 3, 1, 1)
    centred = centred.masked_fill(hole.bool().expand_as(image), 0)
    return torch.cat((centred, hole), 1)


def test_official_layout_converts_key_by_key(official_file, reference):
    method = methods.create("gl", checkpoint=official_file)
    ours = method.net.state_dict()
    assert ours.keys() == reference.state_dict().keys()
    for key, value in reference.state_dict().items():
        assert torch.equal(ours[key], value), key
    assert method.trained and method.options()["checkpoint_kind"] == "official-torch7"
    assert method.options()["mean"] == PLACES2_MEAN
    assert [m.dilation[0] for m in method.net if isinstance(m, nn.Conv2d)] == [
        1, 1, 1, 1, 1, 1, 2, 4, 8, 16, 1, 1, 1, 1, 1
    ]  # fmt: skip


def test_outputs_equal_the_hand_built_model_with_the_same_tensors(official_file, reference):
    image, mask = photo_and_mask()
    method = methods.create("gl", checkpoint=official_file)
    with torch.inference_mode():
        expected = reference(official_input(image, mask, PLACES2_MEAN))
        raw = method.predict(image, mask)
        filled = method.inpaint(image, mask)
    tolerance = reordering_tolerance(method.net, expected)  # same tensors, maybe other kernels
    torch.testing.assert_close(raw, expected, rtol=0, atol=tolerance)
    assert float((raw - 0.5).abs().max()) > 0.05  # the weights matter, not a constant output
    hole = (mask == 0).expand_as(image)
    assert torch.equal(filled[~hole], image[~hole])
    torch.testing.assert_close(filled[hole], expected[hole], rtol=0, atol=tolerance)


def test_preprocessing_of_a_hand_computed_case():
    method = methods.create("gl", width=0.0625)
    method.mean = torch.tensor([0.25, 0.5, 0.75]).view(1, 3, 1, 1)
    image = torch.full((1, 3, 4, 4), 0.5)
    image[0, :, 3, 3] = torch.tensor([1.0, 0.0, 0.25])
    mask = torch.ones(1, 1, 4, 4)
    mask[0, 0, 0, 0] = 0
    (inputs,) = method.network_inputs(image, mask)
    assert inputs.shape == (1, 4, 4, 4)
    assert inputs[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0, 1.0]  # a hole: zeros, mask channel 1
    assert inputs[0, :, 1, 1].tolist() == [0.25, 0.0, -0.25, 0.0]
    assert inputs[0, :, 3, 3].tolist() == [0.75, -0.5, -0.5, 0.0]


def test_sizes_not_divisible_by_4_are_refused():
    image, mask = torch.rand(1, 3, 30, 32), torch.ones(1, 1, 30, 32)
    with pytest.raises(ValueError, match="divisible by 4"):
        methods.create("gl", width=0.0625).predict(image, mask)


@pytest.mark.parametrize(
    ("dtype", "old_std", "dilated"), [(np.float64, True, DILATED), (np.float32, False, set())]
)
def test_double_tensors_old_batch_norm_and_plain_convolutions_load_alike(
    tmp_path, reference, dtype, old_std, dilated
):
    """Files of older nn keep running_std = 1/sqrt(var + eps), may hold doubles, and a plain
    SpatialConvolution where the released file has a dilated one at dilation 1."""
    if not dilated:
        dilated = DILATED - DILATED_AT_ONE
    path = write_t7(
        tmp_path / "old.t7", {"model": torch7_model(reference, dilated, old_std, dtype), "mean": PLACES2_MEAN}
    )
    image, mask = photo_and_mask(16)
    with torch.inference_mode():
        expected = reference(official_input(image, mask, PLACES2_MEAN))
        method = methods.create("gl", checkpoint=path)
        out = method.predict(image, mask)
    torch.testing.assert_close(out, expected, rtol=0, atol=reordering_tolerance(method.net, expected))


def broken(reference: nn.Sequential, change: str) -> object:
    model = torch7_model(reference, DILATED)
    modules = model.fields["modules"]
    if change == "dilation":
        modules[18].fields["dilationW"] = 3
    elif change == "module count":
        del modules[-1]
    elif change == "activation":
        modules[49] = TorchObject("nn.Tanh", {})
    elif change == "weight shape":
        modules[3].fields["weight"] = modules[3].fields["weight"][:, :2]
    elif change == "no mean":
        return {"model": model}
    elif change == "graph":
        model.typename = "nn.gModule"
    elif change == "wide mean":
        return {"model": model, "mean": [0.5, 0.5]}
    elif change == "text mean":
        return {"model": model, "mean": ["r", "g", "b"]}
    elif change == "zero std":
        model = torch7_model(reference, DILATED, old_std=True)
        model.fields["modules"][4].fields["running_std"][5] = 0
    elif change == "no module list":
        model.fields = {"modules": 3}
    return {"model": model, "mean": PLACES2_MEAN}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("dilation", r"module 19 of data\.model: nn\.SpatialDilatedConvolution .*dilationW 3 \(expected 2\)"),
        ("module count", "has 49 modules, GL's completion network 50"),
        ("activation", r"module 50 of data\.model: nn\.Tanh, expected nn\.Sigmoid"),
        (
            "weight shape",
            r"module 4 of data\.model: `weight` has shape \(128, 2, 3, 3\), expected \(128, 64, 3, 3\)",
        ),
        ("no mean", "`model` and `mean`"),
        ("graph", "nn.gModule, expected a flat nn.Sequential"),
        ("wide mean", "3 finite numbers"),
        ("text mean", "3 finite numbers"),
        ("zero std", r"module 5 of data\.model: the running variance is negative or not finite"),
        ("no module list", "data.model has no list of modules"),
    ],
)
def test_another_layout_is_refused_with_the_reason(tmp_path, reference, change, message):
    path = write_t7(tmp_path / "other.t7", broken(reference, change))
    with pytest.raises(methods.MethodError, match=message):
        methods.create("gl", checkpoint=path)


def test_unreadable_and_truncated_files_are_refused(tmp_path, official_file):
    pth = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(2)}, pth)
    with pytest.raises(methods.MethodError, match="not a readable Torch7 file"):
        methods.create("gl", checkpoint=pth)
    truncated = tmp_path / "truncated.t7"
    truncated.write_bytes(official_file.read_bytes()[:3_000_000])
    with pytest.raises(methods.MethodError, match="truncated|not a readable Torch7 file"):
        methods.create("gl", checkpoint=truncated)


def test_a_tensor_past_its_storage_is_refused(tmp_path):
    """torchfile builds tensors with as_strided; a forged size must not read outside the file's data."""
    path = write_t7(tmp_path / "forged.t7", {"model": np.zeros((4, 4), np.float32), "mean": PLACES2_MEAN})
    data = bytearray(path.read_bytes())
    size_at = data.index(b"torch.FloatTensor") + len(b"torch.FloatTensor") + 4
    data[size_at : size_at + 8] = (1000).to_bytes(8, "little")  # first dimension 4 → 1000
    path.write_bytes(bytes(data))
    with pytest.raises(methods.MethodError, match="past the end of its storage"):
        methods.create("gl", checkpoint=path)


def lua_centre(hole: np.ndarray) -> tuple[int, int]:
    """inpaint.lua's loops, 1-based: x over rows, y over columns; p = {⌊miny+(maxy−miny)/2⌋−1, ⌊minx+…⌋−1}."""
    minx, maxx, miny, maxy = 1e5, 1, 1e5, 1
    for y in range(1, hole.shape[1] + 1):
        for x in range(1, hole.shape[0] + 1):
            if hole[x - 1, y - 1] == 1:
                minx, maxx, miny, maxy = min(minx, x), max(maxx, x), min(miny, y), max(maxy, y)
    return int(np.floor(miny + (maxy - miny) / 2) - 1), int(np.floor(minx + (maxx - minx) / 2) - 1)


def test_poisson_postprocessing_follows_inpaint_lua(monkeypatch, official_file):
    image, mask = photo_and_mask()
    method = methods.create("gl", checkpoint=official_file, postprocess="poisson")
    calls = []
    real_clone = cv2.seamlessClone

    def clone(*args):  # OpenCV writes into the mask it is given: keep copies of the arguments
        calls.append([a.copy() if isinstance(a, np.ndarray) else a for a in args])
        return real_clone(*args)

    monkeypatch.setattr(gl.cv2, "seamlessClone", clone)
    with torch.inference_mode():
        plain = methods.create("gl", checkpoint=official_file).inpaint(image, mask)
        blended = method.inpaint(image, mask)
    assert method.options()["postprocess"] == "poisson" and len(calls) == 2
    for index, (source, destination, hole, centre, flags) in enumerate(calls):
        hole_map = (mask[index, 0] == 0).numpy()
        assert centre == lua_centre(hole_map.astype(np.uint8)) and flags == cv2.NORMAL_CLONE
        assert set(np.unique(hole)) == {0, 255} and np.array_equal(hole == 255, hole_map)
        # utils.lua tensor2cvimg: BGR order, ×255 truncated
        expected_source = (plain[index].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:, :, ::-1]
        assert np.array_equal(source, expected_source)
        telea = cv2.inpaint(source, hole, 1, cv2.INPAINT_TELEA)
        assert np.array_equal(destination, telea)
        result = real_clone(source, telea, hole, centre, flags)[:, :, ::-1]  # back to RGB
        expected = torch.from_numpy(result.copy()).permute(2, 0, 1) / 255
        in_hole = torch.from_numpy(hole_map).expand(3, -1, -1)
        assert torch.equal(blended[index][in_hole], expected[in_hole])
    known = (mask == 1).expand_as(image)
    assert torch.equal(blended[known], image[known])
    assert float((blended - plain).abs().max()) > 0.05


def test_poisson_postprocessing_keeps_a_flat_fill_flat():
    """A constant photo whose holes the network filled with that constant stays constant."""
    colour = torch.tensor([51, 128, 204]).view(3, 1, 1) / 255  # distinct channels: a swap shows
    filled = colour.expand(3, 32, 32).clone()
    hole = torch.zeros(32, 32, dtype=torch.bool)
    hole[8:20, 10:25] = True
    out = gl.poisson_postprocess(filled, hole)
    # OpenCV's Poisson solver lands within a few levels on a flat field
    torch.testing.assert_close(out, colour.expand_as(out), rtol=0, atol=3.5 / 255)


def test_unknown_postprocessing_is_refused():
    with pytest.raises(methods.MethodError, match="postprocess must be one of"):
        methods.create("gl", postprocess="telea")


@pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"needs the released {REAL_FILE} (see docs/gl.md)")
def test_the_released_places2_file_loads_and_fills_a_photo():
    from test_methods import photo_and_mask as chelsea

    method = methods.create("gl", checkpoint="places2")
    assert method.options()["mean"] == pytest.approx(PLACES2_MEAN, abs=1e-3)
    image, mask = chelsea()
    out = method.inpaint(image, mask)
    hole = mask.expand_as(image) == 0
    assert float((out - image)[hole].abs().mean()) < 0.15


def tiny_release(folder: Path, name: str = "completionnet_places2_freeform.t7") -> Path:
    torch.manual_seed(0)
    net = gl.completion_network(width=0.0625)
    folder.mkdir(parents=True, exist_ok=True)
    return write_t7(folder / name, {"model": torch7_model(net, DILATED), "mean": PLACES2_MEAN})


@pytest.mark.slow
def test_the_cli_fills_the_gl_column_of_the_table1_mirror_with_both_postprocessings(tmp_path):
    import pandas as pd

    from bench.core.files import read_json, safe_name
    from bench.run import main

    weights = tiny_release(tmp_path / "weights")
    arguments = ["--methods", "gl,gl@poisson", "--weights-dir", str(weights.parent)]
    for name in ("gl", "gl@poisson"):
        arguments += ["--checkpoint", f"{name}=places2_freeform", "--option", f"{name}.width=0.0625"]
    arguments += ["--option", "gl@poisson.postprocess=poisson"]
    tiny = ["--size", "64", "--masks-per-bucket", "1", "--no-progress"]
    out, report = tmp_path / "run", tmp_path / "index.html"
    assert main([*tiny, *arguments, "--out", str(out), "--report", str(report)]) == 0
    html = report.read_text()
    table = html[html.index('id="table1-table"') : html.index("</table>", html.index('id="table1-table"'))]
    assert table.count("paper: GL") == 2 and table.count("paper 23.36") == 2 and "paper 0.828" in table
    provenance = read_json(out / "run.json")
    options = {name: provenance["methods"][name]["options"] for name in ("gl", "gl@poisson")}
    assert (options["gl"]["postprocess"], options["gl@poisson"]["postprocess"]) == ("none", "poisson")
    assert options["gl"]["checkpoint_kind"] == "official-torch7"
    assert provenance["checkpoints_sha256"]["gl"] == sha256_path(weights)
    latency = pd.read_csv(out / "latency.csv")
    assert set(latency.method) == {"gl", "gl@poisson"} and (latency.ms > 0).all()
    for name in ("gl", "gl@poisson"):  # the qualitative grid's tiles
        assert len(list((out / "samples").rglob(f"{safe_name(name)}.png"))) == 8  # 2 per bucket


def test_the_paper_columns_of_gl_and_ca():
    from bench.reports import paper

    assert paper.table1_value("gl", "psnr", "(0.1, 0.2]") == 23.36
    assert paper.table1_value("gl@poisson", "l1", "(0.4, 0.5]") == 7.92
    assert paper.table1_value("ca", "ssim", "(0.2, 0.3]") == 0.769
