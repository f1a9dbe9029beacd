"""``ModelSpec``: what a trained model means, without its network — labels, palette, exclusive garment pairs,
decoding settings, the network box — read from a checkpoint without building the network (or importing smp, timm
and torchvision: 1.3 s of start-up). Parsing reads this; only a backend runs the network.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from parsing.labels import palette_for
from parsing.model.checkpoint import input_size, model_state, read_checkpoint

DecodeFrom = Literal["auto", "presence", "pixels", "pooled"]  # where the exclusive-pair decoding reads the set


@dataclass(frozen=True)
class DecodeSettings:
    """How a model's logits become a garment set and a label map (``parsing.inference.decode``).

    ``decode``: choose a garment set that respects the exclusive pairs and suppress the labels it excludes before
    the argmax. ``decode_from``: read the set from the outfit encoder (``presence``), the pixels' label shares
    (``pixels``), the pooled label probabilities (``pooled``) or ``auto`` (presence with an outfit encoder, else
    pixels). ``presence_threshold``: a label's probability to count as present; ``min_fraction``: the share of a
    label map a label must cover to count.
    """

    decode: bool = True
    decode_from: DecodeFrom = "auto"
    presence_threshold: float = 0.5
    min_fraction: float = 0.001

    def __post_init__(self) -> None:
        if self.decode_from not in get_args(DecodeFrom):
            raise ValueError(f"decode_from {self.decode_from!r}: choose one of {', '.join(get_args(DecodeFrom))}")


# The config keys a saved model records (``hyper_parameters``); a fit's checkpoint holds these and its training's.
CONFIG_KEYS = (
    "class_names", "palette", "arch", "encoder", "outfit", "gate_mode", "context", "input_mean", "input_std",
    "channels_last", *(field.name for field in dataclasses.fields(DecodeSettings)),
)  # fmt: skip


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], DecodeSettings]:
    """A saved config (or a fit's ``hyper_parameters``) → the network and label keys it sets (``CONFIG_KEYS`` but
    the decoding ones; unknown and None values dropped) and its ``DecodeSettings`` (missing fields: defaults)."""
    known = {key: config[key] for key in CONFIG_KEYS if config.get(key) is not None}
    decode = {field.name: known.pop(field.name) for field in dataclasses.fields(DecodeSettings) if field.name in known}
    return known, DecodeSettings(**decode)


@dataclass
class ModelSpec:
    """A model's labels (``class_names``, ``palette``), ``exclusive`` (K, K) bool garment pairs, ``decoding``
    settings, network box ``input_size`` (H, W) and ``config`` (what ``ParsingModel.from_config`` builds)."""

    config: dict[str, Any]
    class_names: list[str]
    palette: list[list[int]]
    exclusive: torch.Tensor
    decoding: DecodeSettings
    input_size: tuple[int, int]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | dict[str, Any] = "shipped") -> ModelSpec:
        """The spec of a checkpoint (a file, ``shipped`` or its dict), as ``ParsingModel.from_checkpoint`` reads it."""
        state = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
        known, decoding = split_config(state["hyper_parameters"])
        names = list(known["class_names"])
        palette = palette_for(names, known.get("palette"))
        exclusive = model_state(state["state_dict"]).get("exclusive")
        if exclusive is None:
            exclusive = torch.zeros(len(names), len(names), dtype=torch.bool)
        config = {**known, **dataclasses.asdict(decoding)}
        return cls(config, names, palette, exclusive.bool().cpu(), decoding, input_size(state))
