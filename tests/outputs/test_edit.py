"""Editing a ``Parse``: ``click`` / ``paint`` / ``with_labels`` / ``regions`` on a synthetic parse whose network
hints are known, and once on a real photo through an ``editable`` parser."""

import numpy as np
import pytest

from parsing import Parser
from parsing.outputs.edit import TOP, EditBase, Hints, grid_size
from parsing.outputs.parse import Parse

NAMES = ["null", "skin", "coat", "dress", "bag"]
PALETTE = [(0, 0, 0), (200, 150, 120), (30, 60, 200), (200, 30, 30), (40, 160, 40)]


def synthetic(probs: np.ndarray | None = None) -> Parse:
    """A 60×80 photo: a red block (the true dress) on grey; the parse calls the block's left half ``coat`` and its
    right half ``dress``; ``probs`` (L, 60, 80) are the network's hints."""
    image = np.full((60, 80, 3), 128, np.uint8)
    image[10:50, 20:60] = (200, 30, 30)
    labels = np.zeros((60, 80), np.uint8)
    labels[10:50, 20:40] = 2
    labels[10:50, 40:60] = 3
    hints = None if probs is None else Hints.from_probs(probs)
    return Parse(
        labels=labels,
        names=list(NAMES),
        palette=list(PALETTE),
        garments=["coat", "dress"],
        presence=None,
        confidence={"coat": {"confidence": 0.4}, "dress": {"confidence": 0.9}},
        box=None,
        widened=False,
        image=image,
        work_labels=labels.copy(),
        edit=EditBase.of(image, hints),
    )


def network(favour: int, against: int, where: tuple[slice, slice]) -> np.ndarray:
    """Hints that rank ``favour`` first (0.7) over ``against`` (0.3) inside ``where``, background elsewhere."""
    probs = np.zeros((len(NAMES), 60, 80), np.float32)
    probs[0] = 1.0
    probs[:, where[0], where[1]] = 0.0
    probs[favour][where] = 0.7
    probs[against][where] = 0.3
    return probs


def test_a_click_returns_a_new_parse_and_the_old_one_is_unchanged():
    before = synthetic()
    after = before.click(25, 30, "dress")  # in the coat half
    assert after is not before and before.labels[30, 25] == 2 and after.labels[30, 25] == 3
    assert before.garments == ["coat", "dress"]
    assert after.labels.shape == before.labels.shape and after.work_labels.shape == before.work_labels.shape


def test_a_click_without_network_hints_fills_the_piece_of_the_same_colour():
    after = synthetic().click(25, 30, "dress")  # the red block: its coat half is one colour with the dress half
    assert (after.labels[10:50, 20:60] == 3).all()
    assert (after.labels[:10] == 0).all() and (after.labels[:, :20] == 0).all()  # nothing outside the piece
    assert after.garments == ["dress"] and "coat" not in after.confidence
    shares = after.shares
    assert shares["dress"] == pytest.approx(40 * 40 / (60 * 80))
    record = after.to_dict()
    assert record["outfit"] == ["dress"] and [x["label"] for x in record["labels"]] == ["dress"]


def test_the_network_agreeing_takes_the_whole_piece_even_across_colours():
    probs = network(favour=3, against=2, where=(slice(10, 50), slice(20, 40)))
    parse = synthetic(probs)
    parse.image[10:50, 20:30] = (20, 200, 20)  # half of the coat piece another colour
    parse.edit = EditBase.of(parse.image, parse.edit.hints)
    after = parse.click(35, 30, "dress")
    assert (after.labels[10:50, 20:40] == 3).all()


def test_an_earlier_click_of_another_label_keeps_its_pixels():
    first = synthetic().click(22, 30, "bag")  # the whole red coat piece becomes bag …
    assert first.labels[30, 22] == 4
    second = first.click(50, 30, "coat")  # … the dress piece is another segment: coat there
    third = second.click(38, 30, "coat")  # inside the bag piece: coat again, but the bag click keeps its pixel
    assert third.labels[30, 22] == 4 and third.labels[30, 38] == 2
    assert len(third.clicks) == 3 and third.settings["edits"] == 3


