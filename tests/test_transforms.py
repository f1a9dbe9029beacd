import numpy as np
import pytest
import torch
from conftest import blocks
from scipy.ndimage import maximum_filter, minimum_filter

from parsing.labels import IGNORE_INDEX
from parsing.transforms import eval_transform, train_transform


def coded(mask: np.ndarray) -> np.ndarray:
    """A photo whose red channel encodes the label: alignment can be read back from the pixels."""
    return np.stack([mask.astype(np.uint8) * 60, np.zeros_like(mask), np.zeros_like(mask)], -1).astype(np.uint8)


def decode(image) -> np.ndarray:
    return np.rint(image[0].numpy() * 255 / 60).astype(np.int64)


def interior(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 7x7 neighbourhood, inside the frame, has one label: resizing and warping cannot blur them
    (a photo's edge pixels blend with the fill outside it, so they never count)."""
    high = maximum_filter(labels, 7, mode="constant", cval=IGNORE_INDEX)
    return (high == minimum_filter(labels, 7)) & (labels != IGNORE_INDEX)


@pytest.mark.parametrize("seed", range(20))
def test_train_transform_keeps_image_and_mask_aligned(seed):
    mask = blocks(330, 220, [0, 1, 2, 3], seed=seed)
    transform = train_transform((128, 96), colour_jitter=0.0)
    transform.set_random_seed(seed)
    out = transform(image=coded(mask), mask=mask, valid=np.ones_like(mask))
    image_labels, labels = decode(out["image"]), out["mask"].numpy()
    inside = labels != IGNORE_INDEX
    assert inside.mean() > 0.3
    core = interior(labels)  # away from region borders the photo and the mask carry the same label
    assert core.sum() > 1000 and (image_labels[core] == labels[core]).all()
    padding = minimum_filter((~inside).astype(np.uint8), 7, mode="nearest") == 1  # away from the photo's edge
    assert (out["image"][:, torch.from_numpy(padding)] == 0).all()  # padding: black photo, ignored mask


def test_eval_transform_fits_aspect_and_pads_bottom_right():
    mask = blocks(300, 100, [0, 1, 2])
    out = eval_transform((128, 96))(image=coded(mask), mask=mask, valid=np.ones_like(mask))
    valid = out["valid"].numpy() == 1
    rows, cols = int(valid.any(1).sum()), int(valid.any(0).sum())
    assert (rows, cols) == (128, 43)  # 300x100 fitted into 128 rows keeps the 3:1 aspect
    assert valid[:rows, :cols].all() and not valid[:, cols:].any()
    assert (out["mask"].numpy()[:, cols:] == IGNORE_INDEX).all()
    labels = out["mask"].numpy()[:rows, :cols]
    core = interior(labels)
    assert core.mean() > 0.5 and (decode(out["image"])[:rows, :cols][core] == labels[core]).all()
