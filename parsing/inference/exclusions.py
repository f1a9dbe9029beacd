"""Which garments cannot be worn together, and the garment set a parse decodes.

* ``learn_exclusions`` / ``decode_outfit`` — mutually exclusive garment pairs learned from co-occurrence, and the
  most probable garment set that respects them.
"""

from __future__ import annotations

import itertools
import math

import torch

from parsing.data.datasets import presence_targets
from parsing.inference.crf import softmax


def learn_exclusions(
    presence: torch.Tensor,
    garments: torch.Tensor,
    min_count: int = 15,
    min_expected: float = 3.0,
    max_ratio: float = 0.0,
) -> torch.Tensor:
    """Mutually exclusive pairs from a presence table (N images, K labels) → a symmetric (K, K) bool matrix.

    A pair is exclusive when both labels are garments seen in at least ``min_count`` images each, they would
    meet in at least ``min_expected`` images if worn independently (n_a · n_b / N: below that, never seeing
    them together proves nothing), and they do meet in at most ``max_ratio`` × that many (0: never).
    """
    p = presence.float()
    counts = p.sum(0)  # (K,)
    together = p.T @ p  # (K, K)
    expected = counts[:, None] * counts[None, :] / max(len(p), 1)
    frequent = garments.bool() & (counts >= min_count)
    exclusive = (expected >= min_expected) & (together <= max_ratio * expected)
    exclusive &= frequent[:, None] & frequent[None, :]
    exclusive.fill_diagonal_(False)
    return exclusive


def exclusion_pairs(exclusive: torch.Tensor, names: list[str]) -> list[tuple[str, str]]:
    """The exclusive pairs as sorted name pairs, for printing and YAML."""
    rows, cols = torch.nonzero(torch.triu(exclusive, diagonal=1), as_tuple=True)
    pairs = (tuple(sorted((names[i], names[j]))) for i, j in zip(rows.tolist(), cols.tolist(), strict=True))
    return sorted(pairs)


def exclusion_matrix(pairs: list[list[str]] | list[tuple[str, str]], names: list[str]) -> torch.Tensor:
    """Name pairs (from YAML) → a symmetric (K, K) bool matrix; unknown names are an error."""
    index = {name: i for i, name in enumerate(names)}
    exclusive = torch.zeros(len(names), len(names), dtype=torch.bool)
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"an exclusion is a pair of label names, got {pair!r}")
        unknown = [n for n in pair if n not in index]
        if unknown:
            raise ValueError(f"exclusion {list(pair)}: unknown label(s) {unknown}; labels are {names}")
        a, b = index[pair[0]], index[pair[1]]
        exclusive[a, b] = exclusive[b, a] = a != b
    return exclusive


