"""The trained model as plain PyTorch (no Lightning): ``ParsingModel``, its checkpoints, its backends and exports."""

from parsing.model.backends import Backend, OnnxBackend, TorchBackend
from parsing.model.checkpoint import SHIPPED, CheckpointError, read_checkpoint
from parsing.model.load import load_backend
from parsing.model.parsing_model import ParsingModel
from parsing.model.spec import DecodeSettings, ModelSpec

__all__ = [
    "SHIPPED", "Backend", "CheckpointError", "DecodeSettings", "ModelSpec", "OnnxBackend", "ParsingModel",
    "TorchBackend", "load_backend", "read_checkpoint",
]  # fmt: skip
