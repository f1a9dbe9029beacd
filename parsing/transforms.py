"""Albumentations pipelines. Photos keep their aspect: fit inside (H, W), pad bottom/right to exactly (H, W)."""

from __future__ import annotations

import albumentations as A
import cv2

from parsing.labels import IGNORE_INDEX


def _fit_and_pad(size: tuple[int, int]) -> list[A.BasicTransform]:
    height, width = size
    return [
        A.LongestMaxSize(max_size_hw=(height, width), interpolation=cv2.INTER_AREA),
        A.PadIfNeeded(
            min_height=height,
            min_width=width,
            position="top_left",
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=IGNORE_INDEX,
        ),
    ]


def _to_tensor() -> list[A.BasicTransform]:
    return [A.ToFloat(max_value=255.0), A.ToTensorV2()]


def train_transform(
    size: tuple[int, int],
    scale: tuple[float, float] = (0.75, 1.25),
    rotate: float = 10.0,
    colour_jitter: float = 0.2,
    seed: int | None = None,
) -> A.Compose:
    """Fit/pad, then random scale/shift/rotation, horizontal flip and colour jitter; the mask follows.

    Albumentations keeps its own random state: ``seed`` fixes it (global seeds do not); DataLoader workers reseed
    it (``parsing.datamodule.seed_worker``).
    """
    return A.Compose(
        [
            *_fit_and_pad(size),
            A.Affine(
                scale=scale,
                translate_percent=(-0.1, 0.1),
                rotate=(-rotate, rotate),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
                p=0.8,
            ),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(colour_jitter, colour_jitter, colour_jitter, colour_jitter / 10, p=0.8),
            *_to_tensor(),
        ],
        additional_targets={"valid": "mask"},
        seed=seed,
    )


def eval_transform(size: tuple[int, int]) -> A.Compose:
    """Fit inside ``size`` keeping the aspect, pad bottom/right; the top-left (h', w') holds the photo."""
    return A.Compose([*_fit_and_pad(size), *_to_tensor()], additional_targets={"valid": "mask"})


def fit_transform(size: tuple[int, int]) -> A.Compose:
    """Fit inside ``size`` (H, W) keeping the aspect, no padding (predict pads each batch to its largest photo)."""
    height, width = size
    return A.Compose([A.LongestMaxSize(max_size_hw=(height, width), interpolation=cv2.INTER_AREA), *_to_tensor()])
