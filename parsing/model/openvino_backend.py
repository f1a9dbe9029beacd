"""The network on OpenVINO (CPU), in fp32 or bf16: ``Parser.load(backend="openvino", precision="bf16")``.

It runs the same cached ONNX export as the onnxruntime backend (``OnnxBackend`` makes and checks it), compiled by
OpenVINO for this CPU. ``precision`` is explicit: OpenVINO picks bf16 by itself on CPUs with AVX512-BF16 or AMX
unless told, so ``fp32`` asks for f32 and ``bf16`` for bf16 (on a CPU without bf16 units OpenVINO emulates it,
slowly). Compiled blobs are cached beside the exports (``$PARSING_CACHE/openvino``). Needs the ``openvino`` extra.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from parsing.model.backends import Backend, OnnxBackend, Outputs, cache_dir, from_graph, pad32
from parsing.model.parsing_model import ParsingModel

HINTS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoBackend(Backend):
    """``source``: a checkpoint file, ``shipped`` or a ``ParsingModel``; ``precision``: ``fp32`` or ``bf16``;
    ``threads``: OpenVINO's inference threads (default: torch's count)."""

    name = "openvino"
    own_threads = True  # OpenVINO's own thread pool: the network can run beside torch work

    def __init__(self, source: str | Path | ParsingModel, precision: str = "bf16", threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ImportError("backend='openvino' needs OpenVINO: pip install 'clothing-parsing[openvino]'") from None
        if precision not in HINTS:
            raise ValueError(f"precision {precision!r}: choose {' or '.join(HINTS)}")
        self._onnx = OnnxBackend(source, threads)  # the checked ONNX export, and the torch model on demand
        super().__init__(self._onnx.spec, "cpu")
        self.precision = precision
        core = ov.Core()
        core.set_property({"CACHE_DIR": str(cache_dir().parent / "openvino")})
        config = {
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._compiled = core.compile_model(core.read_model(str(self._onnx.path)), "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: calls from several threads take turns

    @property
    def model(self) -> ParsingModel:
        return self._onnx.model

    def forward(self, x: torch.Tensor) -> Outputs:
        """(B, 3, H, W) → logits (B, K, H, W), presence logits (B, K) or None, as the torch network."""
        h, w = x.shape[-2:]
        padded = pad32(x)
        with self._lock:
            results = self._request.infer({"image": padded})
            outputs = [results[output].copy() for output in self._compiled.outputs]  # the request reuses its buffers
        return from_graph(outputs, h, w)

    def __repr__(self) -> str:
        return f"OpenVinoBackend(precision={self.precision})"
