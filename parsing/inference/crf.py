"""Dense CRF after the network: the pydensecrf reference (``dense``) and a batched torch mean-field (``fast``).

Both minimise the same energy (Krähenbühl & Koltun): a unary from the network, a bilateral kernel (position and
colour) and a Gaussian kernel (position), each with symmetric normalisation, and a label compatibility that is
Potts (cost 1 between different labels) with a larger cost (``exclusive_cost``) between garments that are never
worn together.

``parsing.inference.crf_fast`` explains the ``fast`` CRF, ``parsing.inference.crf_dense`` wraps pydensecrf; this
module applies either to one photo.
"""

from __future__ import annotations

import numpy as np
import torch

from parsing.inference.crf_dense import MissingCRFError, as_rgb_uint8, dense_crf, densecrf
from parsing.inference.crf_fast import _cpu_mode, _fast_crf, argmax, fast_crf, softmax
from parsing.inference.crf_params import CRFKind, CRFParams

__all__ = [
    "CRFKind", "CRFParams", "MissingCRFError", "apply_crf", "argmax", "as_rgb_uint8", "compatibility", "dense_crf",
    "densecrf", "fast_crf", "refine_labels", "softmax",
]  # fmt: skip


def compatibility(num_classes: int, exclusive: torch.Tensor | np.ndarray | None, exclusive_cost: float) -> np.ndarray:
    """Label compatibility costs (K, K) float32: 0 on the diagonal, 1 between labels, ``exclusive_cost`` for
    exclusive pairs."""
    compat = 1.0 - np.eye(num_classes, dtype=np.float32)
    if exclusive is not None:
        pairs = np.asarray(exclusive, dtype=bool)
        compat[pairs | pairs.T] = exclusive_cost
    return compat


def apply_crf(
    kind: CRFKind,
    logits: torch.Tensor,
    image: np.ndarray | torch.Tensor,
    params: CRFParams,
    exclusive: torch.Tensor | None = None,
) -> torch.Tensor:
    """One photo: logits (K, H, W) at its own size and its image → labels (H, W) long (argmax when ``none``)."""
    if kind == "none" or params.unary == "labels":
        return refine_labels(kind, argmax(logits, 0), logits.shape[0], image, params, exclusive)
    compat = _compat(logits.shape[0], exclusive, params)
    if kind == "dense":
        unary = -logits.float().log_softmax(0).cpu().numpy()
        return torch.from_numpy(dense_crf(unary, image, params, compat)).long().to(logits.device)
    return fast_crf(logits[None], _photo(image, logits.device), params, compat)[0]


def refine_labels(
    kind: CRFKind,
    labels: torch.Tensor,
    num_classes: int,
    image: np.ndarray | torch.Tensor,
    params: CRFParams,
    exclusive: torch.Tensor | None = None,
) -> torch.Tensor:
    """The paper's CRF (labels unary) needs only the network's label map: labels (H, W) at the photo's size and
    its image → labels (H, W) long (unchanged when ``none``)."""
    if kind == "none":
        return labels
    compat = _compat(num_classes, exclusive, params)
    if kind == "dense":  # label 0 is a class here (null), not "unsure"
        densecrf()  # the clear error first, when pydensecrf is missing
        from pydensecrf.utils import unary_from_labels

        unary = unary_from_labels(labels.cpu().numpy(), num_classes, params.gt_prob, zero_unsure=False)
        unary = unary.reshape(num_classes, *labels.shape)
        return torch.from_numpy(dense_crf(unary, image, params, compat)).long().to(labels.device)
    with _cpu_mode(labels.device):
        return _fast_crf(labels[None], None, num_classes, _photo(image, labels.device), params, compat, None)[0]


def _photo(image: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Any photo array → (1, 3, H, W) uint8 on ``device``, as the fast CRF takes it."""
    return torch.from_numpy(as_rgb_uint8(image)).to(device).permute(2, 0, 1)[None]


def _compat(num_classes: int, exclusive: torch.Tensor | None, params: CRFParams) -> np.ndarray:
    pairs = None if exclusive is None else exclusive.cpu().numpy()
    return compatibility(num_classes, pairs, params.exclusive_cost)
