"""Checkpoint files: read one (packed by ``parsing pack`` or written by ``fit``), its network input size, ``shipped``.

A checkpoint is a dict with ``hyper_parameters`` (the model's config, ``class_names`` at least), ``state_dict``
and, when packed, ``input_size``. Lightning's ``fit`` stores the model's tensors under ``model.`` (the trainer holds
a ``ParsingModel``); packed files and checkpoints from before 0.5 store them as ``net.*`` and ``exclusive``:
``model_state`` reads both.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

SHIPPED = Path(__file__).parents[1] / "assets" / "ccp-fpn-lite0.ckpt"  # the model inside the package
DEFAULT_INPUT_SIZE = (384, 256)

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


def checkpoint_path(checkpoint: str | Path) -> Path:
    """A checkpoint's file: ``shipped`` is the package's own model."""
    return SHIPPED if str(checkpoint) == "shipped" else Path(checkpoint)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A parsing checkpoint as a dict (read once); ``CheckpointError`` saying what is wrong with anything else."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    import torch  # here, not at import: ``parsing-predict --help`` and the choices it lists need no torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError):
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt)") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"{path}: not a parsing checkpoint (no 'state_dict': a plain weights file?)")
    if "class_names" not in (state.get("hyper_parameters") or {}):
        raise CheckpointError(f"{path}: not a parsing checkpoint (no label set: 'hyper_parameters.class_names')")
    return state


def model_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors in ``ParsingModel``'s names (``net.*``, ``exclusive``): a Lightning ``fit``'s
    ``model.`` prefix removed, its training-only tensors (metrics, losses) left out."""
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("model.")
        if key.startswith("net.") or key == "exclusive":
            out[key] = value
    return out


def input_size(state: dict[str, Any]) -> tuple[int, int]:
    """A checkpoint's network input size (H, W) for inference: the ``input_size`` ``parsing pack --input-size``
    recorded (measured for that model), else the size it was trained at."""
    size = state.get("input_size") or state.get("datamodule_hyper_parameters", {}).get("size", DEFAULT_INPUT_SIZE)
    return int(size[0]), int(size[1])
