"""What a parse may say: only a photo's known garments (tags), and/or the model's labels merged into groups.

``LabelView`` turns a model's logits (K, H, W) into the logits of the labels a parse may assign, in the order:

1. **tags**: labels outside ``allowed`` (the listed garments plus the non-garment labels) are dropped, as if their
   probability were 0;
2. **merge**: the probabilities of each group's remaining members are summed before any argmax
   (log-sum-exp of their logits), so a group wins a pixel when its members together are the likeliest;
3. then, in ``ParsingModule.parse_photo``: exclusive-pair decoding and the CRF on these labels.

Two groups exclude each other when every pair of their members does.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from parsing.labels import MERGES, NON_GARMENTS, LabelSet


@dataclass(frozen=True)
class LabelView:
    """Output labels (``names``, ``palette``) over a model's K labels.

    ``group`` (K,) long: each model label's output label; ``keep`` (K,) bool: the model labels that may be
    assigned; ``exclusive`` (G, G) bool over output labels.
    """

    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    group: torch.Tensor
    keep: torch.Tensor
    exclusive: torch.Tensor

    @classmethod
    def build(
        cls,
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        exclusive: torch.Tensor,
        merge: str | dict[str, list[str]] | None = None,
        garments: Sequence[str] | None = None,
    ) -> LabelView:
        """``merge``: a preset (``ccp-coarse``) or ``{group: [labels]}`` (unlisted labels join the first group,
        the background); ``garments``: the only garments a photo may hold (names of the model's labels)."""
        names = list(class_names)
        check_garments(garments, names)
        k = len(names)
        keep = torch.ones(k, dtype=torch.bool)
        if garments is not None:
            keep = torch.tensor([n in NON_GARMENTS or n in set(garments) for n in names])
        if merge is None:
            out_names, out_palette, group = tuple(names), tuple(tuple(c) for c in palette), torch.arange(k)
            out_exclusive = exclusive.cpu().bool()
        else:
            merged = LabelSet.identity(names).merged(merge)
            out_names, out_palette = merged.names, merged.colours
            group = torch.from_numpy(merged.lut[:k].astype("int64"))
            out_exclusive = _group_exclusive(exclusive.cpu().bool(), group, len(out_names))
        return cls(out_names, out_palette, group, keep, out_exclusive)

    @property
    def identity(self) -> bool:
        return bool(self.keep.all()) and len(self.names) == len(self.group)

    def select(self, logits: torch.Tensor, presence: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """One photo's logits (K, H, W) and presence logits (K,) or None → the assignable output labels' logits
        (L, H, W), their presence logits (L,) or None, and their output ids (L,)."""
        ids = self.keep.nonzero().flatten()  # (K',) model labels that may be assigned
        ids = ids.to(logits.device)
        if not self.keep.all():
            logits = _labels_of(logits, ids)  # only the few kept maps are copied
            presence = None if presence is None else presence.index_select(0, ids)
        group = self.group.to(logits.device)[ids]  # (K',) their output labels
        out = torch.unique(group)  # (L,) sorted output ids
        if len(out) == len(group):  # no two kept labels share a group: nothing to sum, maybe to reorder
            order = torch.argsort(group)
            if bool((order == torch.arange(len(order), device=order.device)).all()):
                return logits, presence, out
            return _labels_of(logits, order), None if presence is None else presence[order], out
        slot = torch.searchsorted(out, group)  # (K',) each kept label's row in the output
        members = torch.zeros(len(group), len(out), device=logits.device)  # (K', L) one-hot: label → group
        members[torch.arange(len(group), device=logits.device), slot] = 1.0
        merged = _group_logsumexp(logits, members)  # (L, H, W)
        if presence is not None:
            absent = _group_log_absent(torch.nn.functional.logsigmoid(-presence.float()), slot, len(out))
            presence = torch.logit(-torch.expm1(absent), eps=1e-6)
        return merged, presence, out

    def presence_probs(self, probs: torch.Tensor | None) -> torch.Tensor | None:
        """Presence probabilities (K,) → per output label (G,): a group is present unless all members are absent."""
        if probs is None or len(self.names) == len(self.group):
            return probs
        log_absent = torch.log1p(-probs.double().cpu().clamp(max=1 - 1e-12))  # (K,)
        return (-torch.expm1(_group_log_absent(log_absent, self.group, len(self.names)))).float()


# Everyday names for CCP's labels: what users type (checked against the model's names; unknown ones are skipped).
SYNONYMS = {
    "trousers": "pants",
    "tshirt": "t-shirt",
    "tee": "t-shirt",
    "t shirt": "t-shirt",
    "handbag": "bag",
    "jumpsuit": "romper",
    "trainers": "sneakers",
    "spectacles": "glasses",
    "jumper": "sweater",
    "shoe": "shoes",
    "pant": "pants",
    "short": "shorts",
    "boot": "boots",
    "sandal": "sandals",
    "sneaker": "sneakers",
}


def resolve_garments(garments: Sequence[str], names: Sequence[str]) -> list[str]:
    """User-typed garment names → the model's (case and surrounding spaces ignored); unknown names are a ValueError
    naming each with a did-you-mean and the valid names."""
    valid = [n for n in names if n not in NON_GARMENTS]
    by_key = {n.lower(): n for n in valid}
    out, unknown = [], []
    for garment in garments:
        key = str(garment).strip().lower()
        if key in by_key:
            out.append(by_key[key])
        else:
            unknown.append(str(garment))
    if unknown:
        hints = []
        for name in unknown:
            key = name.strip().lower()
            guess = SYNONYMS.get(key) if SYNONYMS.get(key) in by_key else None
            close = [guess] if guess else difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {by_key[close[0]]}?)" if close else ""))
        raise ValueError(f"unknown garment name(s) {', '.join(hints)}; valid names: {', '.join(valid)}")
    return out


def check_garments(garments: Sequence[str] | None, names: Sequence[str]) -> None:
    """Raise a ValueError naming unknown garment names (exact model names) and the valid ones."""
    if garments is None:
        return
    valid = [n for n in names if n not in NON_GARMENTS]
    if any(g not in valid for g in garments):
        resolve_garments(garments, names)  # raises, with hints
        raise ValueError(f"garment names are case-sensitive here: {list(garments)}; valid names: {', '.join(valid)}")


def read_merge(spec: str | Path | None) -> str | dict[str, list[str]] | None:
    """``--merge``: a preset name or a YAML file ``{group: [labels]}`` (ValueError naming the problem). YAML reads
    an unquoted ``null`` as nothing: as a group or label name it means CCP's ``null`` label."""
    if spec is None or spec in MERGES:
        return None if spec is None else str(spec)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--merge {spec}: neither a preset ({', '.join(sorted(MERGES))}) nor a YAML file")
    try:
        groups = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise ValueError(f"{path}: a merge is a mapping of group names to lists of labels")
    return {"null" if k is None else str(k): ["null" if v is None else str(v) for v in vs] for k, vs in groups.items()}


def _group_log_absent(log_absent: torch.Tensor, group: torch.Tensor, g: int) -> torch.Tensor:
    """Members' log P(absent) (K,) → each of the ``g`` groups' (G,): a group is absent only when all its members
    are (their log-probabilities add up), so it is present unless all its members are absent."""
    out = torch.zeros(g, dtype=log_absent.dtype, device=log_absent.device)
    return out.index_add_(0, group.to(log_absent.device), log_absent)


def _group_exclusive(exclusive: torch.Tensor, group: torch.Tensor, g: int) -> torch.Tensor:
    """(K, K) label exclusions → (G, G): two groups exclude each other when every member pair does."""
    out = torch.zeros(g, g, dtype=torch.bool)
    for a in range(g):
        for b in range(a + 1, g):
            ia, ib = (group == a).nonzero().flatten(), (group == b).nonzero().flatten()
            if len(ia) and len(ib) and bool(exclusive[ia][:, ib].all()):
                out[a, b] = out[b, a] = True
    return out


def _group_logsumexp(logits: torch.Tensor, members: torch.Tensor, rows: int = 16384) -> torch.Tensor:
    """Logits (K', H, W) and a one-hot (K', L) label → group matrix → (L, H, W) channels-last: per pixel, the log of
    each group's summed probability (+ the pixel's shift). Taken as (H·W, K') @ (K', L) products — the network's
    channels-last logits make that view free, twice as fast as index_add_ over the label axis — ``rows`` pixels at
    a time: fresh full-photo buffers cost more in page faults than the arithmetic (70 → 27 ms at 576×384, 59 → 17
    labels, 2 threads, the same values)."""
    k, h, w = logits.shape
    flat = logits.float().permute(1, 2, 0).reshape(-1, k)  # (H·W, K'): a view for channels-last logits
    out = torch.empty(h * w, members.shape[1], device=logits.device)  # (H·W, L)
    for first in range(0, h * w, rows):
        chunk, part = flat[first : first + rows], out[first : first + rows]
        top = chunk.amax(1, keepdim=True)  # (n, 1) for a stable log-sum-exp
        torch.mm(torch.sub(chunk, top).exp_(), members, out=part)
        part.clamp_(min=1e-30).log_().add_(top)
    return out.view(h, w, -1).permute(2, 0, 1)


def _labels_of(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Logits (K, H, W) → (len(ids), H, W), in the layout they came in: channels-last logits stay channels-last (the
    steps after are written for it), taken as columns of the (H, W, K) view."""
    if logits.stride(0) == 1:
        return logits.permute(1, 2, 0)[..., ids].permute(2, 0, 1)
    return logits.index_select(0, ids)
