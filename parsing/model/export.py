"""A ``ParsingModel``'s network as ONNX or TorchScript, and the checks that an export answers like torch.

The exported graph takes photos (B, 3, H, W) float RGB in [0, 1], H and W any multiples of 32 (fit and pad a photo
as ``parsing.data.transforms.eval_transform`` does), normalises them itself and returns ``logits`` (B, K, H, W) —
gated by the outfit encoder when the model gates — and, when it has an outfit encoder, ``presence`` (B, K)
probabilities. Decoding, the CRF and resizing to the photo stay in Python.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from parsing.model.parsing_model import ParsingModel
from parsing.nn.outfit import gate


class ExportNet(nn.Module):
    """ParsingNet without the /32 padding (the exported input is already a multiple of 32). ``channels_last``:
    logits (B, H, W, K), the layout the steps after the network read fastest (the onnxruntime backend)."""

    def __init__(self, model: ParsingModel, channels_last: bool = False) -> None:
        super().__init__()
        self.net = model.net
        self.gated = model.net.gate_mode is not None
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.net.features(x)
        logits = self.net.seg.segmentation_head(self.net.seg.decoder(features))  # (B, K, H, W)
        presence = self.net.outfit(features[-1]) if self.net.outfit is not None else None  # (B, K) logits
        if self.gated:
            logits = gate(logits, presence, self.net.gate_mode)
        if self.channels_last:
            logits = logits.permute(0, 2, 3, 1)  # (B, H, W, K)
        return logits if presence is None else (logits, torch.sigmoid(presence))


def output_names(model: ParsingModel) -> list[str]:
    return ["logits"] if model.net.outfit is None else ["logits", "presence"]


def export_onnx(
    model: ParsingModel,
    path: str | Path,
    size: tuple[int, int] = (512, 352),
    opset: int = 17,
    channels_last: bool = False,
) -> Path:
    """Write an ONNX model with dynamic batch, height and width; ``channels_last``: logits (B, H, W, K)."""
    net = ExportNet(model, channels_last).eval().float()
    example = torch.rand(1, 3, *size)
    names = output_names(model)
    spatial = {1: "height", 2: "width"} if channels_last else {2: "height", 3: "width"}
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", **spatial}}
    if "presence" in names:
        axes["presence"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(
            net, (example,), str(path), input_names=["image"], output_names=names, dynamic_axes=axes,
            opset_version=opset, dynamo=False,
        )  # fmt: skip
    return Path(path)


def export_torchscript(model: ParsingModel, path: str | Path, size: tuple[int, int] = (512, 352)) -> Path:
    """Write a traced TorchScript module (any multiple-of-32 size: the traced graph has no fixed shapes)."""
    net = ExportNet(model).eval().float()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, torch.rand(1, 3, *size), check_trace=False)
    traced.save(str(path))
    return Path(path)


def reference_outputs(model: ParsingModel, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = ExportNet(model).eval()(x)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def onnx_parity(model: ParsingModel, path: str | Path, x: torch.Tensor) -> float:
    """Max abs difference between onnxruntime's and torch's outputs on ``x`` (B, 3, H, W)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})
    return max(float(np.abs(g - r).max()) for g, r in zip(got, reference_outputs(model, x), strict=True))


def torchscript_parity(model: ParsingModel, path: str | Path, x: torch.Tensor) -> float:
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        got = loaded(x)
    got = [t.numpy() for t in (got if isinstance(got, tuple) else (got,))]
    return max(float(np.abs(g - r).max()) for g, r in zip(got, reference_outputs(model, x), strict=True))
