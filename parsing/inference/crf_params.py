"""The CRF's kinds and parameters (no torch needed: the command line and ``ParseOptions`` read them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CRFKind = Literal["none", "dense", "fast"]
Unary = Literal["labels", "softmax"]


DENSE_ITERATIONS = 10  # the paper's
FAST_ITERATIONS = 3  # the fast CRF's grid settles sooner: 3, 5 and 10 scored within 0.01 mIoU on CCP validation


@dataclass
class CRFParams:
    """The paper's CRF: unary from the argmax labels (``gt_prob`` on the predicted label, the rest spread evenly),
    bilateral σxy 30 / σrgb 10 / weight 10, Gaussian σxy 3 / weight 10, 10 mean-field iterations.

    ``unary="softmax"`` uses the network's probabilities instead. ``exclusive_cost`` is the compatibility cost of
    an exclusive garment pair (1 = plain Potts). ``iterations``: mean-field steps, by default 10 for the dense CRF
    (the paper's) and 3 for the fast one. ``downsample``, ``taps`` and ``active_prob`` tune the fast CRF only:
    grid step in pixels, kernel samples per side of the window (which covers ±2σ), and the probability a label
    must reach somewhere to get its own channel.
    """

    unary: Unary = "labels"
    gt_prob: float = 0.5
    bilateral_sxy: float = 30.0
    bilateral_srgb: float = 10.0
    bilateral_weight: float = 10.0
    gaussian_sxy: float = 3.0
    gaussian_weight: float = 10.0
    iterations: int | None = None
    exclusive_cost: float = 3.0
    downsample: int = 6
    taps: int = 3
    active_prob: float = 0.01

    def steps(self, kind: CRFKind) -> int:
        """Mean-field iterations for ``kind``: ``iterations`` when set, else that CRF's default."""
        if self.iterations is not None:
            return self.iterations
        return DENSE_ITERATIONS if kind == "dense" else FAST_ITERATIONS
