"""Writing a parse's files: the output layout, labels.json that refuses other labels."""

import json

import pytest

from parsing.outputs.files import output_paths, write_labels_json


def test_output_paths_keep_dots_and_sub_folders(tmp_path):
    paths = output_paths(tmp_path, "look/0033.v2", probs=True, cutouts=True)
    assert paths["mask"] == tmp_path / "masks" / "look" / "0033.v2.png"
    assert paths["overlay"].name == "0033.v2.jpg" and paths["probs"].suffix == ".npy"
    assert paths["cutouts"] == tmp_path / "cutouts" / "look" / "0033.v2"


def test_labels_json_refuses_other_labels_unless_everything_is_redone(tmp_path):
    path = write_labels_json(tmp_path, ["null", "dress"], [(0, 0, 0), (255, 0, 0)])
    assert json.loads(path.read_text())[1] == {"id": 1, "name": "dress", "colour": [255, 0, 0]}
    write_labels_json(tmp_path, ["null", "dress"], [(0, 0, 0), (255, 0, 0)])  # the same: fine
    with pytest.raises(ValueError, match="use other labels"):
        write_labels_json(tmp_path, ["null", "top"], [(0, 0, 0), (255, 0, 0)])
    write_labels_json(tmp_path, ["null", "top"], [(0, 0, 0), (255, 0, 0)], replace=True)
    assert "top" in path.read_text()


def test_overlay_colours_labels_and_leaves_hidden_ones_as_the_photo():
    import numpy as np

    from parsing.outputs.overlay import colourise, overlay

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (30, 20)).astype(np.uint8)
    palette = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]
    assert (colourise(labels, palette) == np.asarray(palette, np.uint8)[labels]).all()  # the table lookup
    assert (colourise(labels.astype(np.int64), palette) == np.asarray(palette, np.uint8)[labels]).all()
    image = rng.integers(0, 256, (30, 20, 3)).astype(np.uint8)
    picture = np.asarray(overlay(image, labels, palette, ["null", "a", "b", "c"]))[:30, :20]
    hidden = labels == 0
    assert (picture[hidden] == image[hidden]).all()  # "null": the photo itself
    assert (picture[~hidden] != image[~hidden]).any(axis=-1).mean() > 0.9  # the others: blended with their colour
