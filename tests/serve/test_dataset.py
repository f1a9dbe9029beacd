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


def test_the_same_photo_saved_twice_is_flagged_by_check_data(tmp_path):
    from parsing.data.check import check_folder

    folder = TrainingFolder(tmp_path, NAMES, PALETTE)
    photo = np.random.default_rng(0).integers(0, 255, (6, 4, 3), dtype=np.uint8)
    folder.save(photo, np.ones((6, 4), np.uint8), "0001")
    folder.save(photo, np.zeros((6, 4), np.uint8), "0001")  # the studio's Save pressed twice: 0001-2
    folder.save(photo[::-1].copy(), np.ones((6, 4), np.uint8), "other")
    problems = check_folder(tmp_path, len(NAMES), same=True)
    assert [(str(p.path).split("/")[-1], p.problem) for p in problems] == [
        ("0001.jpg", "the same photo as 0001-2.jpg (would leak between splits)")
    ]
    assert check_folder(tmp_path, len(NAMES)) == []  # the check before fit does not hash every photo
