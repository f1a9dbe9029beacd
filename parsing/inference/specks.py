"""Specks: garments covering a tiny share of the person, removed from a finished label map (``Parser``'s
``min_share``); each of their pixels takes the label of the nearest pixel that keeps its label."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from parsing.labels import NON_GARMENTS


def remove_specks(labels: torch.Tensor, names: Sequence[str], min_share: float) -> torch.Tensor:
    """A label map (h, w) → the same with every garment covering less than ``min_share`` of the person (the
    pixels not labelled background) relabelled: each of its pixels takes the label of the nearest pixel that keeps
    its label. Relative to the person, not the photo: a small or distant person keeps their small garments."""
    counts = torch.bincount(labels.flatten().long(), minlength=len(names)).cpu()
    background = sum(int(counts[i]) for i, n in enumerate(names) if n in ("null", "background"))
    needed = min_share * (labels.numel() - background)
    specks = [i for i, c in enumerate(counts.tolist()) if 0 < c < needed and names[i] not in NON_GARMENTS]
    if not specks:
        return labels
    out = labels.cpu().numpy().copy()
    speck = np.isin(out, specks)
    if speck.all():
        return labels
    rows, cols = nearest_kept(speck)
    out[speck] = out[rows, cols]
    return torch.from_numpy(out).to(labels.device)


def nearest_kept(speck: np.ndarray, margin: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A bool map (h, w) → for its True pixels (row-major), the row and column of the nearest False pixel.

    The Euclidean distance transform runs on a box around the True pixels, ``margin`` wider each way (grown until
    it holds the answer): every pixel outside the box lies farther than the one found inside it, so the answer is
    the whole map's (specks are small: a box is ~10× faster than the whole photo)."""
    h, w = speck.shape
    ys, xs = np.nonzero(speck.any(1))[0], np.nonzero(speck.any(0))[0]
    while True:
        t, b = max(0, ys[0] - margin), min(h, ys[-1] + 1 + margin)
        left, r = max(0, xs[0] - margin), min(w, xs[-1] + 1 + margin)
        box = speck[t:b, left:r]
        whole = (t, left, b, r) == (0, 0, h, w)
        if whole or not box.all():
            dist, (ny, nx) = ndimage.distance_transform_edt(box, return_indices=True)  # (h', w'), 2 × (h', w')
            # the distance from each pixel to the nearest pixel outside the box (∞ where the box meets the edge)
            inf = np.inf
            down = np.arange(1, b - t + 1, dtype=float)[:, None] if t > 0 else np.full((b - t, 1), inf)
            up = np.arange(b - t, 0, -1, dtype=float)[:, None] if b < h else np.full((b - t, 1), inf)
            right = np.arange(1, r - left + 1, dtype=float)[None] if left > 0 else np.full((1, r - left), inf)
            leftward = np.arange(r - left, 0, -1, dtype=float)[None] if r < w else np.full((1, r - left), inf)
            outside = np.minimum(np.minimum(down, up), np.minimum(right, leftward))  # (h', w')
            if whole or bool((dist[box] < outside[box]).all()):
                return ny[box] + t, nx[box] + left
        margin *= 4
