"""A photo on its way into the network: any input (path, PIL image, array) → RGB uint8, bounded in pixels, fitted.

Every input goes through ``parsing.data.io.photo_array`` (EXIF orientation, 16-bit, transparency over white,
shrinking above ``max_pixels``), so a path, the same photo as a PIL image and as an array parse alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from parsing.data.fit import fit_photo
from parsing.data.io import DataError, photo_array, read_photo
from parsing.inference.options import MAX_PIXELS

ImageInput = str | Path | Image.Image | np.ndarray


class ParseError(ValueError):
    """A photo that could not be parsed: ``source`` names it, ``problem`` says why. ``ok`` is False."""

    ok = False

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass
class Photo:
    """A photo ready to parse: the working ``image`` (h, w, 3) uint8 (the photo, or shrunk to ``max_pixels``), its
    own ``size`` (H, W), the network input ``x`` (3, h', w') fitted into the network box and its ``source``."""

    image: np.ndarray
    size: tuple[int, int]
    x: torch.Tensor
    source: str | None = None

    def __getstate__(self) -> dict:
        """Pickled by value (``x`` as a numpy array): a photo from a loader worker or a Ray task then needs no shared
        file descriptor, whose server thread printed tracebacks when Ctrl-C stopped the command mid-transfer."""
        return {**self.__dict__, "x": self.x.detach().cpu().numpy()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({**state, "x": torch.from_numpy(state["x"])})


def as_rgb(image: ImageInput, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, tuple[int, int]]:
    """A path, PIL image (any mode) or array (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or uint16 → RGB
    uint8 (h, w, 3) shrunk to ``max_pixels``, and the photo's size (H, W). A ``DataError`` names what is wrong."""
    if isinstance(image, (str, Path)):
        return read_photo(image, max_pixels)
    if isinstance(image, Image.Image):
        try:
            return photo_array(image, max_pixels)
        except (OSError, ValueError) as err:
            raise DataError("<PIL image>", f"unusable image ({err})") from None
    check_input(image)
    return photo_array(_array_image(image), max_pixels)


def check_input(image: Any) -> None:
    """A TypeError unless ``image`` is a path, a PIL image or a numpy array."""
    if not isinstance(image, (str, Path, Image.Image, np.ndarray)):
        raise TypeError(f"a photo is a path, a PIL image or a numpy array, not {type(image).__name__}")


def _array_image(arr: np.ndarray) -> Image.Image:
    where = f"<array {arr.shape} {arr.dtype}>"
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise DataError(where, "expected (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA")
    if min(arr.shape[:2]) < 1:
        raise DataError(where, "empty image")
    if arr.dtype == np.uint16:
        if arr.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(arr))  # mode I;16: scaled like a 16-bit PNG
        arr = np.clip(arr.astype(np.float64) / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.dtype != np.uint8:
        raise DataError(where, "pixels must be uint8 (0..255) or uint16 (0..65535)")
    return Image.fromarray(np.ascontiguousarray(arr))


def prepare(
    image: ImageInput, size: tuple[int, int], max_pixels: int | None = MAX_PIXELS, source: str | None = None
) -> Photo:
    """Any input → a ``Photo`` fitted into the network box ``size`` (H, W) (turned for landscape photos)."""
    rgb, full = as_rgb(image, max_pixels)
    if source is None and isinstance(image, (str, Path)):
        source = str(image)
    return fitted(rgb, full, size, source)


def fitted(rgb: np.ndarray, full: tuple[int, int], size: tuple[int, int], source: str | None = None) -> Photo:
    """An RGB working photo (h, w, 3) already read (``as_rgb``, ``read_photo``) and its own size (H, W) → a
    ``Photo`` fitted into the network box ``size``."""
    return Photo(rgb, full, fit_photo(rgb, size), source)


def to_size(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map (h, w) uint8 at the working size → (H, W), nearest neighbour with pixel centres aligned."""
    if labels.shape == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def describe_input(image: Any) -> str:
    """A short name for an input in error messages: its path, or its kind."""
    if isinstance(image, (str, Path)):
        return str(image)
    if isinstance(image, np.ndarray):
        return f"<array {image.shape} {image.dtype}>"
    return f"<{type(image).__name__}>"
