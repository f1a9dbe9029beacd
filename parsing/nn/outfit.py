"""The outfit encoder: the paper's side branch that predicts which garments are in the photo.

* ``OutfitEncoder`` — on the deepest encoder features: pooled, a 256-unit layer, ReLU, dropout, one output per
  label; its sigmoid is the probability that the label is in the photo.
* ``gate`` — the paper's "outfit filter" G_c = g_c · F_c on the segmentation logits (or, as an option, adding
  log g_c, which keeps the sign of negative logits meaningful).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GateMode = Literal["multiply", "log"]


class OutfitEncoder(nn.Module):
    """Deepest features (B, C, h, w) → presence logits (B, K)."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)

    def hidden(self, features: torch.Tensor) -> torch.Tensor:
        """The hidden layer (B, hidden): the outfit representation the paper retrieves outfits by."""
        return F.relu(self.fc(self.pool(features).flatten(1)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.hidden(features)))  # (B, K)


def gate(logits: torch.Tensor, presence_logits: torch.Tensor, mode: GateMode = "multiply") -> torch.Tensor:
    """Gate class logits (B, K, H, W) by presence (B, K): ``multiply`` as in the paper, or add ``log`` g."""
    if mode == "multiply":
        return logits * torch.sigmoid(presence_logits)[:, :, None, None]
    return logits + F.logsigmoid(presence_logits)[:, :, None, None]
