"""Outfit context for the decoder: self-attention over the deepest encoder features, so that every cell sees the
whole photo before the decoder names it (a non-local block; Wang et al. 2018).

Naming a garment is a question about the outfit (a skirt under a blazer, or the lower half of a dress?), but a
cell of the stride-32 features sees only its neighbourhood. Here each cell attends to all the others; the block is
residual with a zero-initialised output, so it starts as the identity and can be added to trained weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ContextBlock(nn.Module):
    """Deepest features (B, C, h, w) → the same shape, each cell plus what it gathers from every cell."""

    def __init__(self, channels: int, dim: int = 128, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * dim)
        self.out = nn.Linear(dim, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (B, N = h·w, C)
        q, k, v = self.qkv(tokens).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # (B, heads, N, d)
        gathered = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)  # (B, N, dim)
        return x + self.out(gathered).transpose(1, 2).reshape(b, c, h, w)
