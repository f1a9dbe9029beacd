"""Dense CRF after the network: the pydensecrf reference (``dense``) and a batched torch mean-field (``fast``).

Both minimise the same energy (Krähenbühl & Koltun): a unary from the network, a bilateral kernel (position and
colour) and a Gaussian kernel (position), each with symmetric normalisation, and a label compatibility that is
Potts (cost 1 between different labels) with a larger cost (``exclusive_cost``) between garments that are never
worn together. The ``fast`` CRF runs mean-field on a grid ``downsample``× coarser than the photo, with truncated,
dilated kernel windows (ConvCRF-style), over the labels that occur (the rest pooled in one channel), then adds its
final pairwise energy, upsampled, to the full-resolution unary.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

CRFKind = Literal["none", "dense", "fast"]
Unary = Literal["labels", "softmax"]
EPS = 1e-8


@dataclass
class CRFParams:
    """The paper's CRF: unary from the argmax labels (``gt_prob`` on the predicted label, the rest spread evenly),
    bilateral σxy 30 / σrgb 10 / weight 10, Gaussian σxy 3 / weight 10, 10 mean-field iterations.

    ``unary="softmax"`` uses the network's probabilities instead. ``exclusive_cost`` is the compatibility cost of
    an exclusive garment pair (1 = plain Potts). ``downsample``, ``taps`` and ``active_prob`` tune the fast CRF
    only: grid step in pixels, kernel taps per side of the window, and the probability a label must reach
    somewhere to get its own channel.
    """

    unary: Unary = "labels"
    gt_prob: float = 0.5
    bilateral_sxy: float = 30.0
    bilateral_srgb: float = 10.0
    bilateral_weight: float = 10.0
    gaussian_sxy: float = 3.0
    gaussian_weight: float = 10.0
    iterations: int = 10
    exclusive_cost: float = 3.0
    downsample: int = 4
    taps: int = 4
    active_prob: float = 0.01


class MissingCRFError(ImportError):
    """pydensecrf is not installed."""


def densecrf():  # noqa: ANN201
    """pydensecrf's ``densecrf`` module, or ``MissingCRFError`` naming the extra to install."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:
        raise MissingCRFError(
            "crf='dense' needs pydensecrf: pip install 'parsing[crf]' (the pydensecrf2 build), "
            "or use crf='fast', which needs nothing extra"
        ) from err
    return dcrf


def compatibility(num_classes: int, exclusive: torch.Tensor | np.ndarray | None, exclusive_cost: float) -> np.ndarray:
    """Label compatibility costs (K, K) float32: 0 on the diagonal, 1 between labels, ``exclusive_cost`` for
    exclusive pairs."""
    compat = 1.0 - np.eye(num_classes, dtype=np.float32)
    if exclusive is not None:
        pairs = np.asarray(exclusive, dtype=bool)
        compat[pairs | pairs.T] = exclusive_cost
    return compat


def as_rgb_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any photo array → C-contiguous uint8 (H, W, 3): grayscale (H, W) or (H, W, 1), RGBA (alpha dropped),
    CHW tensors, floats in [0, 1] or [0, 255], 16-bit, non-contiguous views."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)  # CHW → HWC
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image (H, W), (H, W, 1|3|4) or (1|3|4, H, W), got shape {arr.shape}")
    arr = arr[:, :, :3] if arr.shape[-1] == 4 else arr
    arr = np.repeat(arr, 3, axis=2) if arr.shape[-1] == 1 else arr
    if arr.dtype == np.uint16:
        arr = arr / 257.0
    elif arr.dtype.kind == "f" and arr.size and arr.max() <= 1.0:
        arr = arr * 255.0
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    return arr if arr.flags.writeable else arr.copy()  # pydensecrf refuses read-only buffers


def dense_crf(
    logits: torch.Tensor, image: np.ndarray | torch.Tensor, params: CRFParams, compat: np.ndarray
) -> np.ndarray:
    """The reference: pydensecrf's mean-field on one photo. logits (K, H, W) at the photo's size → labels (H, W)."""
    dcrf = densecrf()
    from pydensecrf.utils import unary_from_labels

    k, h, w = logits.shape
    rgb = as_rgb_uint8(image)
    if rgb.shape[:2] != (h, w):
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]} but the logits are {w}x{h}")
    if params.unary == "labels":  # label 0 is a class here (null), not "unsure"
        unary = unary_from_labels(argmax(logits, 0).cpu().numpy(), k, params.gt_prob, zero_unsure=False)
    else:
        unary = -logits.float().log_softmax(0).reshape(k, -1).cpu().numpy()
    crf = dcrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    compat = np.ascontiguousarray(compat, dtype=np.float32)
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_weight * compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=rgb, compat=params.bilateral_weight * compat
    )
    q = np.asarray(crf.inference(params.iterations), dtype=np.float32)  # (K, H·W)
    return q.argmax(0).reshape(h, w)


