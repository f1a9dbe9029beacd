"""The ``fast`` CRF: a batched torch mean-field on a grid (CPU or GPU).

1. counts the network's labels per grid cell (``downsample`` × ``downsample`` pixels) in one bincount, which gives
   the labels that occur (the others share one channel) and the unary on the grid;
2. runs mean-field on the grid with truncated, dilated kernel windows (ConvCRF-style), both kernels merged into
   one weight map per window offset;
3. brings the final pairwise energy back to full resolution by joint bilateral upsampling and adds it to the
   full-resolution unary. With the labels unary this happens only in the cells where some pixel can change
   label (an exact bound, see ``_may_change``), about a tenth of the photo; elsewhere the network's label stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from parsing.inference.crf_params import CRFParams

EPS = 1e-8


def argmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.argmax(dim)``; ``max(dim).indices`` is ~4× faster across channels on CPU (measured, torch 2.13)."""
    return x.max(dim).indices


def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.softmax(dim)``; when ``dim`` is innermost in memory (channels-last logits) it is taken as the last axis
    of a view, 3× faster on CPU (59×576×384: 64 → 20 ms, measured, torch 2.13); the same values and layout."""
    if x.dim() > 1 and x.stride(dim) == 1 and dim % x.dim() != x.dim() - 1:
        return x.movedim(dim, -1).softmax(-1).movedim(-1, dim)
    return x.softmax(dim)


def _offsets(sigma: float, taps: int) -> list[tuple[int, int]]:
    """Window offsets covering about ±2σ with at most ``taps`` samples per side (dilated when σ is large)."""
    radius = 2.0 * sigma
    step = max(1, round(radius / taps))
    reach = step * min(taps, math.ceil(radius / step))
    return [(dy, dx) for dy in range(-reach, reach + 1, step) for dx in range(-reach, reach + 1, step)]


class _Pairwise:
    """Both kernels on the grid, truncated to dilated windows and symmetrically normalised, merged into one weight
    map per window offset: ``message(q)[p] = Σ_t weight_t[p] · q[p + t]``. The kernels are symmetric,
    ``weight_-t[p] = weight_t[p - t]``, so only half the offsets are computed and the rest are shifted copies."""

    def __init__(self, rgb: torch.Tensor, valid: torch.Tensor, params: CRFParams, f: int) -> None:
        kernels = [  # (σxy on the grid, σrgb or None, weight)
            (params.bilateral_sxy / f, params.bilateral_srgb, params.bilateral_weight),
            (params.gaussian_sxy / f, None, params.gaussian_weight),
        ]
        half: dict[tuple[int, int], torch.Tensor] = {}  # offsets t ≥ (0, 0) in tuple order
        for sxy, srgb, weight in kernels:
            offsets = [t for t in _offsets(sxy, params.taps) if t > (0, 0)]
            raw = {(0, 0): valid}  # a cell with itself: distance 0, same colour
            for (dy, dx), v, c in zip(offsets, _shifts(valid, offsets), _shifts(rgb, offsets), strict=True):
                wt = valid * v * math.exp(-(dy * dy + dx * dx) / (2.0 * sxy * sxy))
                if srgb is not None:
                    wt = wt * _exp((rgb - c).square().sum(1, keepdim=True) / (-2.0 * srgb * srgb))
                raw[(dy, dx)] = wt
            mass = valid + sum(wt + _shift(wt, -dy, -dx) for (dy, dx), wt in raw.items() if (dy, dx) != (0, 0))
            norm = torch.rsqrt(mass + 1e-20) * valid  # (B, 1, h, w): 1/sqrt of each cell's kernel mass
            for (dy, dx), wt in raw.items():
                merged = weight * norm * wt * _shift(norm, dy, dx)
                half[(dy, dx)] = half[(dy, dx)] + merged if (dy, dx) in half else merged
        self.weights = dict(half)
        for (dy, dx), wt in half.items():
            if (dy, dx) != (0, 0):
                self.weights[(-dy, -dx)] = _shift(wt, -dy, -dx)
        self.reach = max(max(abs(dy), abs(dx)) for dy, dx in self.weights)
        self.padded: torch.Tensor | None = None

    def __call__(self, q: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) → (B, C, h, w)
        b, c, h, w = q.shape
        r = self.reach
        if self.padded is None or self.padded.shape[:2] != (b, c):  # zero border, written once
            self.padded = q.new_zeros(b, c, h + 2 * r, w + 2 * r)
        self.padded[..., r : r + h, r : r + w] = q
        out = q * self.weights[(0, 0)]
        for (dy, dx), wt in self.weights.items():
            if (dy, dx) != (0, 0):
                out.addcmul_(wt, self.padded[..., r + dy : r + dy + h, r + dx : r + dx + w])
        return out


def _exp(x: torch.Tensor) -> torch.Tensor:
    """exp(x) with x floored at −80: torch's exp takes a ~40× slower path below about −88 (measured on CPU), and
    weights under e⁻⁸⁰ ≈ 2e-35 change nothing."""
    return torch.exp(x.clamp(min=-80.0))


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x[..., i + dy, j + dx], zero outside."""
    if abs(dy) >= x.shape[-2] or abs(dx) >= x.shape[-1]:
        return torch.zeros_like(x)
    return F.pad(x, (-dx, dx, -dy, dy))


