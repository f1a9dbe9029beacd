"""Garment details: pieces, named colours, cut-outs (``outputs.describe``) and their place in parsing-predict."""

import json

import numpy as np
import pytest
from PIL import Image

from parsing.commands.predict import main
from parsing.outputs.describe import colours, cutout, pieces


def garment(colour_of) -> tuple[np.ndarray, np.ndarray]:
    """A 120x80 photo with a 'garment' rectangle coloured row by row by ``colour_of(y)``, on grey."""
    image = np.full((120, 80, 3), 128, np.uint8)
    mask = np.zeros((120, 80), bool)
    mask[10:110, 15:65] = True
    for y in range(10, 110):
        image[y, 15:65] = colour_of(y)
    return image, mask


@pytest.mark.parametrize(
    ("rgb", "name"),
    [((0, 0, 128), "navy"), ((220, 20, 60), "crimson"), ((255, 255, 255), "white"), ((0, 128, 0), "green")],
)
def test_a_plain_garment_gets_its_colour_name(rgb, name):
    image, mask = garment(lambda y: rgb)
    image[mask & (np.arange(80)[None, :] < 17)] = (0, 0, 0)  # a dark seam along the edge: eroded away
    found = colours(image, mask)
    assert found[0]["name"] == name and found[0]["share"] > 0.9
    assert found[0]["hex"] == "#{:02x}{:02x}{:02x}".format(*rgb)


def test_a_striped_garment_reports_both_colours():
    image, mask = garment(lambda y: (0, 0, 128) if (y // 8) % 2 else (255, 255, 255))
    found = colours(image, mask)
    assert {c["name"] for c in found} == {"navy", "white"}
    assert all(0.35 < c["share"] < 0.65 for c in found)


def test_pieces_are_separate_regions_above_the_minimum_area():
    mask = np.zeros((100, 100), bool)
    mask[60:80, 10:30] = True  # two shoes
    mask[60:80, 60:85] = True
    mask[5, 5] = True  # a speck (0.01 % < 0.1 %)
    found = pieces(mask, min_share=0.001, scale=(2.0, 2.0))
    assert [p["bbox"] for p in found] == [[120, 120, 50, 40], [20, 120, 40, 40]]  # in the photo's pixels, largest first
    assert found[0]["share"] == pytest.approx(0.05)


def test_cutout_alpha_is_the_mask():
    image, mask = garment(lambda y: (200, 10, 10))
    picture = cutout(image, mask, margin=3)
    alpha = np.asarray(picture)[..., 3]
    assert picture.mode == "RGBA" and picture.size == (50 + 6, 100 + 6)
    assert (alpha == 255 * mask[7:113, 12:68]).all()
    soft = np.asarray(cutout(image, mask, margin=3, feather=1.5))[..., 3]
    assert 0 < soft[3, 30] < 255  # the edge is feathered


def test_predict_cutouts_and_colours(ccp_root, tmp_path):
    photo = ccp_root / "photos" / "0009.jpg"
    out = tmp_path / "out"
    assert main([str(photo), "-o", str(out), "--cutouts", "--describe", "--no-progress", "--workers", "0"]) == 0
    record = json.loads((out / "summary.jsonl").read_text().splitlines()[0])
    mask = np.asarray(Image.open(out / "masks" / "0009.png"))
    garments = [lab for lab in record["labels"] if lab["label"] not in ("skin", "hair")]
    assert garments and all(lab["colours"] for lab in garments)
    assert all(lab["pieces"] for lab in garments if lab["share"] >= 0.005)  # specks below 0.1 % are no piece
    for lab in garments:
        cut = Image.open(out / "cutouts" / "0009" / f"{lab['label']}.png")
        alpha = np.asarray(cut)[..., 3]
        assert (alpha == 255).sum() == (mask == lab["id"]).sum() and np.isin(alpha, [0, 255]).all()
        for piece in lab["pieces"]:
            assert cut.width >= piece["bbox"][2] and cut.height >= piece["bbox"][3]
    assert main([str(photo), "-o", str(out), "--cutouts", "--no-progress", "--workers", "0"]) == 0  # resumes
    assert len((out / "summary.jsonl").read_text().splitlines()) == 1
