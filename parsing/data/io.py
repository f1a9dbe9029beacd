"""Reading photos and masks, writing palette PNGs. Every error names the file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DataError(ValueError):
    """A data file that cannot be used; the message starts with its path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def read_image(path: str | Path) -> np.ndarray:
    """An RGB uint8 array (H, W, 3) with EXIF orientation applied; grayscale, RGBA, palette and 16-bit converted."""
    return read_photo(path)[0]


def read_photo(path: str | Path, max_pixels: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """``read_image``, and the photo's size (H, W) after EXIF orientation. With ``max_pixels``, a larger photo comes
    back shrunk (aspect kept) to at most that many pixels: JPEGs are decoded at 1/2, 1/4 or 1/8 scale directly
    (``Image.draft``), so an 80-megapixel photo never occupies its full size in memory."""
    try:
        with Image.open(path) as im:
            return photo_array(im, max_pixels)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except UnidentifiedImageError:
        raise DataError(path, "not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(path, f"unreadable image ({err})") from None


def photo_array(im: Image.Image, max_pixels: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """A PIL image of any mode → RGB uint8 (h, w, 3) with EXIF orientation applied (16-bit scaled, transparency
    over white), shrunk to ``max_pixels`` when larger, and its size (H, W) after orientation."""
    w, h = im.size
    if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that turn the photo by 90°
        w, h = h, w
    scale = 1.0 if max_pixels is None or w * h <= max_pixels else (max_pixels / (w * h)) ** 0.5
    if scale < 1.0 and im.format == "JPEG":
        im.draft("RGB", (math.ceil(im.size[0] * scale), math.ceil(im.size[1] * scale)))
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    if scale < 1.0 and im.size[0] * im.size[1] > max_pixels:
        im = im.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BOX)
    return np.array(im, dtype=np.uint8), (h, w)  # a writable copy


def read_png_mask(path: str | Path) -> np.ndarray:
    """A label mask (H, W) uint8 from a single-channel PNG (mode L or P: pixel values are label ids)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise DataError(path, f"mask must be a single-channel PNG (mode L or P), got mode {im.mode}")
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except UnidentifiedImageError:
        raise DataError(path, "not an image (unrecognised format)") from None
    except OSError as err:
        raise DataError(path, f"unreadable mask ({err})") from None
    if arr.max(initial=0) > 255:
        raise DataError(path, f"label value {int(arr.max())} is above 255")
    return arr.astype(np.uint8)


def read_ccp_mask(path: str | Path) -> np.ndarray:
    """CCP pixel-level annotation: the ``groundtruth`` variable of a .mat file, uint8 (H, W)."""
    import scipy.io  # here: 0.17 s of every start-up, and only CCP's annotations need it

    try:
        arr = scipy.io.loadmat(str(path), variable_names=["groundtruth"]).get("groundtruth")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (ValueError, OSError, TypeError) as err:
        raise DataError(path, f"unreadable .mat file ({err})") from None
    if arr is None or arr.ndim != 2:
        raise DataError(path, "no 2-D 'groundtruth' variable")
    if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        raise DataError(path, f"label values {int(arr.min())}..{int(arr.max())} outside 0..255")
    return arr.astype(np.uint8)


def read_ccp_tags(path: str | Path, num_labels: int | None = None) -> np.ndarray:
    """CCP image-level annotation: the ``tags`` label ids (n,); with ``num_labels``, ids outside 0..num_labels-1
    are a DataError."""
    import scipy.io

    try:
        tags = scipy.io.loadmat(str(path), variable_names=["tags"]).get("tags")
    except (ValueError, OSError, TypeError) as err:
        raise DataError(path, f"unreadable .mat file ({err})") from None
    if tags is None:
        raise DataError(path, "no 'tags' variable")
    tags = np.asarray(tags, dtype=np.int64).reshape(-1)
    bad = sorted({int(t) for t in tags if t < 0 or t >= num_labels}) if num_labels is not None else []
    if bad:
        raise DataError(path, f"tag ids {bad} outside the label set (0..{num_labels - 1})")
    return tags


def write_mask_png(path: str | Path, mask: np.ndarray, flat_palette: list[int]) -> None:
    """Write label indices (H, W) as a palette ("P" mode) PNG; pixel values stay the label indices."""
    im = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="P")
    im.putpalette(flat_palette)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=False)


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by suffix), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
