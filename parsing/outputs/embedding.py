"""What a parse gives search: one vector for the outfit and one per garment, from the same network pass.

- **outfit**: the outfit encoder's hidden layer (the paper's outfit representation), the decoder's features
  averaged over the person (how the outfit looks), the mask's label shares and the encoder's presence
  probabilities, each L2-normalised, weighted, joined and normalised again;
- **garment**: the decoder's features (under the segmentation head, stride 4) averaged inside the garment's mask,
  its mean CIELAB colour and a little shape (height/width of its box, its share of the person, its centre's
  height), weighted the same way.

Inner products of these vectors are the similarities the catalogue ranks by (``parsing.search``). The weights were
chosen on CCP by ``bench/retrieval.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from parsing.labels import NON_GARMENTS

# The outfit vector's parts, weighted: the look (decoder features over the person) first — re-framed copies of a
# photo found at rank 1 0.81 → 0.97, outfit NDCG@10 0.488 → 0.466 against 0.6.0's weights (bench/retrieval.py).
OUTFIT_WEIGHTS = {"hidden": 1.0, "look": 4.0, "shares": 0.5, "presence": 0.5}
FIRST_OUTFIT_WEIGHTS = {"hidden": 1.0, "look": 1.0, "shares": 1.0, "presence": 0.5}  # 0.6.0's
GARMENT_WEIGHTS = {"features": 1.0, "colour": 0.6, "shape": 0.3}
MIN_PIXELS = 4  # a garment on fewer cells of the feature grid (stride 4) gets no vector


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` (…, D) scaled to length 1 (zeros stay zeros)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class GarmentVector:
    """One garment of a photo: its ``vector`` (D,), mean CIELAB ``lab`` (3,), ``share`` of the person, ``box``
    (x, y, w, h) in the photo's pixels."""

    label: str
    vector: np.ndarray
    lab: np.ndarray
    share: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Embedding:
    """A parse's search vectors: ``outfit`` (D,) and ``garments`` (label → ``GarmentVector``)."""

    outfit: np.ndarray
    garments: dict[str, GarmentVector] = field(default_factory=dict)


def outfit_vector(
    hidden: np.ndarray | None, look: np.ndarray, shares: np.ndarray, presence: np.ndarray | None
) -> np.ndarray:
    """hidden (D,) or None, the decoder's features over the person (C,), label shares over the person (K,),
    presence probabilities (K,) or None → (D + C + 2K,)."""
    k = len(shares)
    parts = [
        OUTFIT_WEIGHTS["hidden"] * (unit(hidden) if hidden is not None else np.zeros(256, np.float32)),
        OUTFIT_WEIGHTS["look"] * unit(look),
        OUTFIT_WEIGHTS["shares"] * unit(np.sqrt(shares)),
        OUTFIT_WEIGHTS["presence"] * (unit(presence) if presence is not None else np.zeros(k, np.float32)),
    ]
    return unit(np.concatenate(parts))


def reweigh_outfits(vectors: np.ndarray, sizes: list[int], old: dict, new: dict) -> np.ndarray:
    """Outfit vectors (n, D + C + 2K) made with weights ``old`` → as ``outfit_vector`` makes them with ``new``;
    ``sizes``: the parts' lengths (D, C, K, K). Each part is a unit vector times its weight (``old``'s all > 0)."""
    cuts = np.cumsum([0, *sizes])
    parts = [vectors[:, a:b] * (new[name] / old[name]) for name, a, b in zip(old, cuts[:-1], cuts[1:], strict=True)]
    return unit(np.concatenate(parts, 1))


def person_features(labels: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """The decoder's features (C, fh, fw) averaged over the person (labels ≠ 0, on the feature grid) → (C,)."""
    c, fh, fw = decoded.shape
    person = cv2.resize(labels, (fw, fh), interpolation=cv2.INTER_NEAREST) != 0
    return decoded[:, person].mean(1) if person.any() else decoded.reshape(c, -1).mean(1)


def garment_vectors(
    labels: np.ndarray, image: np.ndarray, decoded: np.ndarray, names: list[str], size: tuple[int, int]
) -> dict[str, GarmentVector]:
    """The mask (h, w) and photo (h, w, 3) at the working size, the decoder's features (C, fh, fw) over the same
    view, the labels' names, the photo's full size (H, W) → a vector per garment of the mask."""
    c, fh, fw = decoded.shape
    h, w = labels.shape
    small = cv2.resize(labels, (fw, fh), interpolation=cv2.INTER_NEAREST)  # the mask on the feature grid
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)  # L 0..255, a/b offset 128
    lab = lab * np.array([100 / 255, 1, 1], np.float32) - np.array([0, 128, 128], np.float32)
    person = labels != 0
    person_pixels = max(int(person.sum()), 1)
    sy, sx = size[0] / h, size[1] / w
    out = {}
    for i in np.unique(labels).tolist():
        if names[i] in NON_GARMENTS:
            continue
        cells = small == i
        if cells.sum() < MIN_PIXELS:
            continue
        features = unit(decoded[:, cells].mean(1))  # (C,)
        mask = labels == i
        colour = lab[mask].mean(0)  # (3,) L*, a*, b*
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        share = float(mask.sum()) / person_pixels
        shape = np.array([np.log((y1 - y0) / (x1 - x0)), np.sqrt(share), (y0 + y1) / 2 / h], np.float32)
        vector = np.concatenate(
            [
                GARMENT_WEIGHTS["features"] * features,
                GARMENT_WEIGHTS["colour"] * colour / 60.0,
                GARMENT_WEIGHTS["shape"] * shape,
            ]
        )
        box = (round(x0 * sx), round(y0 * sy), round((x1 - x0) * sx), round((y1 - y0) * sy))
        out[names[i]] = GarmentVector(names[i], unit(vector), colour.astype(np.float32), share, box)
    return out
