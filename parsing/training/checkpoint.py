"""Checkpoints: read one (any parsing checkpoint, packed or from ``fit``), rebuild its module, its inference size."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

import torch

from parsing.training.module import ParsingModule

# Modules that moved when the package was laid out by role: older checkpoints may pickle their classes.
MOVED = {
    **{f"parsing.{m}": f"parsing.data.{m}" for m in ("io", "datasets", "coco", "transforms", "datamodule", "check")},
    **{f"parsing.{m}": f"parsing.nn.{m}" for m in ("model", "fcn", "context", "losses", "encoder_weights")},
    **{f"parsing.{m}": f"parsing.training.{m}" for m in ("module", "transfer", "metrics")},
    **{f"parsing.{m}": f"parsing.inference.{m}" for m in ("crf", "resize", "refocus", "confidence", "label_view")},
    "parsing.outfit": "parsing.inference.exclusions",
}


class CheckpointError(ValueError):
    """A file that is not a usable parsing checkpoint; the message starts with its path."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "parsing.outfit" and name in ("OutfitEncoder", "GateMode"):
            module = "parsing.nn.outfit"
        return super().find_class(MOVED.get(module, module), name)


class _PickleModule:
    """``torch.load``'s ``pickle_module``: pickle, with classes of moved modules found at their new place."""

    Unpickler = _Unpickler
    load = staticmethod(pickle.load)
    __name__ = "pickle"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A parsing checkpoint as a dict (read once); ``CheckpointError`` saying what is wrong with anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError):
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt)") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"{path}: not a parsing checkpoint (no 'state_dict': a plain weights file?)")
    if "class_names" not in (state.get("hyper_parameters") or {}):
        raise CheckpointError(f"{path}: not a parsing checkpoint (no label set: 'hyper_parameters.class_names')")
    return state


def module_from_checkpoint(state: dict[str, Any]) -> ParsingModule:
    """The module a checkpoint dict describes, with its weights, never downloading or reading ``init_from``;
    hyperparameters this version no longer has are dropped (see ``ParsingModule.on_load_checkpoint``)."""
    known = inspect.signature(ParsingModule.__init__).parameters
    hparams = {k: v for k, v in state["hyper_parameters"].items() if k in known}
    module = ParsingModule(**{**hparams, "encoder_weights": None, "init_from": None})
    module.on_load_checkpoint(state)
    module.load_state_dict(state["state_dict"])
    return module


def input_size(state: dict[str, Any]) -> tuple[int, int]:
    """A checkpoint's network input size (H, W) for inference: the ``input_size`` ``parsing pack --input-size``
    recorded (measured for that model), else the size it was trained at."""
    size = state.get("input_size") or state.get("datamodule_hyper_parameters", {}).get("size", (384, 256))
    return int(size[0]), int(size[1])