# --- fast CRF ------------------------------------------------------------------------------------------------
def argmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.argmax(dim)``; ``max(dim).indices`` is ~4× faster across channels on CPU (measured, torch 2.13)."""
    return x.max(dim).indices


def _offsets(sigma: float, taps: int) -> list[tuple[int, int]]:
    """Window offsets covering ±2σ with at most ``taps`` samples per side (dilated when σ is large)."""
    radius = max(1, math.ceil(2.0 * sigma))
    step = max(1, math.ceil(radius / taps))
    reach = range(-step * (radius // step), step * (radius // step) + 1, step)
    return [(dy, dx) for dy in reach for dx in reach]


class _Pairwise:
    """Both kernels on the grid, truncated to dilated windows and symmetrically normalised, merged into one weight
    map per window offset: ``message(q)[p] = Σ_t weight_t[p] · q[p + t]``."""

    def __init__(self, rgb: torch.Tensor, valid: torch.Tensor, params: CRFParams, f: int) -> None:
        kernels = [  # (σxy on the grid, σrgb or None, weight)
            (params.bilateral_sxy / f, params.bilateral_srgb, params.bilateral_weight),
            (params.gaussian_sxy / f, None, params.gaussian_weight),
        ]
        self.weights: dict[tuple[int, int], torch.Tensor] = {}
        for sxy, srgb, weight in kernels:
            offsets = _offsets(sxy, params.taps)
            raw = []
            for (dy, dx), v, c in zip(offsets, _shifts(valid, offsets), _shifts(rgb, offsets), strict=True):
                wt = valid * v * math.exp(-(dy * dy + dx * dx) / (2.0 * sxy * sxy))
                if srgb is not None:
                    wt = wt * torch.exp((rgb - c).square().sum(1, keepdim=True) / (-2.0 * srgb * srgb))
                raw.append(wt)
            norm = torch.rsqrt(sum(raw) + 1e-20) * valid  # (B, 1, h, w): 1/sqrt of each pixel's kernel mass
            for offset, wt, n in zip(offsets, raw, _shifts(norm, offsets), strict=True):
                merged = weight * norm * wt * n
                self.weights[offset] = self.weights[offset] + merged if offset in self.weights else merged
        self.offsets = list(self.weights)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) → (B, C, h, w)
        out = torch.zeros_like(q)
        for wt, view in zip(self.weights.values(), _shifts(q, self.offsets), strict=True):
            out.addcmul_(wt, view)
        return out


def _shifts(x: torch.Tensor, offsets: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Views x[..., i + dy, j + dx] for each offset, zero outside the grid."""
    h, w, r = *x.shape[-2:], max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    padded = F.pad(x, (r, r, r, r))
    return [padded[..., r + dy : r + dy + h, r + dx : r + dx + w] for dy, dx in offsets]


def _joint_bilateral_upsample(
    coarse: torch.Tensor, grid_rgb: torch.Tensor, grid_valid: torch.Tensor, rgb: torch.Tensor, f: int, srgb: float
) -> torch.Tensor:
    """Grid values (B, C, h', w') → (B, C, h'·f, w'·f), each pixel a mix of its 3×3 nearest cells weighted by
    distance and by colour likeness to the pixel (joint bilateral upsampling, Kopf et al. 2007), so that label
    edges follow the photo's. ``rgb`` (B, 3, h'·f, w'·f) is the full-resolution photo."""
    b, c, h2, w2 = coarse.shape
    pixel = (torch.arange(f, device=rgb.device, dtype=torch.float32) + 0.5) / f - 0.5  # offset from the cell centre
    cells = rgb.view(b, 3, h2, f, w2, f)  # the photo, cell by cell
    out = torch.zeros(b, c, h2, f, w2, f, device=rgb.device)
    total = torch.zeros(b, 1, h2, f, w2, f, device=rgb.device)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    grids = zip(*(_shifts(x, offsets) for x in (coarse, grid_rgb, grid_valid)), strict=True)
    for (dy, dx), (value, colour, valid) in zip(offsets, grids, strict=True):
        value, colour, valid = (x[:, :, :, None, :, None] for x in (value, colour, valid))  # broadcast over cells
        near = torch.exp(-((pixel - dy).square()[:, None, None] + (pixel - dx).square()[None, None, :]) / 2.0)
        likeness = torch.exp((cells - colour).square().sum(1, keepdim=True) / (-2.0 * srgb * srgb))
        wt = valid * near * likeness  # (B, 1, h', f, w', f)
        out.addcmul_(wt, value)
        total += wt
    return (out / total.clamp(min=1e-12)).view(b, c, h2 * f, w2 * f)


