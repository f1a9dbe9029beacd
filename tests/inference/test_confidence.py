"""Each label's confidence and runner-up (``parsing.inference.confidence``), and their place in ``summary.jsonl``."""

import json

import pytest
import torch

from parsing.inference.confidence import label_confidence, probability_sums
from parsing.inference.label_view import LabelView

NAMES = ["null", "skin", "dress", "skirt", "blouse", "t-shirt"]


def two_halves() -> torch.Tensor:
    """Logits (6, 8, 8): dress on top (skirt second), skin below (null second)."""
    logits = torch.zeros(len(NAMES), 8, 8)
    logits[2, :4], logits[3, :4] = 3.0, 2.0
    logits[1, 4:], logits[0, 4:] = 4.0, 1.0
    return logits


def test_confidence_is_the_mean_probability_over_the_labels_pixels_and_names_the_runner_up():
    logits = two_halves()
    labels = torch.zeros(16, 16, dtype=torch.long)  # the map at twice the network's size
    labels[:8], labels[8:] = 2, 1
    probs = logits.softmax(0)
    sure = label_confidence(labels, logits, NAMES, stride=1)
    assert set(sure) == {1, 2}
    assert sure[2]["confidence"] == pytest.approx(float(probs[2, 0, 0]), abs=1e-3)
    assert sure[2]["alternative"] == "skirt"
    assert sure[2]["alternative_confidence"] == pytest.approx(float(probs[3, 0, 0]), abs=1e-3)
    assert sure[1]["alternative"] == "null"
    strided = label_confidence(labels, logits, NAMES)  # every 2nd cell: the same uniform regions
    assert strided[2]["confidence"] == sure[2]["confidence"]


def test_a_label_the_map_overrules_gets_low_confidence():
    """The map says skirt where the network preferred dress (as after exclusive-pair decoding)."""
    logits = two_halves()
    labels = torch.ones(8, 8, dtype=torch.long)
    labels[:4] = 3
    sure = label_confidence(labels, logits, NAMES, stride=1)
    assert sure[3]["confidence"] < 0.5 and sure[3]["alternative"] == "dress"


def test_a_refocused_box_is_read_from_its_own_logits():
    whole = torch.zeros(len(NAMES), 8, 8)
    whole[1] = 5.0  # the whole photo's parse: skin everywhere
    box_logits = torch.zeros(len(NAMES), 4, 4)
    box_logits[4] = 5.0  # the box parsed again: blouse
    labels = torch.ones(8, 8, dtype=torch.long)
    labels[2:6, 2:6] = 4
    sure = label_confidence(labels, whole, NAMES, box=(2, 2, 6, 6), box_logits=box_logits, stride=1)
    assert sure[4]["confidence"] > 0.9  # from the box's logits, not the whole photo's (where blouse is ~0)
    assert sure[1]["confidence"] > 0.9  # outside the box only
    sums, counts = probability_sums(labels, whole, torch.arange(len(NAMES)), len(NAMES), skip=(2, 2, 6, 6), stride=1)
    assert counts[4] == 0 and counts[1] == 64 - 16


def test_merged_groups_are_scored_by_their_summed_probability():
    logits = torch.full((len(NAMES), 4, 4), -10.0)
    logits[4] = logits[5] = 1.0  # blouse and t-shirt split the mass: each ~0.5, the group ~1
    view = LabelView.build(NAMES, [[0, 0, 0]] * len(NAMES), torch.zeros(6, 6, dtype=torch.bool),
                           {"null": ["null"], "body": ["skin"], "dress": ["dress", "skirt"],
                            "top": ["blouse", "t-shirt"]})  # fmt: skip
    top = list(view.names).index("top")
    labels = torch.full((4, 4), top)
    sure = label_confidence(labels, logits, list(view.names), view, stride=1)
    assert sure[top]["confidence"] > 0.99
    plain = label_confidence(torch.full((4, 4), 4), logits, NAMES, stride=1)
    assert plain[4]["confidence"] == pytest.approx(0.5, abs=1e-3) and plain[4]["alternative"] == "t-shirt"


def test_summary_reports_confidence_for_every_label(ccp_root, tmp_path):
    from parsing.commands.predict import main

    out = tmp_path / "out"
    photo = ccp_root / "photos" / "0009.jpg"
    assert main([str(photo), "-o", str(out), "--crf", "none", "--no-progress", "--workers", "0"]) == 0
    record = json.loads((out / "summary.jsonl").read_text().splitlines()[0])
    names = {lab["label"] for lab in record["labels"]}
    for lab in record["labels"]:
        if lab["confidence"] is None:  # no sampled cell of the network grid fell on it
            assert lab["share"] < 0.001 and lab["alternative"] is None
            continue
        assert lab["alternative_confidence"] >= 0 and lab["confidence"] + lab["alternative_confidence"] <= 1.001
        assert lab["alternative"] != lab["label"]
    assert "skin" in names and next(lab for lab in record["labels"] if lab["label"] == "skin")["confidence"] > 0.5


def test_overlay_legend_names_the_likelier_alternative_of_unsure_garments():
    import numpy as np

    from parsing.outputs.overlay import overlay, unsure_notes

    sure = {
        1: {"confidence": 0.2, "alternative": "dress", "alternative_confidence": 0.1},  # skin: not a garment
        2: {"confidence": 0.3, "alternative": "skirt", "alternative_confidence": 0.6},
        3: {"confidence": 0.9, "alternative": "dress", "alternative_confidence": 0.05},
        4: {"confidence": 0.4, "alternative": "null", "alternative_confidence": 0.5},  # background is no name
    }
    notes = unsure_notes(sure, NAMES)
    assert notes == {2: "(skirt?)"}
    image, labels = np.zeros((40, 30, 3), np.uint8), np.zeros((40, 30), np.uint8)
    labels[10:30] = 2
    palette = [[i * 40, 0, 0] for i in range(len(NAMES))]
    plain, marked = overlay(image, labels, palette, NAMES), overlay(image, labels, palette, NAMES, notes=notes)
    assert marked.width > plain.width and marked.height == plain.height
