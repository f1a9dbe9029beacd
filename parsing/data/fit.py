"""A photo fitted into the network box for inference, without albumentations.

``fit_photo`` gives the pixels of ``transforms.eval_transform`` without its padding — albumentations'
``LongestMaxSize`` (INTER_AREA), ``ToFloat`` and ``ToTensorV2`` — computed with OpenCV directly:
importing albumentations took 0.6 s of every ``parsing-predict`` start (of ~3.6 s for one photo, AMD EPYC,
2026-12-06), and inference needs nothing else from it. ``tests/data/test_fit.py`` checks the two agree exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

_TO_FLOAT = np.arange(256, dtype=np.float32) / 255.0  # uint8 → [0, 1], as albumentations' ToFloat (a lookup)


def fitted_size(h: int, w: int, box: tuple[int, int]) -> tuple[int, int]:
    """(h, w) scaled to fit inside ``box`` (H, W), keeping the aspect: (h', w'), each at least 1."""
    scale = min(box[0] / h, box[1] / w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def fit_photo(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Photo (H, W, 3) uint8 → network input (3, h', w') float32 in [0, 1] inside ``size``'s box, turned for
    landscape photos (a 512×352 network fits a landscape photo inside 352×512), not padded."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"fit_photo takes an (H, W, 3) uint8 photo, not {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    box = (min(size), max(size)) if w > h else (max(size), min(size))
    fitted = fitted_size(h, w, box)
    if fitted != (h, w):
        image = cv2.resize(image, fitted[::-1], interpolation=cv2.INTER_AREA)  # dsize is (w, h)
    return torch.from_numpy(cv2.LUT(image, _TO_FLOAT).transpose(2, 0, 1))  # (3, h', w')
