"""``parsing.inference.photo``: any input → RGB uint8 fitted into the network box; bad inputs named."""

import numpy as np
import pytest
from PIL import Image

from parsing.data.io import DataError
from parsing.inference.photo import as_rgb, check_input, describe_input, prepare, to_size


def test_a_path_a_pil_image_and_an_array_prepare_alike(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (90, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    photos = [prepare(x, (128, 96)) for x in (tmp_path / "p.png", Image.fromarray(rgb), rgb)]
    assert photos[0].source == str(tmp_path / "p.png") and photos[1].source is None
    for photo in photos:
        assert photo.size == (90, 60) and photo.x.shape[0] == 3 and max(photo.x.shape[1:]) <= 128
        assert np.array_equal(photo.image, rgb)


def test_gray_rgba_and_16_bit_arrays_become_rgb():
    assert as_rgb(np.zeros((8, 6), np.uint8))[0].shape == (8, 6, 3)
    assert as_rgb(np.zeros((8, 6, 4), np.uint8))[0].shape == (8, 6, 3)
    white = as_rgb(np.full((8, 6, 3), 65535, np.uint16))[0]
    assert white.dtype == np.uint8 and (white == 255).all()


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="not list"):
        check_input([1, 2])
    with pytest.raises(DataError, match="pixels must be uint8"):
        as_rgb(np.zeros((8, 6, 3), np.float32))
    with pytest.raises(DataError, match="expected \\(H, W\\) gray"):
        as_rgb(np.zeros((8, 6, 2), np.uint8))
    assert describe_input(np.zeros((2, 3), np.uint8)) == "<array (2, 3) uint8>"


def test_to_size_is_nearest_and_a_no_op_at_size():
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    assert to_size(labels, (2, 2)) is labels
    assert np.array_equal(to_size(labels, (4, 4)), labels.repeat(2, 0).repeat(2, 1))
