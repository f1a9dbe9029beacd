"""How sure a parse is of the names it gives: each label's mean probability over its own pixels, and the runner-up.

The parser finds garment regions better than it names them (a long coat or a dress, a purse or a bag). For each
label of a finished label map, ``label_confidence`` averages the network's class probabilities over the pixels the
map gives that label: ``confidence`` is the label's own mean probability there, ``alternative`` the other label
with the highest mean probability on the same pixels (the name the network hesitated with) and
``alternative_confidence`` its mean probability. Measured on the CCP validation photos (`bench/garments.py`,
"Confidence"), a garment named at confidence ≥ 0.8 is almost always in the photo, one below 0.4 mostly is not;
batch users can send the unsure ones to review or parse them again with ``--garments``.

Probabilities are read on the network's own grid (every ``stride``-th cell), the labels of the final map (after
exclusive-pair decoding, the CRF, refocusing) at those cells' centres; with a label view (tags, merged groups) in
the view's labels, as the map is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from parsing.box import Box


def sampled_probs(logits: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Logits (K, h', w') → the softmax over labels at every ``stride``-th cell (n_y, n_x, K): what the confidence
    step and the pooled garment decoding both read (computed once per photo by the parser)."""
    first = stride // 2
    return logits[:, first::stride, first::stride].permute(1, 2, 0).float().softmax(-1)


def probability_sums(
    labels: torch.Tensor,
    logits: torch.Tensor,
    ids: torch.Tensor,
    num_labels: int,
    box: Box | None = None,
    skip: Box | None = None,
    stride: int = 2,
    select: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    sampled: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label map (h, w) of output ids and logits (L, h', w') covering its ``box`` (the whole map when None), row i
    for output label ``ids[i]`` → sums (N, N) of P(column) over the sampled cells the map labels row, and their
    counts (N,). Cells whose pixel falls inside ``skip`` are left out (a part parsed again on its own). ``select``:
    logits (K, a, b) → the view's (L, a, b) and ids (L,), applied to the sampled cells only (it works per cell)."""
    h, w = labels.shape
    top, left, bottom, right = box or (0, 0, h, w)
    lh, lw = logits.shape[1:]
    first = stride // 2
    cells = logits[:, first::stride, first::stride]  # (K, n_y, n_x): a view, no copy
    if select is not None:  # merged groups: summed over the sampled cells, not the whole map
        cells, ids = select(cells)
    cells = cells.permute(1, 2, 0)  # (n_y, n_x, L)
    probs = cells.float().softmax(-1) if sampled is None else sampled  # 4x less work than the whole map at stride 2
    rows = torch.arange(first, lh, stride, device=logits.device)
    cols = torch.arange(first, lw, stride, device=logits.device)
    ys = (top + ((rows + 0.5) * (bottom - top) / lh).long()).clamp(max=bottom - 1)  # the cells' centres on the map
    xs = (left + ((cols + 0.5) * (right - left) / lw).long()).clamp(max=right - 1)
    at = labels.to(logits.device)[ys][:, xs].long()  # (n_y, n_x)
    if skip is not None:
        st, sl, sb, sr = skip
        keep = ~(((ys >= st) & (ys < sb))[:, None] & ((xs >= sl) & (xs < sr))[None, :])  # (n_y, n_x)
        at, probs = at[keep], probs[keep]
    at, probs = at.reshape(-1), probs.reshape(-1, probs.shape[-1])  # (n,), (n, L)
    sums = torch.zeros(num_labels, num_labels, device=logits.device)
    sums[:, ids.to(logits.device)] = torch.zeros(num_labels, len(ids), device=logits.device).index_add_(0, at, probs)
    return sums.cpu(), torch.bincount(at, minlength=num_labels).cpu()


def label_confidence(
    labels: torch.Tensor,
    logits: torch.Tensor,
    names: list[str],
    view: Any = None,
    box: Box | None = None,
    box_logits: torch.Tensor | None = None,
    stride: int = 2,
    sampled: torch.Tensor | None = None,
) -> dict[int, dict[str, Any]]:
    """A finished label map (h, w) and the photo's logits (K, h', w') it was decoded from → label id →
    ``confidence``, ``alternative`` (a name) and ``alternative_confidence`` for every label the sampled cells show.
    ``names``: the map's labels; ``view``: the ``LabelView`` the map was made with, if any; ``box``: a part of the
    map parsed again on its own (refocus), read from its ``box_logits`` (K, h'', w'') instead. ``sampled``:
    ``sampled_probs(logits, stride)``, when already computed."""
    n = len(names)
    sums, counts = torch.zeros(n, n), torch.zeros(n, dtype=torch.long)
    sources = [(logits, None, box)]  # (logits, the part of the map they cover, a part they leave to others)
    if box is not None:
        sources.append((box_logits, box, None))
    select = None
    if view is not None and not view.identity:

        def select(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (K, a, b) → (L, a, b), ids (L,)
            z, _, ids = view.select(z, None)  # the labels the map could take
            return z, ids

    for z, covers, skip in sources:
        shared = sampled if z is logits and select is None else None
        s, c = probability_sums(labels, z, torch.arange(z.shape[0]), n, covers, skip, stride, select, shared)
        sums, counts = sums + s, counts + c
    out = {}
    for label in counts.nonzero().flatten().tolist():
        mean = sums[label] / counts[label]  # (N,) mean probability of each label on this label's cells
        own = float(mean[label])
        mean[label] = -1.0
        other = int(mean.argmax())
        out[label] = {
            "confidence": round(own, 3),
            "alternative": names[other],
            "alternative_confidence": round(float(mean[other]), 3),
        }
    return out
