"""Refocus: parse a photo again at a scale closer to the one the network was trained at, where its person is
too small (a crop around them) or cut by the frame (the photo on a wider canvas).

The network is trained at CCP's framing (a full-body person filling the frame's height) and loses the person's
garments when they are small in the photo: a distant shot, a person on a big canvas, a group photo. After the
first parse, ``person_box`` finds the box around every non-background pixel, adds a margin, widens it to the
network's aspect ratio and keeps it when fitting just the box into the network would enlarge the person at least
``min_gain`` times more than fitting the whole photo. ``parse_box`` parses that crop at the network's full size
and ``refocused`` pastes its labels into the first parse (outside the box, the first parse stays).

The other way round, ``widened``: when the first parse's person is cut by both the top and the bottom edge of the
photo (a close-up: no head, no feet), the photo is also parsed shrunk onto a canvas ``canvas`` times its size
(filled with the photo's border colour), and the two parses' logits averaged. Photos cut at one edge only
(a waist-up or a lower-body shot) are left alone: measured, a wider view did not help them (README, "Results").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from parsing.box import Box
from parsing.data.fit import fit_photo
from parsing.inference.crf import CRFParams
from parsing.inference.decode import parse_photo
from parsing.model.backends import Backend


def _fit(h: int, w: int, size: tuple[int, int]) -> float:
    """The scale that fits an (h, w) photo inside the network box (turned for landscape photos)."""
    long, short = max(size), min(size)
    return min(short / h, long / w) if w > h else min(long / h, short / w)


def _span(counts: torch.Tensor, trim: float) -> tuple[int, int]:
    """First and last index (exclusive) of a histogram's mass, ``trim`` of it cut at each end (stray pixels)."""
    cum = counts.cumsum(0).double()
    total = float(cum[-1])
    first = int(torch.searchsorted(cum, trim * total, right=True))
    last = int(torch.searchsorted(cum, (1 - trim) * total)) + 1
    return first, min(max(last, first + 1), len(counts))


def person_box(
    labels: torch.Tensor, size: tuple[int, int], min_gain: float = 1.5, margin: float = 0.08, trim: float = 0.002
) -> Box | None:
    """A label map (h, w) (0 = background) → the box to parse again, or None when refocusing gains too little.

    The box holds the non-background pixels (``trim`` of them cut at each side), ``margin`` × its size added at
    each side, widened (or heightened) to the network ``size``'s aspect ratio within the photo."""
    h, w = labels.shape
    fg = labels != 0
    if int(fg.sum()) < 0.001 * h * w:
        return None  # nothing parsed as a person: nothing to look at closer
    top, bottom = _span(fg.sum(1), trim)
    left, right = _span(fg.sum(0), trim)
    bh, bw = bottom - top, right - left
    top, bottom = top - margin * bh, bottom + margin * bh
    left, right = left - margin * bw, right + margin * bw
    bh, bw = bottom - top, right - left
    long, short = max(size), min(size)
    aspect = long / short if bw > bh else short / long  # the network box's width / height for this orientation
    if bw < aspect * bh:  # too narrow: widen around the centre
        cx, bw = (left + right) / 2, min(w, aspect * bh)
        left, right = cx - bw / 2, cx + bw / 2
    else:
        cy, bh = (top + bottom) / 2, min(h, bw / aspect)
        top, bottom = cy - bh / 2, cy + bh / 2
    top, left = max(0.0, top - max(0.0, bottom - h)), max(0.0, left - max(0.0, right - w))  # moved inside
    t, lft = max(0, int(round(top))), max(0, int(round(left)))
    b, r = min(h, t + int(round(bh))), min(w, lft + int(round(bw)))
    if b - t < 8 or r - lft < 8 or _fit(b - t, r - lft, size) < min_gain * _fit(h, w, size):
        return None
    return t, lft, b, r