def test_clicking_a_label_the_pixel_already_has_grows_it():
    parse = synthetic()
    again = parse.click(50, 30, "dress")  # already dress: grows over the touching superpixels
    assert (again.labels == 3).sum() > (parse.labels == 3).sum()


def test_paint_takes_a_mask_at_any_size_and_checks_its_arguments():
    parse = synthetic()
    stroke = np.zeros((30, 40), bool)  # half size: resized to the photo
    stroke[0:5, 0:5] = True
    painted = parse.paint(stroke, "bag")
    assert (painted.labels[0:10, 0:10] == 4).all() and painted.garments == ["coat", "dress", "bag"]  # label order
    assert painted.paint(stroke, 0).labels[0:10, 0:10].max() == 0  # the eraser: background
    with pytest.raises(ValueError, match="label 'hat'.*null, skin, coat"):
        parse.paint(stroke, "hat")
    with pytest.raises(ValueError, match="one \\(H, W\\) boolean mask"):
        parse.paint(np.zeros((2, 3, 4), bool), "bag")
    with pytest.raises(ValueError, match="outside the photo \\(80×60\\)"):
        parse.click(80, 10, "bag")


def test_with_labels_refuses_another_size_or_unknown_ids():
    parse = synthetic()
    with pytest.raises(ValueError, match="mask of 40×30: the photo is 80×60"):
        parse.with_labels(np.zeros((30, 40), np.uint8))
    with pytest.raises(ValueError, match="label id 9"):
        parse.with_labels(np.full((60, 80), 9, np.uint8))
    same = parse.with_labels(parse.labels)
    assert (same.labels == parse.labels).all() and same.garments == parse.garments


def test_regions_are_superpixels_cut_along_the_mask():
    parse = synthetic()
    regions = parse.regions()
    assert regions.shape == grid_size(parse.labels.shape) and regions.dtype == np.int32
    for region in np.unique(regions):  # no region spans two labels
        assert len(np.unique(parse.work_labels[regions == region])) == 1


def test_hints_keep_the_top_labels_in_a_bounded_size():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(NAMES)), size=(60, 80)).transpose(2, 0, 1)
    hints = Hints.from_probs(probs)
    assert hints.nbytes == 2 * TOP * 60 * 80
    best = probs.argmax(0)
    assert np.allclose(hints.prob(2)[best == 2], probs[2][best == 2], atol=1 / 255)


def test_an_editable_parser_keeps_hints_and_a_click_fixes_a_real_photo(ccp_root):
    parser = Parser.load(device="cpu", editable=True)
    parse = parser(ccp_root / "photos" / "0003.jpg")
    hints = parse.edit.hints
    assert hints is not None and hints.shape == grid_size(parse.work_labels.shape)
    assert hints.nbytes <= 2 * TOP * 300_000
    # The network's own first choice at a pixel agrees with the hints' top label
    y, x = np.array(parse.work_labels.shape) // 2
    gy, gx = int(y * hints.shape[0] / parse.work_labels.shape[0]), int(x * hints.shape[1] / parse.work_labels.shape[1])
    garment = next(n for n in parse.garments if parse.names.index(n) != parse.work_labels[y, x])
    after = parse.click(x, y, garment)
    assert after.labels[y, x] == parse.names.index(garment) and garment in after.garments
    assert (after.labels != parse.labels).sum() >= 1 and after.edit is parse.edit
    assert hints.ids[0, gy, gx] < len(parse.names)


def test_uncertainty_is_the_mean_doubt_over_the_person():
    probs = np.zeros((len(NAMES), 60, 80), np.float32)
    probs[0] = 1.0  # sure of the background
    probs[0, 10:50, 20:60] = 0.0
    probs[2, 10:50, 20:60], probs[3, 10:50, 20:60] = 0.6, 0.4  # 0.6 sure over the person
    assert synthetic(probs).uncertainty() == pytest.approx(0.4, abs=1 / 255)
    with pytest.raises(ValueError, match="editable=True"):
        synthetic().uncertainty()
