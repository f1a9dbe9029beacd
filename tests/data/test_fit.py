"""``fit_photo`` (OpenCV only) gives exactly the pixels of the albumentations evaluation transform, padding aside."""

import numpy as np
import pytest
import torch

from parsing.data.fit import fit_photo
from parsing.data.transforms import eval_transform

SIZES = [(825, 550), (576, 384), (577, 385), (300, 200), (1229, 814), (410, 275), (13, 900), (1, 1), (550, 825)]


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_the_pixels_of_the_evaluation_transform(h, w):
    image = np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    size = (576, 384)
    x = fit_photo(image, size)  # (3, h', w')
    box = size if h >= w else size[::-1]  # a landscape photo is fitted into the turned box
    padded = eval_transform(box)(image=image, mask=np.zeros((h, w), np.uint8), valid=np.ones((h, w), np.uint8))
    outside = padded["image"].clone()
    outside[:, : x.shape[1], : x.shape[2]] = 0  # the padding: bottom and right of the photo
    assert x.dtype == torch.float32 and (x.shape[1] == box[0] or x.shape[2] == box[1])  # it touches the box
    assert torch.equal(x, padded["image"][:, : x.shape[1], : x.shape[2]]) and not outside.any()


def test_anything_but_an_rgb_uint8_photo_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        fit_photo(np.zeros((10, 10, 3), np.float32), (576, 384))
