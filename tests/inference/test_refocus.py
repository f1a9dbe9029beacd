"""Refocus: a second parse of the box around a small person, or of a close-up on a wider canvas."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from parsing import Parser
from parsing.box import scale_box
from parsing.commands.predict import main
from parsing.data.io import read_image
from parsing.inference.refocus import close_up, on_canvas, paste, person_box, widened

SIZE = (512, 352)


def person(h: int, w: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    labels = torch.zeros(h, w, dtype=torch.long)
    t, left, b, r = box
    labels[t:b, left:r] = 41  # skin
    return labels


def test_small_person_gets_a_box_at_the_network_aspect():
    labels = person(1000, 700, (400, 300, 600, 360))  # 200 px tall in a 1000 px photo
    t, left, b, r = person_box(labels, SIZE, min_gain=1.5)
    assert t <= 400 and b >= 600 and left <= 300 and r >= 360  # the whole person, with a margin
    assert (b - t) < 300 and abs((r - left) / (b - t) - 352 / 512) < 0.02  # portrait, the network's aspect
    assert t >= 0 and left >= 0 and b <= 1000 and r <= 700


def test_box_stays_inside_the_photo_at_its_edge():
    labels = person(1000, 700, (0, 0, 150, 40))  # in the top-left corner
    t, left, b, r = person_box(labels, SIZE, min_gain=1.5)
    assert (t, left) == (0, 0) and b >= 150 and r >= 40


def test_no_box_when_the_person_fills_the_photo_or_is_absent():
    assert person_box(person(600, 400, (30, 60, 580, 340)), SIZE, min_gain=1.5) is None
    assert person_box(torch.zeros(600, 400, dtype=torch.long), SIZE, min_gain=1.5) is None


def test_stray_pixels_do_not_widen_the_box():
    labels = person(1000, 700, (400, 300, 600, 360))
    labels[5, 690] = 3  # one far-away speck
    t, left, b, r = person_box(labels, SIZE, min_gain=1.5)
    assert t > 300 and r < 500


def test_paste_and_scale_box():
    labels = torch.zeros(10, 10, dtype=torch.uint8)
    out = paste(labels, torch.full((2, 3), 7), (4, 5, 6, 8))
    assert int(out.sum()) == 6 * 7 and out[4:6, 5:8].eq(7).all() and labels.sum() == 0
    assert scale_box((4, 5, 6, 8), (10, 10), (20, 30)) == (8, 15, 12, 24)


def fg_logits(h: int, w: int, rows: slice, cols: slice) -> torch.Tensor:
    """Logits (3, h, w): background everywhere but a label-2 block at ``rows``, ``cols``."""
    logits = torch.zeros(3, h, w)
    logits[0] = 1.0
    logits[2, rows, cols] = 5.0
    return logits


def test_close_up_fires_only_when_the_person_runs_through_the_frame():
    assert close_up(fg_logits(100, 60, slice(0, 100), slice(10, 50)))  # no head, no feet
    assert not close_up(fg_logits(100, 60, slice(5, 100), slice(10, 50)))  # head below the top edge: waist-up
    assert not close_up(fg_logits(100, 60, slice(0, 95), slice(10, 50)))  # feet above the bottom edge
    assert not close_up(fg_logits(100, 60, slice(0, 100), slice(28, 31)))  # a sliver (5 % of the edges) only


def test_on_canvas_shrinks_the_photo_into_its_border_colour():
    x = torch.full((3, 60, 40), 0.8)
    x[:, 10:50, 10:30] = 0.1  # the person, away from the border
    wide, (t, left, b, r) = on_canvas(x, 2.0)
    assert wide.shape == x.shape and (b - t, r - left) == (30, 20) and (t, left) == (15, 10)
    assert torch.allclose(wide[:, :t], torch.tensor(0.8)) and torch.allclose(wide[:, :, :left], torch.tensor(0.8))
    assert torch.allclose(wide[:, t + 10 : t + 20, left + 7 : left + 13], torch.tensor(0.1))  # the person, halved


class Stub:
    """A backend whose network sees label 1 everywhere, and counts its calls."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def infer(self, x: torch.Tensor, tta: str = "none") -> tuple[torch.Tensor, None]:
        self.calls.append(tuple(x.shape))
        logits = torch.zeros(len(x), 3, *x.shape[2:])
        logits[:, 1] = 4.0
        return logits, None


