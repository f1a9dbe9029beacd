"""What a parse keeps of the network's answer: all probabilities at the working size (``probs=True``), or the
top labels on the small edit grid (``editable=True``) that ``Parse.click`` reads."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from parsing.inference.label_view import LabelView
from parsing.outputs.edit import Hints, grid_size


def photo_probs(
    z: torch.Tensor, z_box: torch.Tensor | None, box: tuple[int, int, int, int] | None, work: tuple[int, int]
) -> np.ndarray:
    """(K, h, w) float16 softmax of the model's labels at the working size (the refocused box pasted in)."""
    full = F.interpolate(z[None].float(), size=work, mode="bilinear")[0]  # (K, h, w)
    if box is not None:
        t, left, b, r = box
        full[:, t:b, left:r] = F.interpolate(z_box[None].float(), (b - t, r - left), mode="bilinear")[0]
    return full.softmax(0).half().cpu().numpy()


def edit_hints(
    z: torch.Tensor,
    z_box: torch.Tensor | None,
    box: tuple[int, int, int, int] | None,
    work: tuple[int, int],
    view: LabelView | None,
    labels: int,
) -> Hints:
    """The network's top labels on the edit grid, in the parse's labels (a merged group sums its members)."""
    grid = grid_size(work)
    full = F.interpolate(z[None].float(), size=grid, mode="bilinear")[0]  # (K, gh, gw)
    if box is not None:
        sy, sx = grid[0] / work[0], grid[1] / work[1]
        t, left, b, r = round(box[0] * sy), round(box[1] * sx), round(box[2] * sy), round(box[3] * sx)
        if b > t and r > left:
            full[:, t:b, left:r] = F.interpolate(z_box[None].float(), (b - t, r - left), mode="bilinear")[0]
    probs = full.softmax(0)  # (K, gh, gw)
    if view is not None:
        group = view.group.to(probs.device)
        probs = torch.zeros(labels, *grid, device=probs.device).index_add_(0, group, probs)  # (L, gh, gw)
    return Hints.from_probs(probs.cpu().numpy())
