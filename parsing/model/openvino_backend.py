"""The network on OpenVINO (CPU), in fp32, bf16, mixed or int8: ``Parser.load(backend="openvino", precision="int8")``.

It runs the same cached ONNX export as the onnxruntime backend (``OnnxBackend`` makes and checks it), compiled by
OpenVINO for this CPU once per input shape: a static shape ran bf16 2× faster than the dynamic graph here (49
against 131 ms per photo; fp32 104 against 215), and a catalogue's photos fit into a few shapes. ``precision`` is
explicit: OpenVINO picks bf16 by itself on CPUs with AVX512-BF16 or AMX unless told, so ``fp32`` asks for f32 and
``bf16`` for bf16 (a CPU without bf16 units emulates it, slowly). Compiled blobs are cached beside the exports
(``$PARSING_CACHE/openvino``). ``mixed``: the encoder in fp32 and the decoder and heads in bf16 (two graphs,
``parsing.model.split``): the masks of fp32 within ~0.1 % of pixels, most of bf16's speed. ``int8``: the encoder in
fp32 and the decoder in int8 (``parsing.model.quantize``, made on first use and cached; the head and the layers
between the int8 ones in bf16 where the CPU has bf16 units): fp32's masks on ~99.8 % of pixels, faster than
``mixed`` on CPUs with int8 dot-product units (VNNI, AMX). Needs the ``openvino`` extra.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from parsing.model.backends import Backend, OnnxBackend, Outputs, cache_dir, from_graph, pad32
from parsing.model.parsing_model import ParsingModel

HINTS = {"fp32": "f32", "bf16": "bf16", "mixed": "bf16", "int8": "bf16"}  # mixed, int8: the decoder's; encoder f32
SHAPES = 16  # compiled input shapes kept per backend (least recently used dropped)


class OpenVinoBackend(Backend):
    """``source``: a checkpoint file, ``shipped`` or a ``ParsingModel``; ``precision``: ``fp32``, ``bf16``,
    ``mixed`` or ``int8``; ``threads``: OpenVINO's inference threads (default: torch's count)."""

    name = "openvino"
    own_threads = True  # OpenVINO's own thread pool: the network can run beside torch work

    def __init__(self, source: str | Path | ParsingModel, precision: str = "bf16", threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ImportError("backend='openvino' needs OpenVINO: pip install 'clothing-parsing[openvino]'") from None
        if precision not in HINTS:
            raise ValueError(f"precision {precision!r}: choose {', '.join(HINTS)}")
        self._onnx = OnnxBackend(source, threads)  # the checked ONNX export, and the torch model on demand
        super().__init__(self._onnx.spec, "cpu")
        self.precision = precision
        self._core = ov.Core()
        self._core.set_property({"CACHE_DIR": str(cache_dir().parent / "openvino")})
        hint = HINTS[precision]
        if precision == "int8" and "BF16" not in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            hint = "f32"  # no bf16 units: what is not int8 runs in fp32
        self._config = {
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),  # for_stream: another count
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._parts = self._cut() if precision in ("mixed", "int8") else None  # encoder, decoder, what crosses
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()  # shape → compiled model(s)
        self._lock = threading.Lock()  # guards the compiled shapes; inference itself runs concurrently
        box = (1, 3, *(-(-side // 32) * 32 for side in self.spec.input_size))
        self._model_for((*box, self._config["INFERENCE_NUM_THREADS"]))  # the network box, now

    @property
    def model(self) -> ParsingModel:
        return self._onnx.model

    def forward(self, x: torch.Tensor) -> Outputs:
        """(B, 3, H, W) → logits (B, K, H, W), presence logits (B, K) or None, as the torch network."""
        h, w = x.shape[-2:]
        padded = pad32(x)
        compiled = self._model_for((*padded.shape, self._config["INFERENCE_NUM_THREADS"]))
        # A request per call, its outputs shared rather than copied: each array keeps its OpenVINO tensor alive,
        # and no later call writes into it (copying the 52 MB of logits cost ~20 ms a photo).
        if self._parts is None:
            results = compiled.create_infer_request().infer({"image": padded}, share_outputs=True)
            return from_graph([results[output] for output in compiled.outputs], h, w)
        encoder, decoder = compiled
        crossing = self._parts[2]
        first = encoder.create_infer_request().infer({"image": padded}, share_outputs=True)
        features = {n: first[encoder.output(n)] for n in crossing}  # (B, C, H/s, W/s) each
        second = decoder.create_infer_request().infer(features, share_outputs=True)
        rest = [first[output] for output in encoder.outputs if output.get_any_name() not in crossing]  # presence
        return from_graph([second[decoder.outputs[0]], *rest], h, w)

    def for_stream(self) -> OpenVinoBackend:
        """This backend for a stream of photos whose network runs beside the previous photo's decoding: half the
        threads, so the two stop fighting over the cores (2 cores, 40 photos: 0.166 against 0.178 s a photo; one
        photo alone is slower so, 0.25 against 0.19 s). Shares the compiled graphs; the same outputs."""
        threads = self._config["INFERENCE_NUM_THREADS"]
        if threads <= 1:
            return self
        other = copy.copy(self)  # the compiled-graph cache and its lock are shared, keyed by thread count
        other._config = {**self._config, "INFERENCE_NUM_THREADS": threads // 2}
        return other

    def _model_for(self, key: tuple[int, ...]) -> Any:
        """The model compiled for input shape (B, 3, H, W) and thread count ``key``, compiled on first use."""
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = self._compile(key[:4], key[4])
                if len(self._compiled) > SHAPES:
                    self._compiled.popitem(last=False)
            self._compiled.move_to_end(key)
            return self._compiled[key]

    def _compile(self, shape: tuple[int, ...], threads: int) -> Any:
        """The whole graph compiled for input ``shape``; with ``mixed`` or ``int8``, its encoder in fp32 and its
        decoder (bf16, or the int8 graph) reshaped to the encoder's outputs. Each graph file is read once."""
        if self._parts is None:
            graph = self._core.read_model(str(self._onnx.path))
            graph.reshape({"image": list(shape)})
            return self._core.compile_model(graph, "CPU", {**self._config, "INFERENCE_NUM_THREADS": threads})
        try:
            first, second = (self._core.read_model(str(part)) for part in self._parts[:2])
        except RuntimeError:  # a damaged graph of the right size: make the graphs again, once
            self._parts = self._cut(force=True)
            first, second = (self._core.read_model(str(part)) for part in self._parts[:2])
        encoder = self._encoder(first, shape, threads)
        second.reshape({n: list(encoder.output(n).get_shape()) for n in self._parts[2]})
        return encoder, self._core.compile_model(second, "CPU", {**self._config, "INFERENCE_NUM_THREADS": threads})

    def _encoder(self, graph: Any, shape: tuple[int, ...], threads: int) -> Any:
        """The first graph (encoder, outfit encoder), read by OpenVINO, compiled in fp32 for input ``shape``."""
        graph.reshape({"image": list(shape)})
        config = {**self._config, "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        return self._core.compile_model(graph, "CPU", config)

    def _cut(self, force: bool = False) -> tuple[Path, Path, list[str]]:
        """The export cut in two (``parsing.model.split``); with ``int8``, the second graph is its int8 version."""
        from parsing.model.split import split_export

        first, second, crossing = split_export(self._onnx.path, force=force)
        if self.precision != "int8":
            return first, second, crossing
        from parsing.model.quantize import calibration_inputs, int8_decoder

        def features() -> list[dict]:  # the fp32 encoder's outputs on the calibration photos
            found, compiled, graph = [], {}, self._core.read_model(str(first))
            for x in calibration_inputs(self.spec.input_size):  # (1, 3, H, W): a few shapes
                if x.shape not in compiled:
                    compiled[x.shape] = self._encoder(graph, x.shape, self._config["INFERENCE_NUM_THREADS"])
                result = compiled[x.shape]({"image": x})
                found.append({name: np.array(result[name]) for name in crossing})
            return found

        return first, int8_decoder(second, features, self._onnx.path, force=force), crossing

    def __repr__(self) -> str:
        return f"OpenVinoBackend(precision={self.precision})"
