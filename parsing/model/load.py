"""``load_backend``: the backend a name asks for, or the best one installed (``auto``)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from parsing.model.backends import Backend, OnnxBackend, TorchBackend
from parsing.model.parsing_model import ParsingModel

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "mixed")  # openvino only: bf16 runs on AMX / AVX512-BF16 where the CPU has them


def load_backend(
    source: str | Path | ParsingModel = "shipped", name: str = "auto", device: str = "cpu", precision: str = "fp32"
) -> Backend:
    """A backend for ``source`` (a checkpoint file, ``shipped``, or a ``ParsingModel``). ``name``: ``torch``,
    ``onnxruntime`` (CPU only), ``openvino`` (CPU only; ``precision`` ``fp32`` or ``bf16``, the ``openvino`` extra)
    or ``auto``: onnxruntime on the CPU where ``onnx`` and ``onnxruntime`` are installed (the ``onnx`` extra; same
    masks, faster end to end), else torch — also, with a warning, when the export or its cache fails."""
    if name not in ("auto", *BACKENDS):
        raise ValueError(f"backend {name!r}: choose auto, {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose {', '.join(PRECISIONS)}")
    if precision != "fp32" and name != "openvino":
        raise ValueError(f"precision={precision!r} is for backend='openvino'; the other backends run fp32")
    if name in ("onnxruntime", "openvino") and str(device) != "cpu":
        raise ValueError(f"backend={name!r} runs on the CPU here; on a GPU use backend='torch'")
    if name == "onnxruntime":
        return OnnxBackend(source)
    if name == "openvino":
        from parsing.model.openvino_backend import OpenVinoBackend  # the openvino extra, imported when asked for

        return OpenVinoBackend(source, precision)
    if name == "auto" and str(device) == "cpu" and all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
        try:
            return OnnxBackend(source)
        except (FileNotFoundError, ValueError):
            raise  # the checkpoint itself: no fallback can read it either
        except Exception as err:  # an export or a cache that fails: any error of onnx, onnxruntime or the disk  # noqa: BLE001
            problem = f"{type(err).__name__}: {err}"
            warnings.warn(f"the network runs on torch: onnxruntime could not ({problem})", stacklevel=2)
    model = source if isinstance(source, ParsingModel) else ParsingModel.from_checkpoint(source)
    return TorchBackend(model, device)
