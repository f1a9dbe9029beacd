"""Decoding one photo's logits into its label map: the garment set that respects the exclusive pairs, labels that
conflict with it suppressed, upsampling to the photo's size and the CRF (``parse_photo``).

``model`` is a ``ModelSpec`` or a ``ParsingModel``: its ``decoding`` settings (``decode``, ``decode_from``,
``min_fraction``, ``presence_threshold``) and its exclusive pairs configure the decoding; ``crf_params`` the CRF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from parsing.inference.crf import CRFKind, CRFParams, apply_crf, argmax, refine_labels, softmax
from parsing.inference.exclusions import allowed_argmax, banned_labels, decode_outfit, pixel_outfit, suppress_excluded
from parsing.inference.label_view import LabelView
from parsing.inference.resize import upsample_labels, upsample_logits

if TYPE_CHECKING:
    from parsing.model import ModelSpec, ParsingModel

# Pooled presence and the pixel outfit's mass read every 2nd pixel each way: the same masks and garments on the 90
# validation photos, 4× less work (every 4th pixel crossed the presence threshold 4 times there: not taken).
SAMPLE = 2


def pooled_presence(
    logits: torch.Tensor,
    min_fraction: float,
    region: torch.Tensor | None = None,
    probs: torch.Tensor | None = None,
    sample: int = 1,
    sampled: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits (B, K, H, W) → (B, K) image-level probability of each label: the mean softmax probability of its
    top ``min_fraction`` share of cells on a 4× coarser grid (cells outside ``region`` (B, H, W) count as 0).
    ``probs``: the softmax (B, K, H, W), when already computed. ``sample`` (1, 2 or 4): each cell's mean read from
    every ``sample``-th pixel each way, ``sample``² times less work (the network's logits are a 4× bilinear
    upsampling, smooth within a cell). ``sampled``: the softmax of those sampled pixels (B, K, h, w), when already
    computed (the parser shares it with the confidence step)."""
    pool = 4  # cells of 4×4 pixels
    if probs is None and sample > 1:
        first, pool = sample // 2, 4 // sample
        logits = logits[..., first::sample, first::sample]
        region = None if region is None else region[..., first::sample, first::sample]
        probs = sampled
    probs = softmax(logits.float(), 1) if probs is None else probs  # (B, K, H, W)
    if region is not None:
        probs = probs * region[:, None].to(probs.dtype)
    cells = cell_means(probs, pool)  # (B, K, h·w)
    top = max(1, round(min_fraction * cells.shape[-1]))
    return cells.topk(top, dim=-1).values.mean(-1)  # (B, K)


def cell_means(probs: torch.Tensor, pool: int) -> torch.Tensor:
    """(B, K, H, W) → (B, K, ⌈H/pool⌉·⌈W/pool⌉): each pool × pool cell's mean, a partial cell at the bottom or right
    edge the mean of its own pixels (``F.avg_pool2d`` with ``ceil_mode``). Channels-last probabilities (the shared
    sampled softmax) are summed as ``pool``² strided slices: 15× faster than ``avg_pool2d`` on that layout (59 × 288
    × 190: 10 → 0.7 ms, measured, torch 2.13), the same means up to float rounding."""
    if pool == 1 or probs.stride(1) != 1:
        return F.avg_pool2d(probs, pool, ceil_mode=True).flatten(2)
    x = probs.permute(0, 2, 3, 1)  # (B, H, W, K), contiguous
    b, h, w, k = x.shape
    ph, pw = -h % pool, -w % pool
    if ph or pw:  # zeros to whole cells; the partial cells' means divide by their own pixel counts below
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    rows = x[:, 0::pool].clone()
    for i in range(1, pool):
        rows += x[:, i::pool]  # (B, h', W, K)
    pairs = rows.view(b, rows.shape[1], -1, pool * k)  # (B, h', w', pool·K): a cell's columns side by side
    sums = pairs[..., :k].clone()
    for j in range(1, pool):
        sums += pairs[..., j * k : (j + 1) * k]
    tall = (h - torch.arange(0, h, pool)).clamp(max=pool)  # (h',) pixels per cell, down and across
    wide = (w - torch.arange(0, w, pool)).clamp(max=pool)
    sums /= (tall[:, None] * wide[None, :]).to(sums)[None, :, :, None]
    return sums.flatten(1, 2).transpose(1, 2)  # (B, K, h'·w')


