"""Albumentations pipelines. Photos keep their aspect: fit inside (H, W), pad bottom/right to exactly (H, W).

Training can also *frame* the photo as users' photos are framed (``Framing``): zoom-in crops that cut the person
(upper body, legs, close-ups), zoom-out onto a larger canvas, aspect jitter, a new background behind the person
(``Backdrop``: plain, gradient or another photo's edge, with a soft edge), and degraded photos (small, blurred,
JPEG, noisy). Inference fits photos with ``parsing.data.fit`` instead: the pixels of ``eval_transform`` without its
padding, without importing albumentations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np

from parsing.labels import IGNORE_INDEX

BACKGROUND = 0  # label index of null / background in CCP and in every merge


def _fit_and_pad(size: tuple[int, int], fill_mask: int = IGNORE_INDEX) -> list[A.BasicTransform]:
    height, width = size
    return [
        A.LongestMaxSize(max_size_hw=(height, width), interpolation=cv2.INTER_AREA),
        A.PadIfNeeded(
            min_height=height,
            min_width=width,
            position="top_left",
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=fill_mask,
        ),
    ]


def _to_tensor() -> list[A.BasicTransform]:
    return [A.ToFloat(max_value=255.0), A.ToTensorV2()]


@dataclass
class Framing:
    """How training photos are framed; each is a probability per photo (0 = never).

    Args:
        zoom_in: a crop that cuts the person: the photo scaled to ``zoom_in_range`` × its fitted size and an
            (H, W) window taken where the mask has some non-background label (upper body, legs, close-ups).
        zoom_out: the photo shrunk to ``zoom_out_range`` × its fitted size on a larger background canvas
            (labelled background, so ``background`` can fill it).
        (otherwise: the whole photo fitted in, then scaled by ``scale``, shifted and rotated, as before)
        aspect: stretch the width by up to ± this share (the person looks slimmer or wider).
        background: replace the background (mask label 0) by a plain colour, a gradient or another photo's edge.
        degrade: one of downscale-and-upscale (small photos), blur, strong JPEG compression, noise.
    """

    zoom_in: float = 0.0
    zoom_in_range: tuple[float, float] = (1.3, 3.0)
    zoom_out: float = 0.0
    zoom_out_range: tuple[float, float] = (0.45, 0.8)
    aspect: float = 0.0
    background: float = 0.0
    degrade: float = 0.0

    def __post_init__(self) -> None:
        for name in ("zoom_in", "zoom_out", "background", "degrade"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"framing.{name} is a probability, got {getattr(self, name)}")
        if self.zoom_in + self.zoom_out > 1.0:
            raise ValueError(f"framing.zoom_in + zoom_out must be ≤ 1, got {self.zoom_in} + {self.zoom_out}")
        if not 1.0 <= self.zoom_in_range[0] <= self.zoom_in_range[1]:
            raise ValueError(f"framing.zoom_in_range must be ≥ 1 and ordered, got {self.zoom_in_range}")
        if not 0.0 < self.zoom_out_range[0] <= self.zoom_out_range[1] <= 1.0:
            raise ValueError(f"framing.zoom_out_range must be in (0, 1] and ordered, got {self.zoom_out_range}")
        if not 0.0 <= self.aspect < 1.0:
            raise ValueError(f"framing.aspect must be in [0, 1), got {self.aspect}")


class Backdrop(A.DualTransform):
    """Put the person on a new background: pixels labelled ``BACKGROUND`` in the mask are replaced by a plain
    colour (mostly light, like studio photos), a linear gradient, or a region near the edge of another photo
    (``photos``; mostly street background in full-body shots), blended through a softened mask edge. The mask
    is unchanged. Albumentations has no such op."""

    def __init__(self, photos: Sequence[str | Path] = (), softness: float = 1.2, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.photos = [str(p) for p in photos]
        self.softness = softness

    @property
    def targets_as_params(self) -> list[str]:
        return ["mask"]

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        mask = data["mask"]
        h, w = mask.shape[:2]
        alpha = (mask != BACKGROUND).astype(np.float32)  # 1 = keep the photo (person, and ignored padding)
        if self.softness > 0:
            alpha = cv2.GaussianBlur(alpha, (0, 0), self.softness)
        return {"backdrop": self._backdrop(h, w), "alpha": alpha[..., None]}

    def _backdrop(self, h: int, w: int) -> np.ndarray:
        rng = self.random_generator
        kinds = ["plain", "gradient"] + (["photo"] if self.photos else [])
        kind = kinds[rng.integers(len(kinds))]
        if kind == "photo":
            backdrop = self._photo_edge(self.photos[rng.integers(len(self.photos))], h, w)
            if backdrop is not None:
                return backdrop
        light = rng.random() < 0.6
        colours = rng.uniform(170, 255, (2, 3)) if light else rng.uniform(0, 255, (2, 3))
        if kind == "plain" or kind == "photo":
            colours[1] = colours[0]
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.cos(angle) * xx / max(w, 1) + np.sin(angle) * yy / max(h, 1))[..., None]
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return ((1 - t) * colours[0] + t * colours[1]).clip(0, 255).astype(np.uint8)

    def _photo_edge(self, path: str, h: int, w: int) -> np.ndarray | None:
        """A strip along the left or right edge of another photo, stretched to (h, w) and softly blurred."""
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            return None
        rng = self.random_generator
        ph, pw = image.shape[:2]
        strip = max(1, int(pw * rng.uniform(0.15, 0.3)))
        x0 = 0 if rng.random() < 0.5 else pw - strip
        region = image[:, x0 : x0 + strip, ::-1]  # BGR → RGB
        region = cv2.resize(np.ascontiguousarray(region), (w, h), interpolation=cv2.INTER_LINEAR)
        return cv2.GaussianBlur(region, (0, 0), 2.0)

    def apply(self, img: np.ndarray, backdrop: np.ndarray, alpha: np.ndarray, **params: Any) -> np.ndarray:
        blended = alpha * img.astype(np.float32) + (1 - alpha) * backdrop.astype(np.float32)
        return blended.round().astype(img.dtype)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return mask

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("softness",)


def _framing(
    size: tuple[int, int], scale: tuple[float, float], rotate: float, framing: Framing
) -> list[A.BasicTransform]:
    """The geometric part: one of whole-photo (scale/shift/rotate), zoom-in crop or zoom-out canvas."""
    height, width = size
    whole = [
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
    ]
    p_whole = 1.0 - framing.zoom_in - framing.zoom_out
    if p_whole >= 1.0:
        return whole
    lo, hi = framing.zoom_in_range
    zoom_in = [
        A.LongestMaxSize(max_size_hw=(height, width), interpolation=cv2.INTER_AREA),
        # NEAREST_EXACT: cv2's plain NEAREST shifts upscaled masks by up to half the scale factor (1 px at 3x)
        A.RandomScale(
            scale_limit=(lo - 1.0, hi - 1.0),
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST_EXACT,
            p=1.0,
        ),
        A.Rotate(limit=(-rotate, rotate), border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX, p=0.5),
        A.PadIfNeeded(height, width, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX),
        A.CropNonEmptyMaskIfExists(height, width, ignore_values=[BACKGROUND, IGNORE_INDEX]),
    ]
    zoom_out = [
        *_fit_and_pad(size, fill_mask=BACKGROUND),  # all of the canvas around the photo is background
        A.Affine(
            scale=framing.zoom_out_range,
            translate_percent=(-0.2, 0.2),
            rotate=(-rotate, rotate),
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=BACKGROUND,  # the new canvas is background: a backdrop may fill it
            p=1.0,
        ),
    ]
    branches = [(whole, p_whole), (zoom_in, framing.zoom_in), (zoom_out, framing.zoom_out)]
    return [A.OneOf([A.Sequential(t, p=p) for t, p in branches if p > 0], p=1.0)]


def train_transform(
    size: tuple[int, int],
    scale: tuple[float, float] = (0.75, 1.25),
    rotate: float = 10.0,
    colour_jitter: float = 0.2,
    seed: int | None = None,
    framing: Framing | None = None,
    backdrops: Sequence[str | Path] = (),
) -> A.Compose:
    """Framing (whole photo with random scale/shift/rotation by default; see ``Framing``), horizontal flip,
    colour jitter; the mask follows. ``backdrops``: photos whose edges ``Backdrop`` may use as backgrounds.

    Albumentations keeps its own random state: ``seed`` fixes it (global seeds do not); DataLoader workers reseed
    it (``parsing.data.datamodule.seed_worker``).
    """
    framing = framing or Framing()
    height, width = size
    steps = _framing(size, scale, rotate, framing)
    if framing.aspect > 0:
        stretch = {"x": (1.0 - framing.aspect, 1.0 + framing.aspect), "y": (1.0, 1.0)}
        steps.append(A.Affine(scale=stretch, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX, p=0.5))
    if framing.background > 0:
        steps.append(Backdrop(backdrops, p=framing.background))
    steps += [
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(colour_jitter, colour_jitter, colour_jitter, colour_jitter / 10, p=0.8),
    ]
    if framing.degrade > 0:
        steps.append(
            A.OneOf(
                [
                    A.Downscale(scale_range=(0.3, 0.7), interpolation_pair={"downscale": 3, "upscale": 1}),
                    A.GaussianBlur(blur_limit=(3, 7)),
                    A.ImageCompression(quality_range=(25, 70)),
                    A.GaussNoise(std_range=(0.02, 0.08)),
                ],
                p=framing.degrade,
            )
        )
    return A.Compose([*steps, *_to_tensor()], additional_targets={"valid": "mask"}, seed=seed)


def eval_transform(size: tuple[int, int]) -> A.Compose:
    """Fit inside ``size`` keeping the aspect, pad bottom/right; the top-left (h', w') holds the photo."""
    return A.Compose([*_fit_and_pad(size), *_to_tensor()], additional_targets={"valid": "mask"})
