"""What each garment of a parse looks like: its separate pieces, its dominant named colours, and its cut-out.

* ``pieces`` — connected regions of one label above a minimum area (two shoes, two earrings), with boxes;
* ``colours`` — up to 3 dominant colours of a garment's interior pixels (its edges eroded), clustered in OKLab
  (k-means, ``scipy.cluster.vq.kmeans2``), each with its share, hex value and the nearest CSS colour name by
  CIEDE2000 (conversions and ΔE from ``colour-science``, names from ``webcolors``);
* ``cutout`` — the garment as an RGBA image cropped to its box, alpha from the mask (optionally feathered).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.cluster.vq import kmeans2

MAX_SAMPLES = 4000  # pixels per garment used for its colours
MIN_COLOUR_SHARE = 0.1  # colours covering less of a garment are dropped
SAME_COLOUR = 0.05  # OKLab distance under which two clusters are one colour


def pieces(mask: np.ndarray, min_share: float = 0.001, scale: tuple[float, float] = (1.0, 1.0)) -> list[dict]:
    """Connected pieces (8-neighbour) of a binary mask (H, W) covering ≥ ``min_share`` of it, largest first:
    ``bbox`` [x, y, w, h] multiplied by ``scale`` (sy, sx) into the photo's pixels, and ``share`` of the photo."""
    regions, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return []
    areas = np.bincount(regions.ravel(), minlength=count + 1)[1:]
    sy, sx = scale
    found = []
    for i, box in enumerate(ndimage.find_objects(regions)):
        if box is None or areas[i] < min_share * mask.size:
            continue
        y, x = box[0].start, box[1].start
        h, w = box[0].stop - y, box[1].stop - x
        bbox = [round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))]
        found.append({"bbox": bbox, "share": round(float(areas[i]) / mask.size, 5)})
    return sorted(found, key=lambda piece: -piece["share"])


@functools.cache
def _colour() -> Any:
    """colour-science, imported once without its warning that matplotlib (its plotting, unused here) is missing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Matplotlib.*")
        import colour
    return colour


@functools.cache
def _css_names() -> tuple[list[str], np.ndarray]:
    """CSS colour names and their CIELAB values."""
    import webcolors

    colour = _colour()

    names = webcolors.names("css3")
    rgb = np.array([webcolors.name_to_rgb(n) for n in names], dtype=np.float64) / 255.0
    return names, colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb))


def colour_name(rgb: np.ndarray) -> str:
    """The CSS colour name nearest (CIEDE2000) to an sRGB colour (3,) in [0, 1]."""
    colour = _colour()

    names, labs = _css_names()
    lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(rgb, dtype=np.float64)))
    return names[int(np.argmin(colour.delta_E(lab[None], labs, method="CIE 2000")))]


def colours(image: np.ndarray, mask: np.ndarray, k: int = 3, erode: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``k`` dominant colours of the photo (H, W, 3) uint8 inside a binary mask (H, W), largest first:
    ``hex``, ``name`` (nearest CSS colour) and ``share`` of the garment's interior pixels. The mask is eroded by
    ``erode`` pixels first (edges blend with the neighbours), unless that leaves nothing."""
    colour = _colour()

    inner = ndimage.binary_erosion(mask, iterations=erode) if erode else mask
    if inner.sum() < 20:
        inner = mask
    pixels = image[inner]
    if len(pixels) == 0:
        return []
    rng = np.random.default_rng(seed)
    if len(pixels) > MAX_SAMPLES:
        pixels = pixels[rng.choice(len(pixels), MAX_SAMPLES, replace=False)]
    rgb = pixels.astype(np.float64) / 255.0
    oklab = colour.XYZ_to_Oklab(colour.sRGB_to_XYZ(rgb))  # (N, 3)
    k = min(k, len(np.unique(pixels, axis=0)))
    centres, assigned = kmeans2(oklab, k, minit="++", seed=rng) if k > 1 else (oklab.mean(0, keepdims=True), None)
    assigned = np.zeros(len(oklab), int) if assigned is None else assigned
    groups = [np.flatnonzero(assigned == c) for c in range(len(centres))]
    merged = True
    while merged:  # clusters of the same colour are one colour
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if len(groups[a]) and len(groups[b]):
                    gap = np.linalg.norm(oklab[groups[a]].mean(0) - oklab[groups[b]].mean(0))
                    if gap < SAME_COLOUR:
                        groups[a], groups[b] = np.concatenate([groups[a], groups[b]]), groups[b][:0]
                        merged = True

    def mean_rgb(members: np.ndarray) -> np.ndarray:  # the members' mean colour, sRGB in [0, 1]
        return np.clip(colour.XYZ_to_sRGB(colour.Oklab_to_XYZ(oklab[members].mean(0))), 0.0, 1.0)

    named: dict[str, np.ndarray] = {}  # clusters that get the same name are one colour too
    for members in groups:
        if len(members):
            name = colour_name(mean_rgb(members))
            named[name] = np.concatenate([named.get(name, members[:0]), members])
    found = []
    for name, members in named.items():
        share = len(members) / len(rgb)
        if share >= MIN_COLOUR_SHARE:
            mean = mean_rgb(members)
            hex_value = "#" + "".join(f"{round(c * 255):02x}" for c in mean)
            found.append({"hex": hex_value, "name": name, "share": round(share, 3)})
    return sorted(found, key=lambda c: -c["share"])


def cutout(image: np.ndarray, mask: np.ndarray, margin: int = 4, feather: float = 0.0) -> Image.Image | None:
    """The photo (H, W, 3) uint8 where a binary mask (H, W) is set, as RGBA cropped to the mask's box plus
    ``margin`` pixels; alpha = 255 × mask, softened by a Gaussian of ``feather`` pixels (0: exactly the mask)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    h, w = mask.shape
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + 1 + margin)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + 1 + margin)
    alpha = mask[y0:y1, x0:x1].astype(np.float32)
    if feather > 0:
        alpha = ndimage.gaussian_filter(alpha, feather)
    rgba = np.dstack([image[y0:y1, x0:x1], np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA")