def decoding_source(decode_from: str, presence: torch.Tensor | None) -> str:
    """``auto`` → ``presence`` when the model has an outfit encoder, else ``pixels``."""
    source = decode_from if decode_from != "auto" else ("presence" if presence is not None else "pixels")
    if source == "presence" and presence is None:
        raise ValueError("decode_from='presence' needs an outfit encoder (outfit: aux or gate)")
    return source


def parse_photo(
    model: ModelSpec | ParsingModel,
    logits: torch.Tensor,
    presence: torch.Tensor | None,
    size: tuple[int, int],
    image: torch.Tensor | None = None,
    crf: CRFKind = "none",
    view: LabelView | None = None,
    crf_params: CRFParams | None = None,
    sampled: torch.Tensor | None = None,
    top: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One photo's logits (K, h', w') without padding → its label map (h, w) at ``size`` and the decoded
    garment set (K,) bool (None without ``decode``). With ``decode``, labels that conflict with the decoded
    set are suppressed first; with a ``crf``, the map is refined against the photo (h, w, 3). ``view``: only
    a photo's known garments and/or merged labels (``inference.label_view``); the map and the set are then in
    its labels. ``crf_params``: default ``CRFParams()``. ``sampled``: ``confidence.sampled_probs(logits)``, when the
    caller has it, and ``top`` the logits' argmax (h', w') (both used without a view)."""
    params = crf_params or CRFParams()
    if view is None or view.identity:
        return _decode(model, logits, presence, size, image, crf, params, model.exclusive, sampled, top)
    logits, presence, ids = view.select(logits, presence)  # (L, h', w'), (L,), (L,) output label ids
    exclusive = view.exclusive.to(ids.device)[ids][:, ids]
    labels, chosen = _decode(model, logits, presence, size, image, crf, params, exclusive)
    if chosen is not None:
        full = torch.zeros(len(view.names), dtype=torch.bool)
        full[ids.cpu()] = chosen.cpu()
        chosen = full
    return ids[labels], chosen


def _decode(
    model: ModelSpec | ParsingModel,
    logits: torch.Tensor,
    presence: torch.Tensor | None,
    size: tuple[int, int],
    image: torch.Tensor | None,
    crf: CRFKind,
    params: CRFParams,
    exclusive: torch.Tensor,
    sampled: torch.Tensor | None = None,
    top: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    hp = model.decoding
    chosen = banned = None
    top = argmax(logits, 0) if top is None else top  # (h', w') the network's labels at its own size
    shared = sampled if SAMPLE == 2 else None  # (h'/2, w'/2, K): ``confidence.sampled_probs`` reads those cells
    if hp.decode and bool(exclusive.any()):
        source = decoding_source(hp.decode_from, presence)
        if source == "pixels":
            chosen = pixel_outfit(logits, exclusive, hp.min_fraction, top, sample=SAMPLE, sampled=shared)
            banned = banned_labels(chosen, exclusive)
        else:
            pooled = source == "pooled"
            cells = None if shared is None else shared.permute(2, 0, 1)[None]  # (1, K, h, w)
            probs = (
                pooled_presence(logits[None], hp.min_fraction, sample=SAMPLE, sampled=cells)[0]
                if pooled
                else presence.sigmoid()
            )
            chosen = decode_outfit(probs, exclusive, hp.presence_threshold)
            # Labels below the threshold that the pixels still show must not form a pair either: solve
            # them from the pixels among what the chosen set allows (the two together have no pair).
            excluded = banned_labels(chosen, exclusive)
            top = allowed_argmax(logits, top, excluded)  # the winners among the allowed labels, used twice
            shown = pixel_outfit(logits, exclusive, hp.min_fraction, top, excluded, SAMPLE, shared)
            banned = banned_labels(chosen | shown.to(chosen.device), exclusive)
    valid = tuple(logits.shape[-2:])
    if crf != "none" and image is None:
        raise ValueError(f"crf={crf!r} needs the photo at its original size")
    k = logits.shape[0]
    if crf == "none" or params.unary == "labels":  # the paper's CRF needs only the label map
        labels = upsample_labels(logits, valid, size, banned, top)
        return refine_labels(crf, labels, k, image, params, exclusive), chosen
    if chosen is not None:
        logits = suppress_excluded(logits, chosen, exclusive)
    full = upsample_logits(logits, valid, size)  # (K, h, w)
    return apply_crf(crf, full, image, params, exclusive), chosen