@contextmanager
def _few_threads(device: torch.device) -> Iterator[None]:
    """One CPU thread: the CRF is many small operations, and with more threads each one waits on the others —
    when other processes (data loaders, training) share the cores, 2–6× slower overall (measured on 2 cores)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    with _few_threads(logits.device):
        return _fast_crf(logits, images, params, compat, valid)


def _fast_crf(
    logits: torch.Tensor,
    images: torch.Tensor,
    params: CRFParams,
    compat: np.ndarray | torch.Tensor,
    valid: torch.Tensor | None,
) -> torch.Tensor:
    b, k, h, w = logits.shape
    device = logits.device
    f = max(1, params.downsample)
    hard = argmax(logits, 1)  # (B, H, W) the network's labels

    # The labels that matter get a channel each; the others share one (their total probability).
    is_active = torch.bincount(hard.flatten(), minlength=k) > 0
    probs = None
    if params.unary == "softmax":
        probs = logits.float().softmax(1)  # (B, K, H, W)
        is_active |= probs.amax(dim=(0, 2, 3)) >= params.active_prob
    active = is_active.nonzero().flatten()
    a, n_rest = len(active), k - len(active)
    c = _reduced_compat(torch.as_tensor(compat, dtype=torch.float32, device=device), active)  # (A+1, A+1)
    lut = torch.full((k,), a, dtype=torch.long, device=device)
    lut[active] = torch.arange(a, device=device)
    reduced_hard = lut[hard]  # (B, H, W) in 0..A-1

    # Whole grid cells: pad bottom/right; padding (and invalid pixels) carry no weight.
    ph, pw = -h % f, -w % f
    valid = torch.ones(b, 1, h, w, device=device) if valid is None else valid.to(device).float()[:, None]
    valid = F.pad(valid, (0, pw, 0, ph))  # (B, 1, H', W')
    rgb = F.pad(images.to(device).float(), (0, pw, 0, ph))  # (B, 3, H', W')
    pool = (lambda x: F.avg_pool2d(x, f)) if f > 1 else (lambda x: x)  # noqa: E731
    mass = pool(valid).clamp(min=EPS)
    grid_valid = (pool(valid) > 0).float()  # (B, 1, h', w')
    grid_rgb = pool(rgb * valid) / mass

    rest = (1.0 - params.gt_prob) / (k - 1)
    if probs is None:  # the paper's unary: gt_prob on the network's label, the rest spread evenly
        hit = F.one_hot(reduced_hard, a + 1).permute(0, 3, 1, 2).float()  # (B, A+1, H, W)
        share = pool(F.pad(hit, (0, pw, 0, ph)) * valid) / mass
        grid_p = rest + (params.gt_prob - rest) * share
        grid_p[:, a] = rest * n_rest
    else:
        reduced = torch.cat([probs[:, active], probs[:, ~is_active].sum(1, keepdim=True)], 1)  # (B, A+1, H, W)
        grid_p = pool(F.pad(reduced, (0, pw, 0, ph)) * valid) / mass
    log_p = grid_p.clamp(min=EPS).log()  # (B, A+1, h', w')

    pairwise = _Pairwise(grid_rgb, grid_valid, params, f)

    def energy(q: torch.Tensor) -> torch.Tensor:  # (B, A+1, h', w') → (B, A+1, h', w')
        return torch.einsum("ab,nbhw->nahw", c, pairwise(q))

    q = log_p.softmax(1)
    for _ in range(params.iterations):
        q = (log_p - energy(q)).softmax(1)
    final = energy(q)
    if f > 1:  # to full resolution, edges snapped to the photo's
        final = _joint_bilateral_upsample(final, grid_rgb, grid_valid, rgb, f, params.bilateral_srgb)
    score = -final[..., :h, :w]  # (B, A+1, H, W): − pairwise energy, + the log unary below (up to a constant)
    if probs is None:
        gain = torch.full_like(score[:, :1], math.log(params.gt_prob / rest))
        score.scatter_add_(1, reduced_hard[:, None], gain)
        score[:, a] += math.log(max(n_rest, 1))
    else:
        score += reduced.clamp(min=EPS).log()
    labels = torch.cat([active, active.new_tensor([-1])])[argmax(score, 1)]
    return torch.where(labels < 0, hard, labels)  # the pooled channel won: keep the network's label


def apply_crf(
    kind: CRFKind,
    logits: torch.Tensor,
    image: np.ndarray | torch.Tensor,
    params: CRFParams,
    exclusive: torch.Tensor | None = None,
) -> torch.Tensor:
    """One photo: logits (K, H, W) at its own size and its image → labels (H, W) long (argmax when ``none``)."""
    if kind == "none":
        return argmax(logits, 0)
    pairs = None if exclusive is None else exclusive.cpu().numpy()
    compat = compatibility(logits.shape[0], pairs, params.exclusive_cost)
    if kind == "dense":
        return torch.from_numpy(dense_crf(logits, image, params, compat)).long().to(logits.device)
    rgb = torch.from_numpy(as_rgb_uint8(image)).to(logits.device).permute(2, 0, 1)[None]  # (1, 3, H, W)
    return fast_crf(logits[None], rgb, params, compat)[0]