def test_widened_averages_a_close_up_with_its_wider_view():
    stub, x = Stub(), torch.rand(3, 60, 40)
    cut = fg_logits(60, 40, slice(0, 60), slice(0, 40))
    z, wide = widened(stub, x, cut, 1.5)
    assert wide and stub.calls == [(1, 3, 60, 40)]  # one more pass, at the same network size
    assert torch.allclose(z, (cut + torch.tensor([0.0, 4.0, 0.0])[:, None, None]) / 2)  # the mean logits
    full_body = fg_logits(60, 40, slice(6, 60), slice(10, 30))
    assert widened(stub, x, full_body, 1.5) == (full_body, False) and len(stub.calls) == 1
    assert widened(stub, x, cut, 0) == (cut, False) and len(stub.calls) == 1  # 0: off


@pytest.fixture(scope="module")
def shipped():
    return Parser.load(min_share=0)  # every pixel kept: parses compare exactly


def test_a_person_shrunk_on_a_canvas_is_parsed_again(shipped, ccp_root, tmp_path, capsys):
    parser, module = shipped, shipped.spec
    photo = read_image(ccp_root / "photos" / "0009.jpg")  # a validation photo
    h, w = photo.shape[:2]
    small = np.asarray(Image.fromarray(photo).resize((w // 3, h // 3)))
    canvas = np.full((h, w, 3), 235, np.uint8)
    top, left = h // 3, w // 3
    canvas[top : top + h // 3, left : left + w // 3] = small
    plain = parser.replace(refocus=0)(canvas)
    refocused = parser(canvas)  # on by default
    assert plain.box is None and refocused.box is not None
    t, lft, b, r = refocused.box
    assert t <= top + h // 12 and b >= top + h // 4  # the box holds most of the person
    outside = np.ones((h, w), bool)
    outside[t:b, lft:r] = False
    assert (refocused.labels[outside] == plain.labels[outside]).all()
    assert (refocused.labels[~outside] != plain.labels[~outside]).any()  # a new parse inside
    assert parser(photo).box is None  # a full-body photo: no second parse
    Image.fromarray(canvas).save(tmp_path / "canvas.png")
    out = tmp_path / "out"
    assert main([str(tmp_path / "canvas.png"), "-o", str(out), "--no-progress", "--probs"]) == 0
    record = json.loads((out / "summary.jsonl").read_text())
    assert record["refocus"] == list(refocused.box)
    with Image.open(out / "masks" / "canvas.png") as mask:
        assert (np.asarray(mask) == refocused.labels).mean() > 0.999  # the same parse as the Parser's
    assert np.load(out / "probs" / "canvas.npy").shape == (module.num_classes, h, w)


def test_a_close_up_is_widened_the_same_in_the_parser_and_predict(shipped, ccp_root, tmp_path):
    parser = shipped
    photo = read_image(ccp_root / "photos" / "0009.jpg")  # a validation photo
    h, w = photo.shape[:2]
    close_up = np.ascontiguousarray(photo[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4])  # the centre: torso, no head
    plain = parser.replace(widen=0)(close_up)
    wide = parser(close_up)  # on by default
    assert not plain.widened and wide.widened
    assert (wide.labels != plain.labels).any()
    assert not parser(photo).widened  # a full-body photo: one pass
    Image.fromarray(close_up).save(tmp_path / "close.png")
    out = tmp_path / "out"
    assert main([str(tmp_path / "close.png"), "-o", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.jsonl").read_text())["widened"] is True
    with Image.open(out / "masks" / "close.png") as mask:
        assert (np.asarray(mask) == wide.labels).mean() > 0.999  # the same parse as the Parser's
    out = tmp_path / "off"
    assert main([str(tmp_path / "close.png"), "-o", str(out), "--no-progress", "--widen", "0"]) == 0
    assert json.loads((out / "summary.jsonl").read_text())["widened"] is False
