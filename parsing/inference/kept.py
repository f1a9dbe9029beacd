"""What a parse keeps of the network's answer: all probabilities at the working size (``probs=True``), the top
labels on the small edit grid (``editable=True``) that ``Parse.click`` reads, search vectors (``embed=True``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from parsing.inference.label_view import LabelView
from parsing.outputs.edit import Hints, grid_size
from parsing.outputs.embedding import Embedding, garment_vectors, outfit_vector, person_features


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


def embed(
    labels: np.ndarray,
    image: np.ndarray,
    features: tuple[torch.Tensor, torch.Tensor | None],
    presence: torch.Tensor | None,
    names: list[str],
    size: tuple[int, int],
) -> Embedding:
    """The mask (h, w) and photo at the working size, the network's search features (decoder (C, h'/4, w'/4),
    hidden (D,) or None), presence probabilities (L,) or None → the parse's ``Embedding``."""
    decoded, hidden = features
    counts = np.bincount(labels.ravel(), minlength=len(names)).astype(np.float32)
    counts[0] = 0.0  # shares of the person
    shares = counts / max(float(counts.sum()), 1.0)
    decoded = decoded.float().cpu().numpy()  # (C, h'/4, w'/4)
    outfit = outfit_vector(
        None if hidden is None else hidden.float().cpu().numpy(),
        person_features(labels, decoded),
        shares,
        None if presence is None else presence.float().cpu().numpy(),
    )
    return Embedding(outfit, garment_vectors(labels, image, decoded, names, size))
