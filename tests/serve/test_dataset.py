"""The studio's training folder: safe names, no overwrites, one label set per folder."""

import numpy as np
import pytest

from parsing.data.io import read_png_mask
from parsing.serve.dataset import TrainingFolder, safe_stem

NAMES, PALETTE = ["null", "dress"], [(0, 0, 0), (200, 0, 0)]


def test_safe_stems():
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("my photo (1).JPG") == "my_photo__1_"
    assert safe_stem("..hidden") == "hidden" and safe_stem(None) == "photo" and safe_stem("", "upload") == "upload"
    assert len(safe_stem("x" * 300 + ".jpg")) == 80


def test_saves_pairs_without_overwriting(tmp_path):
    folder = TrainingFolder(tmp_path / "ds", NAMES, PALETTE)
    image, labels = np.zeros((6, 4, 3), np.uint8), np.ones((6, 4), np.uint8)
    first = folder.save(image, labels, "look.jpg")
    second = folder.save(image, labels, "look.jpg")
    assert first == {"image": "images/look.jpg", "mask": "masks/look.png"} and second["mask"] == "masks/look-2.png"
    assert np.array_equal(read_png_mask(tmp_path / "ds" / "masks" / "look.png"), labels)
    assert (tmp_path / "ds" / "labels.txt").read_text().split() == NAMES
    with pytest.raises(ValueError, match="differ in size"):
        folder.save(image, labels[:3], "bad")


def test_a_folder_of_other_labels_is_refused(tmp_path):
    TrainingFolder(tmp_path, NAMES, PALETTE).save(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8), "a")
    with pytest.raises(ValueError, match="masks of other labels"):
        TrainingFolder(tmp_path, ["null", "top"], PALETTE)
