"""Logits at a quarter of the network box, standing in for the network's last step: a ×4 bilinear upsampling.

The FPN's segmentation head ends in a ×4 bilinear upsampling (``align_corners=True``) of 59 logit maps: 52 MB a
photo, ~26 ms of OpenVINO's 47 ms decoder on one thread, and every step after it read those 52 MB again. A backend
that can stop before it (``Backend.coarse``) hands the parser a ``CoarseLogits``, which answers what decoding asks
of the full logits without making them:

* ``argmax()`` — the label map at the network box. A bilinear pixel is a convex mix of 4 coarse cells; where the 4
  have the same winner, that label wins the mix too, so only pixels between cells that disagree are interpolated;
* ``rows(ys, xs)`` — the K logits of a few pixels (label edges, cells a banned label won);
* ``every(stride)`` — the logits of every ``stride``-th pixel each way (the sampled softmax, the confidence);
* ``dense()`` — the full logits, for the rarer steps that read them all (label views, widening, probabilities).

The helpers ``rows_at``, ``every``, ``top_of`` and ``dense`` take either a ``CoarseLogits`` or a tensor
(K, H, W), so the decoding steps are written once for both.
"""

from __future__ import annotations

from functools import cached_property

import torch


def argmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.argmax(dim)``; ``max(dim).indices`` is ~4× faster across channels on CPU (measured, torch 2.13)."""
    return x.max(dim).indices


SCALE = 4  # the head's upsampling factor


def taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """For each output index: the two input indices and their weights of a bilinear resize with
    ``align_corners=True`` (the head's ``nn.Upsample``)."""
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    src = torch.arange(n_out, device=device, dtype=torch.float32) * scale
    i0 = src.long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = src - i0
    return i0, i1, 1.0 - w1, w1


def mix_rows(rows: torch.Tensor, r: tuple[torch.Tensor, ...], c: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A grid's rows (h, w, K) and taps ``r`` (4 × (N,)) and ``c`` (4 × (N,)) → the bilinear mix (N, K) at N points."""
    r0, r1, v0, v1 = r
    c0, c1, u0, u1 = c
    v0, v1, u0, u1 = v0[:, None], v1[:, None], u0[:, None], u1[:, None]
    return v0 * (u0 * rows[r0, c0] + u1 * rows[r0, c1]) + v1 * (u0 * rows[r1, c0] + u1 * rows[r1, c1])


def uneven(top: torch.Tensor, labels: int) -> torch.Tensor:
    """An argmax map (h, w) of ``labels`` labels → where a cell's 2×2 block (the next row and column, clamped at the
    edges) holds more than one label."""
    small = top.to(torch.uint8) if labels <= 256 else top  # 8× less to move around than int64
    right = torch.cat([small[:, 1:], small[:, -1:]], 1)
    below = torch.cat([small[1:], small[-1:]], 0)
    corner = torch.cat([right[1:], right[-1:]], 0)
    return (small != right) | (small != below) | (small != corner)


class CoarseLogits:
    """One photo's logits (K, h, w) at a quarter of the padded network box ``box`` (H, W) = 4·(h, w), standing for
    their ``align_corners`` bilinear upsampling to ``box``, seen through its top-left ``valid`` (H', W') part."""

    def __init__(self, small: torch.Tensor, box: tuple[int, int], valid: tuple[int, int] | None = None) -> None:
        self.small, self.box = small, box
        self.valid = valid or box

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.small.shape[0], *self.valid))

    @property
    def device(self) -> torch.device:
        return self.small.device

    def crop(self, h: int, w: int) -> CoarseLogits:
        """The top-left (h, w) of the upsampled logits (the padding cropped off)."""
        return CoarseLogits(self.small, self.box, (min(h, self.valid[0]), min(w, self.valid[1])))

    @cached_property
    def _rows(self) -> torch.Tensor:
        return self.small.permute(1, 2, 0).float()  # (h, w, K): a cell's K logits in a row (fast to gather)

    @cached_property
    def _taps(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        (h, w), (bh, bw), (vh, vw) = self.small.shape[1:], self.box, self.valid
        y, x = taps(h, bh, self.device), taps(w, bw, self.device)
        return tuple(t[:vh] for t in y), tuple(t[:vw] for t in x)

    def rows(self, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Pixels (N,), (N,) of the upsampled logits → their K logits (N, K) float32."""
        y, x = self._taps
        return mix_rows(self._rows, tuple(t[ys] for t in y), tuple(t[xs] for t in x))

    def every(self, stride: int) -> torch.Tensor:
        """The logits at every ``stride``-th pixel each way, from pixel ``stride // 2``: (K, n_y, n_x) float32, a
        view of (n_y, n_x, K) memory (what a softmax over labels reads fastest)."""
        first = stride // 2
        return self._separable(slice(first, None, stride), slice(first, None, stride)).permute(2, 0, 1)

    def _separable(self, ys: slice, xs: slice) -> torch.Tensor:
        """The upsampled logits at rows ``ys`` and columns ``xs`` (n_y, n_x, K): down the rows, then across (3×
        faster than mixing 4 cells per pixel; torch's ``interpolate`` of channels-last maps took 82 ms for the
        whole box on one thread, this 37)."""
        (y0, y1, v0, v1), (x0, x1, u0, u1) = self._taps
        y0, y1, v0, v1 = y0[ys], y1[ys], v0[ys, None, None], v1[ys, None, None]
        x0, x1, u0, u1 = x0[xs], x1[xs], u0[xs, None], u1[xs, None]
        rows = torch.addcmul(self._rows[y1] * v1, self._rows[y0], v0)  # (n_y, w, K)
        return torch.addcmul(rows[:, x1] * u1, rows[:, x0], u0)  # (n_y, n_x, K)

    def argmax(self) -> torch.Tensor:
        """The upsampled logits' argmax (H', W') long, interpolating only pixels whose 4 cells disagree."""
        (y0, y1, *_), (x0, x1, *_) = self._taps
        top = argmax(self.small, 0)  # (h, w)
        labels = top[y0][:, x0]  # (H', W') the top-left cell's label
        ys, xs = uneven(top, len(self.small))[y0][:, x0].nonzero(as_tuple=True)  # (N,) pixels whose 4 cells disagree
        if len(ys):
            labels[ys, xs] = argmax(self.rows(ys, xs), 1)
        return labels

    def dense(self) -> torch.Tensor:
        """The upsampled logits (K, H', W') float32, channels-last in memory (made once)."""
        return self._dense

    @cached_property
    def _dense(self) -> torch.Tensor:
        return self._separable(slice(None), slice(None)).permute(2, 0, 1)


Logits = torch.Tensor | CoarseLogits


def dense(logits: Logits) -> torch.Tensor:
    """A tensor (K, H, W) of the logits, made when they are coarse."""
    return logits.dense() if isinstance(logits, CoarseLogits) else logits


def rows_at(logits: Logits, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """The K logits (N, K) float32 of pixels (N,), (N,)."""
    if isinstance(logits, CoarseLogits):
        return logits.rows(ys, xs)
    return logits.permute(1, 2, 0)[ys, xs].float()  # a pixel's logits in a row (5× faster to gather)


def every(logits: Logits, stride: int) -> torch.Tensor:
    """The logits (K, n_y, n_x) at every ``stride``-th pixel each way, from pixel ``stride // 2``."""
    if isinstance(logits, CoarseLogits):
        return logits.every(stride)
    first = stride // 2
    return logits[:, first::stride, first::stride]


def top_of(logits: Logits) -> torch.Tensor:
    """The argmax label map (H, W)."""
    return logits.argmax() if isinstance(logits, CoarseLogits) else argmax(logits, 0)


def photo_logits(logits: torch.Tensor | list[CoarseLogits], i: int, h: int, w: int) -> Logits:
    """Photo ``i``'s logits (K, h, w) of a batch's (B, K, H, W) or coarse ones, the padding cropped off."""
    return logits[i].crop(h, w) if isinstance(logits, list) else logits[i, :, :h, :w]
