"""The trained model as plain PyTorch (no Lightning): ``ParsingModel``, its checkpoints, its backends and exports.

The names below are imported on first use (PEP 562), so that ``parsing.model.checkpoint.SHIPPED`` and
``parsing.model.load.PRECISIONS`` — what ``parsing-predict --help`` lists — come without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parsing.model.backends import Backend, OnnxBackend, TorchBackend
    from parsing.model.checkpoint import SHIPPED, CheckpointError, read_checkpoint
    from parsing.model.load import load_backend
    from parsing.model.parsing_model import ParsingModel
    from parsing.model.spec import DecodeSettings, ModelSpec

WHERE = {  # name → its module in this package
    "Backend": "backends", "OnnxBackend": "backends", "TorchBackend": "backends", "SHIPPED": "checkpoint",
    "CheckpointError": "checkpoint", "read_checkpoint": "checkpoint", "load_backend": "load",
    "ParsingModel": "parsing_model", "DecodeSettings": "spec", "ModelSpec": "spec",
}  # fmt: skip
__all__ = [
    "SHIPPED", "Backend", "CheckpointError", "DecodeSettings", "ModelSpec", "OnnxBackend", "ParsingModel",
    "TorchBackend", "load_backend", "read_checkpoint",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in WHERE:
        raise AttributeError(f"module 'parsing.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"parsing.model.{WHERE[name]}"), name)