def _shifts(x: torch.Tensor, offsets: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Views x[..., i + dy, j + dx] for each offset, zero outside the grid."""
    if not offsets:
        return []
    h, w, r = *x.shape[-2:], max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    padded = F.pad(x, (r, r, r, r))
    return [padded[..., r + dy : r + dy + h, r + dx : r + dx + w] for dy, dx in offsets]


def _neighbourhood(x: torch.Tensor, op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Max (``op=torch.maximum``) or min (``torch.minimum``) over each cell's 3×3 neighbours inside the grid."""
    fill = -math.inf if op is torch.maximum else math.inf
    p = F.pad(x, (1, 1, 1, 1), value=fill)
    rows = op(op(p[..., :-2, :], p[..., 1:-1, :]), p[..., 2:, :])
    return op(op(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])


def _blocks(x: torch.Tensor, f: int) -> torch.Tensor:
    """(B, [C,] H, W) with H, W multiples of f → (B, [C,] H/f, f, W/f, f): the pixels of each grid cell."""
    *lead, h, w = x.shape
    return x.view(*lead, h // f, f, w // f, f)


def _cell_energies(
    energy: torch.Tensor,
    grid_rgb: torch.Tensor,
    grid_valid: torch.Tensor,
    pixels: torch.Tensor,
    cells: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    srgb: float,
) -> torch.Tensor:
    """Grid energies (B, C, h', w') → the pixels of N chosen cells (N, C, f, f), each pixel a mix of its cell's
    3×3 neighbours weighted by distance and by colour likeness to the pixel (joint bilateral upsampling, Kopf et
    al. 2007), so that label edges follow the photo's. ``pixels`` (N, 3, f, f) are the cells' photo pixels and
    ``cells`` their (batch, row, column) indices."""
    n, _, f, _ = pixels.shape
    b, y, x = cells
    if f == 1:
        return energy[b, :, y, x][..., None, None]
    grid = torch.cat([energy, grid_rgb, grid_valid], 1)
    grid = F.pad(grid, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (B, h'+2, w'+2, C+4)
    steps = torch.tensor([-1, 0, 1], device=energy.device)
    rows = (y[:, None] + 1 + steps).repeat_interleave(3, 1)  # (N, 9): the 3×3 neighbours, row-major
    cols = (x[:, None] + 1 + steps).repeat(1, 3)
    near_cells = grid[b[:, None], rows, cols]  # (N, 9, C+4)
    value, colour, valid = near_cells[..., :-4], near_cells[..., -4:-1], near_cells[..., -1]
    pixel = (torch.arange(f, device=energy.device, dtype=torch.float32) + 0.5) / f - 0.5  # offset from the centre
    space = (pixel[None, :] - steps[:, None]).square() / 2.0  # (3, f)
    space = space.repeat_interleave(3, 0)[:, :, None] + space.repeat(3, 1)[:, None, :]  # (9, f, f)
    # log weight = −|pixel − colour|² / 2σ² − |pixel − cell centre|² / 2, with −inf for invalid cells
    k = -0.5 / (srgb * srgb)
    pix = pixels.flatten(2)  # (N, 3, f·f)
    per_cell = (k * colour.square().sum(2, keepdim=True)).masked_fill(valid[..., None] == 0, -math.inf)  # (N, 9, 1)
    base = (k * pix.square().sum(1, keepdim=True) - space.view(1, 9, f * f)) + per_cell  # (N, 9, f·f)
    log_wt = torch.baddbmm(base, colour, pix, alpha=-2.0 * k)
    wt = _exp(log_wt - log_wt.amax(1, keepdim=True)) * valid[..., None]  # relative to the likeliest: never all 0
    wt = (wt / wt.sum(1, keepdim=True)).view(n, 9, f, f)
    return torch.einsum("nkyx,nkc->ncyx", wt, value)


def _may_change(energy: torch.Tensor, present: torch.Tensor, gain: float) -> torch.Tensor:
    """Cells where some pixel could leave the network's label (labels unary), (B, h', w') bool.

    A pixel's upsampled energy of each label is a convex mix of that label's energies on the 3×3 cells around
    it, so a pixel labelled h keeps h unless some other label l has min₃ₓ₃ E_l < max₃ₓ₃ E_h − gain. Cells where
    that holds for none of their labels (``present`` (B, A, h', w')) are skipped: exact, and most of the photo.
    """
    e = energy[:, :-1]  # (B, A, h', w'): the active labels (the pooled channel winning keeps the label anyway)
    if e.shape[1] < 2:
        return torch.zeros_like(present[:, 0])
    high = _neighbourhood(e, torch.maximum)
    low = _neighbourhood(e, torch.minimum)
    two, which = low.topk(2, dim=1, largest=False)  # the two lowest, per cell
    labels = torch.arange(e.shape[1], device=e.device)[None, :, None, None]
    best_other = torch.where(which[:, :1] == labels, two[:, 1:], two[:, :1])  # (B, A, h', w')
    return (present & (best_other < high - gain + 1e-3)).any(1)  # 1e-3: margin for rounding


@contextmanager
def _cpu_mode(device: torch.device) -> Iterator[None]:
    """One CPU thread with denormals flushed to zero. The CRF is many small operations: with more threads each
    waits on the others, 2–6× slower when loaders or training share the cores; and tiny kernel weights and
    probabilities are denormal floats, which made message passing 3× slower (both measured on 2 cores)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    flushing = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if flushing:
            torch.set_flush_denormal(False)


def _reduced_compat(compat: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """(K, K) costs → (A+1, A+1): the pooled channel costs the mean over its labels per unit of pooled mass."""
    k, a = len(compat), len(active)
    rest = torch.ones(k, dtype=torch.bool, device=compat.device)
    rest[active] = False
    c = torch.zeros(a + 1, a + 1, dtype=compat.dtype, device=compat.device)
    c[:a, :a] = compat[active][:, active]
    if rest.any():
        c[:a, a] = compat[active][:, rest].mean(1)
        c[a, :a] = compat[rest][:, active].mean(0)
        c[a, a] = compat[rest][:, rest].sum() / rest.sum() ** 2
    return c


def fast_crf(
    logits: torch.Tensor,
    images: torch.Tensor,
    params: CRFParams,
    compat: np.ndarray | torch.Tensor,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Batched mean-field on CPU or GPU. logits (B, K, H, W), images (B, 3, H, W) in 0–255 (any dtype), optional
    valid (B, H, W) bool for photos padded into one batch → labels (B, H, W) long."""
    hard = argmax(logits, 1)  # (B, H, W) the network's labels; full-size work, on all threads
    probs = logits.float().softmax(1) if params.unary == "softmax" else None  # (B, K, H, W)
    with _cpu_mode(logits.device):
        return _fast_crf(hard, probs, logits.shape[1], images, params, compat, valid)


def _fast_crf(
    hard: torch.Tensor,
    probs: torch.Tensor | None,
    k: int,
    images: torch.Tensor,
    params: CRFParams,
    compat: np.ndarray | torch.Tensor,
    valid: torch.Tensor | None,
) -> torch.Tensor:
    """hard (B, H, W) the network's labels among ``k``, probs (B, K, H, W) for the softmax unary (else None) →
    labels (B, H, W)."""
    b, h, w = hard.shape
    device = hard.device
    f = max(1, params.downsample)
    h2, w2 = -(-h // f), -(-w // f)  # the grid: cells of f×f pixels, partial at the bottom/right edges
    valid = None if valid is None else valid.to(device)

    # Pixels of each label per cell (invalid pixels go to a spare bin), counted in int32 where the bins fit: 2× faster.
    bins = b * h2 * w2 * k
    kind = torch.int32 if bins < 2**31 else torch.long
    cell = (torch.arange(h, device=device) // f)[:, None] * w2 + torch.arange(w, device=device) // f  # (H, W)
    first = torch.arange(b, device=device, dtype=kind)[:, None, None] * (h2 * w2)
    index = (first + cell.to(kind)) * k + hard.to(kind)  # (B, H, W)
    index = index if valid is None else torch.where(valid, index, bins)
    counts = torch.bincount(index.flatten(), minlength=bins + 1)[:bins].view(b, h2, w2, k)

    # The labels that matter get a channel each; the others share one (their total probability).
    is_active = counts.sum((0, 1, 2)) > 0
    if probs is not None:
        is_active |= probs.amax(dim=(0, 2, 3)) >= params.active_prob
    active = is_active.nonzero().flatten()
    a, n_rest = len(active), k - len(active)
    lut = torch.full((k,), a, dtype=torch.long, device=device)  # label → its channel (a: the shared one)
    lut[active] = torch.arange(a, device=device)
    c = _reduced_compat(torch.as_tensor(compat, dtype=torch.float32, device=device), active)  # (A+1, A+1)
    counts = counts[..., active].permute(0, 3, 1, 2)  # (B, A, h', w')

    # The photo on the grid; invalid pixels carry no weight.
    pool = (lambda x: F.avg_pool2d(x, f, ceil_mode=True)) if f > 1 else (lambda x: x)  # noqa: E731
    rgb = images.to(device)  # (B, 3, H, W) as given
    if valid is None:
        mask, mass = None, torch.ones(b, 1, h2, w2, device=device)
        grid_rgb = pool(rgb.contiguous().float())  # (B, 3, h', w') the cells' mean colours (NCHW: avg_pool's fast path)
    else:
        mask = valid[:, None].float()  # (B, 1, H, W)
        mass = pool(mask)  # (B, 1, h', w') share of the cell's pixels that count
        grid_rgb = pool(rgb.float() * mask) / mass.clamp(min=EPS)
    grid_valid = (mass > 0).float()

    rest = (1.0 - params.gt_prob) / (k - 1)
    if probs is None:  # the paper's unary: gt_prob on the network's label, the rest spread evenly
        share = counts.float() / counts.sum(1, keepdim=True).clamp(min=1)  # (B, A, h', w')
        grid_p = torch.cat([rest + (params.gt_prob - rest) * share, torch.full_like(share[:, :1], rest * n_rest)], 1)
    else:
        reduced = torch.cat([probs[:, active], probs[:, ~is_active].sum(1, keepdim=True)], 1)  # (B, A+1, H, W)
        grid_p = pool(reduced if mask is None else reduced * mask) / mass.clamp(min=EPS)
    log_p = grid_p.clamp(min=EPS).log()  # (B, A+1, h', w')

    pairwise = _Pairwise(grid_rgb, grid_valid, params, f)

    def energy(q: torch.Tensor) -> torch.Tensor:  # (B, A+1, h', w') → (B, A+1, h', w')
        return torch.einsum("ab,nbhw->nahw", c, pairwise(q))

    q = log_p.softmax(1)
    for _ in range(params.steps("fast")):
        q = (log_p - energy(q)).softmax(1)
    final = energy(q)  # (B, A+1, h', w')

    # Back to full resolution: score = − pairwise energy (upsampled, edges snapped to the photo's) + log unary.
    gain = math.log(params.gt_prob / rest)
    cells = grid_valid[:, 0] > 0
    if probs is None:  # only cells where a label can change (exact, see _may_change)
        cells &= _may_change(final, counts > 0, gain)
    cells = cells.nonzero(as_tuple=True)  # (batch, row, column) of N cells
    step = torch.arange(f, device=device)
    ys, xs = cells[1][:, None] * f + step, cells[2][:, None] * f + step  # (N, f) pixel rows / columns
    inside = (ys < h)[:, :, None] & (xs < w)[:, None, :]  # (N, f, f): partial cells at the edges
    at = (cells[0][:, None, None], ys.clamp(max=h - 1)[:, :, None], xs.clamp(max=w - 1)[:, None, :])
    pixels = rgb.permute(0, 2, 3, 1)[at].permute(0, 3, 1, 2).float()  # (N, 3, f, f)
    score = -_cell_energies(final, grid_rgb, grid_valid, pixels, cells, params.bilateral_srgb)  # (N, A+1, f, f)
    network = hard[at]  # (N, f, f)
    if probs is None:
        score.scatter_add_(1, lut[network][:, None], torch.full_like(score[:, :1], gain))
        score[:, a] += math.log(max(n_rest, 1))
    else:
        score += reduced.permute(0, 2, 3, 1)[at].permute(0, 3, 1, 2).clamp(min=EPS).log()
    cell_labels = torch.cat([active, active.new_tensor([-1])])[argmax(score, 1)]  # (N, f, f)
    cell_labels = torch.where(cell_labels < 0, network, cell_labels)  # the pooled channel won: keep the label
    labels = hard.clone()
    if bool(inside.all()):
        labels[at] = cell_labels
    else:
        labels[tuple(i.expand_as(inside)[inside] for i in at)] = cell_labels[inside]
    return labels