def decode_outfit(probs: torch.Tensor, exclusive: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The most probable label set without an exclusive pair, for one photo: probs (K,) → chosen (K,) bool.

    Maximises Σ log p_c over chosen labels + Σ log(1 − p_c) over the rest: labels above ``threshold`` are
    candidates; each group of mutually conflicting candidates is solved exactly (up to 16 labels; greedily by
    probability beyond that). Labels without conflicts are kept as they are.
    """
    probs = probs.detach().double().cpu().clamp(1e-6, 1 - 1e-6)
    score = torch.log(probs) - torch.log1p(-probs)  # gain of choosing each label
    return consistent_set(probs > threshold, score, exclusive)


def pixel_outfit(
    logits: torch.Tensor,
    exclusive: torch.Tensor,
    min_fraction: float = 0.001,
    top: torch.Tensor | None = None,
    banned: torch.Tensor | None = None,
    sample: int = 1,
    sampled: torch.Tensor | None = None,
) -> torch.Tensor:
    """The garment set read off the segmentation itself, for one photo: logits (K, H, W) → chosen (K,) bool.

    Labels covering at least ``min_fraction`` of the argmax map are candidates, scored by their softmax mass;
    conflicts keep the set with the most mass. For models without an outfit encoder, or to overrule it. ``banned``
    (K,) bool: labels read as if their logits were −∞; ``top``: the argmax map (H, W) when already computed (with
    ``banned``: among the allowed labels, ``allowed_argmax``);
    ``sample``: the mass summed over every ``sample``-th pixel each way (``sample``² times less work);
    ``sampled``: the softmax of those pixels (n_y, n_x, K), when already computed (the parser's shared one).
    """
    k = logits.shape[0]
    if top is None:
        top = logits.max(0).indices
        top = top if banned is None else allowed_argmax(logits, top, banned)
    candidates = presence_targets(top[None], k, min_fraction)[0].bool()  # (K,)
    exclusive = exclusive.to(candidates.device)
    if not (exclusive & candidates[:, None] & candidates[None, :]).any():  # no conflict: the mass is not needed
        return consistent_set(candidates, torch.zeros(k), exclusive)
    return consistent_set(candidates, softmax_mass(logits, sample, banned, sampled), exclusive)


def softmax_mass(
    logits: torch.Tensor, sample: int, banned: torch.Tensor | None = None, sampled: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits (K, H, W) → (K,) each label's softmax probability summed over every ``sample``-th pixel each way,
    ``banned`` (K,) labels left out of the softmax. From ``sampled`` (that softmax with nothing left out,
    (n_y, n_x, K)) when given: the allowed labels' probabilities divided by their share of the cell, and the
    softmax again from the logits only in cells where that share is under 0.5 (a float32 share near 0 would lose
    the digits); 2 matrix-vector products instead of a second softmax (7.8 → 2 ms a photo on CCP, measured)."""
    first = sample // 2
    cells = logits[:, first::sample, first::sample]  # (K, n_y, n_x), a view
    banned = None if banned is None or not bool(banned.any()) else banned.to(logits.device)
    if sampled is None:
        z = cells.float() if banned is None else cells.float().masked_fill(banned[:, None, None], -1e9)
        return softmax(z, 0).sum((1, 2))
    p = sampled.reshape(-1, sampled.shape[-1])  # (N, K)
    if banned is None:
        return p.sum(0)
    kept = 1.0 - p @ banned.to(p.dtype)  # (N,) the allowed labels' share of each cell
    sure = kept >= 0.5
    mass = torch.where(sure, 1.0 / kept, 0.0) @ p  # (K,)
    ys, xs = (~sure).view(sampled.shape[:2]).nonzero(as_tuple=True)
    if len(ys):
        rows = cells.permute(1, 2, 0)[ys, xs].float()  # (M, K) those cells' logits
        mass += rows.masked_fill(banned[None, :], -math.inf).softmax(-1).sum(0)
    return mass.masked_fill(banned, 0.0)


def allowed_argmax(logits: torch.Tensor, top: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
    """The argmax map (H, W) of logits (K, H, W) whose ``banned`` (K,) labels may not win, from their plain argmax
    ``top``: only the pixels a banned label won are looked at again (no copy of all K maps)."""
    banned = banned.to(top.device)
    ys, xs = banned[top].nonzero(as_tuple=True)
    if not len(ys):
        return top
    top = top.clone()
    rows = logits.permute(1, 2, 0)[ys, xs].float()  # (N, K): a pixel's logits in a row, fast to gather
    top[ys, xs] = rows.masked_fill(banned[None, :], -math.inf).max(1).indices
    return top


def consistent_set(candidates: torch.Tensor, score: torch.Tensor, exclusive: torch.Tensor) -> torch.Tensor:
    """The subset of ``candidates`` (K,) bool with no exclusive pair and the largest total ``score`` (K,)."""
    exclusive = exclusive.cpu().bool()
    score = score.detach().double().cpu()
    chosen = candidates.detach().cpu().bool().clone()
    candidates = [i for i in torch.nonzero(chosen).flatten().tolist() if exclusive[i].any()]
    for component in _components(candidates, exclusive):
        if len(component) == 1:
            continue
        best = _best_subset(component, score, exclusive)
        for i in component:
            chosen[i] = i in best
    return chosen


def _components(nodes: list[int], exclusive: torch.Tensor) -> list[list[int]]:
    """Connected groups of ``nodes`` in the conflict graph."""
    left, groups = set(nodes), []
    while left:
        stack, group = [left.pop()], []
        while stack:
            node = stack.pop()
            group.append(node)
            linked = [j for j in left if exclusive[node, j]]
            left.difference_update(linked)
            stack.extend(linked)
        groups.append(sorted(group))
    return groups


def _best_subset(component: list[int], score: torch.Tensor, exclusive: torch.Tensor) -> set[int]:
    if len(component) > 16:  # greedy by probability
        best: set[int] = set()
        for i in sorted(component, key=lambda i: -float(score[i])):
            if not any(exclusive[i, j] for j in best):
                best.add(i)
        return best
    best, best_score = set(), float("-inf")
    for size in range(len(component), 0, -1):
        for subset in itertools.combinations(component, size):
            if any(exclusive[a, b] for a, b in itertools.combinations(subset, 2)):
                continue
            total = float(sum(score[i] for i in subset))
            if total > best_score:
                best, best_score = set(subset), total
    return best


def banned_labels(chosen: torch.Tensor, exclusive: torch.Tensor) -> torch.Tensor:
    """Labels (K,) bool that conflict with a chosen one (and are not chosen themselves)."""
    chosen = chosen.to(exclusive.device)
    return (exclusive & chosen[:, None]).any(0) & ~chosen


def suppress_excluded(logits: torch.Tensor, chosen: torch.Tensor, exclusive: torch.Tensor) -> torch.Tensor:
    """Logits (K, H, W) of one photo with every label that conflicts with a chosen one pushed to −1e9."""
    banned = banned_labels(chosen, exclusive).to(logits.device)
    return logits.masked_fill(banned[:, None, None], -1e9)  # finite: bilinear resizing stays NaN-free


def violations(labels: torch.Tensor, exclusive: torch.Tensor, num_classes: int, min_fraction: float = 0.001) -> bool:
    """Whether a label map (H, W) holds an exclusive pair, each covering at least ``min_fraction`` of it."""
    present = presence_targets(labels[None].long(), num_classes, min_fraction)[0].bool()
    return bool((exclusive.to(present.device) & present[:, None] & present[None, :]).any())
