"""``init_from`` across label sets: start a model from another model's weights when their labels differ.

A user's own label set (``data.labels``, a ``data.merge``, a COCO category list) rarely equals the checkpoint's:
the encoder and decoder carry over whole; the per-label tensors — the segmentation head's and the outfit encoder's
output rows — are copied row by row for the labels both sets name alike (case-insensitive; ``null`` =
``background``), the other rows keep their fresh initialisation; the exclusive garment pairs are learned afresh.
``init_from: shipped`` names the model inside the package (``parsing-predict``'s default).
"""

from __future__ import annotations

import torch

from parsing.model.checkpoint import checkpoint_path, model_state, read_checkpoint
from parsing.model.parsing_model import ParsingModel

PER_LABEL = ("net.seg.segmentation_head.", "net.outfit.out.")  # tensors whose first axis is the label axis
RELEARNED = ("exclusive",)  # (K, K) garment pairs: learned again from the new training masks
BACKGROUND = frozenset({"null", "background"})


def _key(name: str) -> str:
    name = name.strip().lower()
    return "background" if name in BACKGROUND else name


def matching_labels(source: list[str], target: list[str]) -> list[tuple[int, int]]:
    """(target index, source index) for each target label the source names alike."""
    index = {_key(name): j for j, name in enumerate(source)}
    return [(i, index[_key(name)]) for i, name in enumerate(target) if _key(name) in index]


def transfer_state(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], source: list[str], target: list[str]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A source model's ``state`` (labels ``source``) made loadable (``strict=False``) into a model whose own state
    is ``own`` (labels ``target``) → that state and the keys left at their fresh initialisation."""
    if list(source) == list(target):
        return state, []
    pairs = matching_labels(source, target)
    rows_to, rows_from = [i for i, _ in pairs], [j for _, j in pairs]
    out, fresh = {}, []
    for key, value in state.items():
        mine = own.get(key)
        if mine is None:
            out[key] = value  # not in this model: load_state_dict reports it as unused
        elif key in RELEARNED:
            fresh.append(key)
        elif key.startswith(PER_LABEL) and value.shape[1:] == mine.shape[1:]:
            rows = mine.clone()
            rows[rows_to] = value[rows_from].to(rows.dtype)
            out[key] = rows
        elif value.shape == mine.shape:
            out[key] = value
        else:
            fresh.append(key)
    return out, fresh


def init_from(model: ParsingModel, checkpoint: str) -> list[str]:
    """Start ``model`` from ``checkpoint``'s weights (``shipped`` or a file), across label sets → lines to log."""
    source = read_checkpoint(checkpoint_path(checkpoint))
    names, own = source["hyper_parameters"]["class_names"], model.class_names
    state, fresh = transfer_state(model_state(source["state_dict"]), model.state_dict(), names, own)
    missing, unexpected = model.load_state_dict(state, strict=False)
    lines = [f"init_from {checkpoint}: new {sorted(missing)}; unused {sorted(unexpected)}"]
    if names != own:
        kept = [own[i] for i, _ in matching_labels(names, own)]
        new = [n for n in own if n not in kept]
        dropped = [names[j] for j in range(len(names)) if j not in {s for _, s in matching_labels(names, kept)}]
        lines.append(
            f"init_from: your labels from {len(names)} of the source's: kept {kept}; new (learned from "
            f"scratch) {new}; not used {dropped}; relearned from your masks: {sorted(fresh)}"
        )
    return lines