def parse_box(
    backend: Backend,
    size: tuple[int, int],
    image: np.ndarray | torch.Tensor,
    box: Box,
    crf: str,
    view: Any = None,
    tta: str = "none",
    crf_params: CRFParams | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Parse the photo's crop ``box`` (the network on ``backend``) → its labels (bh, bw), decoded garment set,
    presence logits (K,) or None, and the crop's logits (K, h', w') at network size (not padded)."""
    t, left, b, r = box
    crop = image[t:b, left:r]
    crop = crop.contiguous() if isinstance(crop, torch.Tensor) else np.ascontiguousarray(crop)
    x = fit_photo(crop.numpy() if isinstance(crop, torch.Tensor) else crop, size)  # (3, h', w')
    logits, presence = backend.infer(x[None].to(backend.device), tta)
    p = None if presence is None else presence[0]
    labels, chosen = parse_photo(backend.spec, logits[0], p, (b - t, r - left), crop, crf, view, crf_params)
    return labels, chosen, p, logits[0]


def refocused(
    backend: Backend,
    size: tuple[int, int],
    image: np.ndarray | torch.Tensor,
    labels: torch.Tensor,
    chosen: torch.Tensor | None,
    presence: torch.Tensor | None,
    crf: str,
    view: Any = None,
    tta: str = "none",
    min_gain: float = 1.5,
    crf_params: CRFParams | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, Box | None, torch.Tensor | None]:
    """The first parse of a photo (its labels (h, w), garment set, presence logits) → the same after refocusing
    (``min_gain`` 0: never), with the box parsed again and its logits (K, h', w'), or None for both."""
    box = person_box(labels, size, min_gain) if min_gain else None
    if box is None:
        return labels, chosen, presence, None, None
    inner, chosen, presence, box_logits = parse_box(backend, size, image, box, crf, view, tta, crf_params)
    return paste(labels, inner, box), chosen, presence, box, box_logits


def paste(labels: torch.Tensor, inner: torch.Tensor, box: Box) -> torch.Tensor:
    """The label map (h, w) with the box's own parse ``inner`` (bh, bw) in place of its part (a new tensor)."""
    t, left, b, r = box
    out = labels.clone()
    out[t:b, left:r] = inner.to(out.dtype)
    return out


def close_up(logits: torch.Tensor, min_share: float = 0.1, rows: float = 0.02) -> bool:
    """One photo's logits (K, h', w'), padding cropped → whether its person is cut by both the top and the bottom
    edge of the frame: at least ``min_share`` of its top and of its bottom ``rows`` (share of its height) parsed
    as something other than background."""
    r = max(1, round(rows * logits.shape[1]))
    top, bottom = logits[:, :r].argmax(0) != 0, logits[:, -r:].argmax(0) != 0  # (r, w')
    return float(top.float().mean()) >= min_share and float(bottom.float().mean()) >= min_share


def on_canvas(x: torch.Tensor, canvas: float) -> tuple[torch.Tensor, Box]:
    """A network input (3, h', w') → the same photo shrunk ``canvas`` times in the middle of an (h', w') canvas of
    its border's median colour, and the box (top, left, bottom, right) the photo occupies there."""
    _, h, w = x.shape
    sh, sw = max(1, round(h / canvas)), max(1, round(w / canvas))
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], 1)  # (3, 2h' + 2w')
    out = border.median(1).values[:, None, None].expand(3, h, w).clone()  # (3, h', w')
    t, left = (h - sh) // 2, (w - sw) // 2
    out[:, t : t + sh, left : left + sw] = F.interpolate(x[None], (sh, sw), mode="area")[0]
    return out, (t, left, t + sh, left + sw)


def widened(
    backend: Backend, x: torch.Tensor, logits: torch.Tensor, canvas: float = 1.5, tta: str = "none"
) -> tuple[torch.Tensor, bool]:
    """A photo's network input (3, h', w') and logits (K, h', w') (padding cropped) → the mean of its and its
    ``canvas``-times-wider view's logits when it is a ``close_up`` (else its own logits), and whether it was
    widened (``canvas`` ≤ 1: never)."""
    if canvas <= 1 or not close_up(logits):
        return logits, False
    wide, (t, left, b, r) = on_canvas(x, canvas)
    wide_logits, _ = backend.infer(wide[None].to(backend.device), tta)  # (1, K, h', w')
    inner = F.interpolate(wide_logits[:, :, t:b, left:r].float(), logits.shape[1:], mode="bilinear")[0]
    return (logits.float() + inner) / 2, True  # (K, h', w'): the mean logits, as flip TTA takes them
