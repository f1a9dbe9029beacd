import albumentations as A
import numpy as np
import pytest
import torch
from conftest import blocks
from scipy.ndimage import maximum_filter, minimum_filter

from parsing.data.transforms import Backdrop, Framing, eval_transform, train_transform
from parsing.labels import IGNORE_INDEX


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


FRAMED = Framing(zoom_in=0.4, zoom_out=0.3, aspect=0.15, background=0.6)


def person(h: int = 330, w: int = 220) -> np.ndarray:
    """A background photo with a 'person' of three labels in the middle."""
    mask = np.zeros((h, w), np.uint8)
    mask[h // 8 : h // 2, w // 3 : 2 * w // 3] = 1
    mask[h // 2 : 7 * h // 8, w // 3 : 2 * w // 3] = 2
    mask[7 * h // 8 :, w // 3 : w // 2] = 3
    return mask


@pytest.mark.parametrize("seed", range(24))
def test_framing_keeps_the_person_aligned_and_in_view(seed):
    mask = person()
    transform = train_transform((128, 96), colour_jitter=0.0, framing=FRAMED)
    transform.set_random_seed(seed)
    out = transform(image=coded(mask), mask=mask, valid=np.ones_like(mask))
    image_labels, labels = decode(out["image"]), out["mask"].numpy()
    assert out["image"].shape == (3, 128, 96) and labels.shape == (128, 96)
    assert np.isin(labels, [0, 1, 2, 3, IGNORE_INDEX]).all()
    assert (labels[labels != IGNORE_INDEX] > 0).any()  # every framing shows some of the person
    core = interior(labels) & (labels > 0)  # the person's pixels carry their label (backdrops only touch label 0)
    assert (image_labels[core] == labels[core]).all()


def test_framing_draws_every_kind_of_frame():
    mask = person()
    transform = train_transform((128, 96), colour_jitter=0.0, framing=FRAMED, seed=0)
    areas, canvases, backdrops = [], 0, 0
    for _ in range(60):
        out = transform(image=coded(mask), mask=mask, valid=np.ones_like(mask))
        labels, region = out["mask"].numpy(), out["valid"].numpy() == 1
        areas.append((labels > 0).mean())
        canvases += int(((labels == 0) & ~region).mean() > 0.2)  # background outside the photo: zoom-out
        background = interior(labels) & (labels == 0) & region
        backdrops += int(background.any() and (decode(out["image"])[background] != 0).mean() > 0.5)
    whole = (person() > 0).mean()
    assert max(areas) > 2 * whole  # zoom-in crops fill the frame with the person
    assert min(areas) < 0.6 * whole  # zoom-out shrinks it
    assert canvases >= 5 and backdrops >= 10


def test_backdrop_replaces_only_the_background():
    mask = person(64, 48)
    image = np.full((64, 48, 3), 7, np.uint8)
    backdrop = Backdrop(softness=0.0, p=1.0)
    backdrop.set_random_seed(0)
    out = A.Compose([backdrop])(image=image, mask=mask)
    assert (out["image"][mask > 0] == 7).all() and (out["mask"] == mask).all()
    assert (out["image"][mask == 0] != 7).any()


def test_framing_rejects_impossible_settings():
    with pytest.raises(ValueError, match="zoom_in \\+ zoom_out"):
        Framing(zoom_in=0.7, zoom_out=0.5)
    with pytest.raises(ValueError, match="probability"):
        Framing(background=1.5)
