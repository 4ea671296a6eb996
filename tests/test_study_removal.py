"""Object removal (LBAM Fig. 6): polygon masks, their bounding boxes, alignment through the test
crop, the command on the shipped demo objects, and refused mask files."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bench.core.vocabulary import CPU_SCALE_LABEL
from bench.datasets import images
from bench.study.__main__ import main as study_main
from bench.study.removal import cropped_mask, default_masks, object_mask, read_object_masks

TRIANGLE = [(10.0, 5.0), (50.0, 20.0), (20.0, 60.0)]


def test_contour_and_bounding_box_masks():
    contour = object_mask([TRIANGLE], 80, 70, "contour")
    box = object_mask([TRIANGLE], 80, 70, "bbox")
    rows, columns = np.nonzero(box == 0)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (5, 60, 10, 50)
    assert (box[5:61, 10:51] == 0).all() and (box == 0).sum() == 56 * 41  # exactly the rectangle
    assert ((contour == 0) <= (box == 0)).all()  # the contour lies inside its box
    # the triangle's area (shoelace: 1000 px²) up to its rasterised edge
    assert abs((contour == 0).sum() - 1000) < 0.15 * 1000
    assert set(np.unique(contour)) == {0.0, 1.0}


def test_the_mask_follows_the_photo_through_the_test_crop():
    polygon = [(150.0, 60.0), (330.0, 90.0), (300.0, 250.0), (170.0, 220.0)]
    drawn = Image.new("RGB", (451, 300), (128, 128, 128))
    ImageDraw.Draw(drawn).polygon(polygon, fill=(255, 0, 0))
    red = images.test_crop(np.asarray(drawn, np.float32) / 255, 64)
    hole = cropped_mask(object_mask([polygon], 451, 300, "contour"), 64) == 0
    is_red = (red[..., 0] > 190) & (red[..., 1] < 60)
    assert (hole & is_red).sum() / (hole | is_red).sum() > 0.9  # 451×300: the crop cuts the sides


def test_removal_on_the_demo_objects_fills_both_shapes_with_every_method(tmp_path):
    out = tmp_path / "removal"
    arguments = ["removal", "--methods", "telea,ns", "--size", "64", "--out", str(out)]
    assert study_main(arguments) == 0
    record = json.loads((out / "removal.json").read_text())
    assert [p["image_id"] for p in record["photos"]] == ["astronaut", "coffee", "rocket"]
    for photo in record["photos"]:
        contour, box = photo["shapes"]
        assert (contour["shape"], box["shape"]) == ("contour", "bbox")
        assert 0 < contour["hole_ratio"] < box["hole_ratio"] < 0.5
        for shape in photo["shapes"]:
            shown = np.asarray(Image.open(out / shape["input"]))
            known = np.asarray(Image.open(out / shape["mask"]))[..., 0] == 0
            assert [f["method"] for f in shape["fills"]] == ["telea", "ns"]
            for fill in shape["fills"]:
                filled = np.asarray(Image.open(out / fill["src"]))
                assert (filled[known] == shown[known]).all()  # known pixels unchanged
                assert (filled[~known] != 255).any()  # the white hole is filled
    page = (out / "report.html").read_text()
    assert "no ground truth" in page.lower() and "PSNR" not in page and "SSIM" not in page
    assert page.count("<img") == 3 * 2 * (2 + 2)
    assert record["masks_sha256"] and "none" in record["ground_truth"]


def test_shipped_polygons_are_read_and_a_single_shape_can_be_asked(tmp_path):
    masks = read_object_masks(default_masks())
    assert set(masks) == {"astronaut", "rocket", "coffee"}
    out = tmp_path / "bbox"
    arguments = ["removal", "--methods", "telea,pconv", "--size", "128", "--mask-shape", "bbox"]
    assert study_main([*arguments, "--out", str(out)]) == 0
    record = json.loads((out / "removal.json").read_text())
    assert {s["shape"] for p in record["photos"] for s in p["shapes"]} == {"bbox"}
    # a learned method without --checkpoint fills with the shipped CPU-scale weights, and says so
    assert record["weights"] == {"pconv": f"pconv_cpu.pth ({CPU_SCALE_LABEL})"}
    page = html.unescape((out / "report.html").read_text())
    assert f"pconv – pconv_cpu.pth ({CPU_SCALE_LABEL})" in page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read"),
        ({"format": "other", "images": {}}, "not an"),
        (
            {"format": "inpaint-bench object masks v1", "images": {"coffee": {"objects": {"x": [[1, 2]]}}}},
            "3 [x, y]",
        ),
        (
            {"format": "inpaint-bench object masks v1", "images": {"nothing": {"objects": {"x": TRIANGLE}}}},
            "no photo",
        ),
        (
            {
                "format": "inpaint-bench object masks v1",
                "images": {"coffee": {"size": [10, 10], "objects": {"x": TRIANGLE}}},
            },
            "drawn on a 10×10",
        ),
    ],
)
def test_unusable_mask_files_are_one_error_line(tmp_path, capsys, content, message):
    path = tmp_path / "masks.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    arguments = [
        "removal",
        "--methods",
        "telea",
        "--size",
        "64",
        "--masks",
        str(path),
        "--out",
        str(tmp_path / "o"),
    ]
    assert study_main(arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
