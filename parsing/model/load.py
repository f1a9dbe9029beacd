"""``load_backend``: the backend a name asks for, or the best one installed (``auto``)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from parsing.model.backends import Backend, OnnxBackend, TorchBackend
from parsing.model.parsing_model import ParsingModel

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "mixed", "bf16", "int8")  # all but fp32: OpenVINO
DEFAULT = "int8"  # auto's precision on a CPU with bf16 units (all of which have int8 dot products: VNNI or AMX)


def cpu_has_bf16() -> bool:
    """Whether OpenVINO is installed and finds bf16 units on this CPU (AMX or AVX512-BF16)."""
    if importlib.util.find_spec("openvino") is None:
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def load_backend(
    source: str | Path | ParsingModel = "shipped", name: str = "auto", device: str = "cpu", precision: str = "auto"
) -> Backend:
    """A backend for ``source`` (a checkpoint file, ``shipped``, or a ``ParsingModel``). ``name``: ``torch``,
    ``onnxruntime`` (CPU only), ``openvino`` (CPU only, the ``openvino`` extra) or ``auto``: on a CPU with bf16 units
    where OpenVINO is installed, OpenVINO ``int8`` (the encoder in fp32, the decoder in int8: fp32's garments, its
    masks on ~99.8 % of pixels, ``bench/results/precision.md``); else onnxruntime where ``onnx`` and ``onnxruntime``
    are installed (the ``onnx`` extra: fp32, faster than torch); else torch — also, with a warning, when the export
    or its cache fails. ``precision``: ``auto`` (``int8`` where the CPU has bf16 units, else ``fp32``), ``fp32``
    (fp32 on any backend), ``mixed`` (the decoder in bf16), ``int8`` or ``bf16`` (the whole network; OpenVINO only).
    """
    if name not in ("auto", *BACKENDS):
        raise ValueError(f"backend {name!r}: choose auto, {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose {', '.join(PRECISIONS)}")
    if precision in ("mixed", "bf16", "int8") and name not in ("auto", "openvino"):
        raise ValueError(f"precision={precision!r} is for backend='openvino'; the other backends run fp32")
    if name in ("onnxruntime", "openvino") and str(device) != "cpu":
        raise ValueError(f"backend={name!r} runs on the CPU here; on a GPU use backend='torch'")
    if name == "onnxruntime":
        return OnnxBackend(source)
    if name == "openvino" or precision in ("mixed", "bf16", "int8"):
        from parsing.model.openvino_backend import OpenVinoBackend  # the openvino extra, imported when asked for

        if str(device) != "cpu":
            raise ValueError(f"precision={precision!r} runs on the CPU (OpenVINO); on a GPU use backend='torch'")
        wanted = precision if precision != "auto" else (DEFAULT if cpu_has_bf16() else "fp32")
        return OpenVinoBackend(source, wanted)
    if name == "auto" and str(device) == "cpu" and all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
        try:
            if precision == "auto" and cpu_has_bf16():
                from parsing.model.openvino_backend import OpenVinoBackend

                return OpenVinoBackend(source, DEFAULT)
            return OnnxBackend(source)
        except (FileNotFoundError, ValueError):
            raise  # the checkpoint itself: no fallback can read it either
        except Exception as err:  # an export or a cache that fails: any error of onnx, onnxruntime or the disk  # noqa: BLE001
            problem = f"{type(err).__name__}: {err}"
            warnings.warn(f"the network runs on torch: onnxruntime could not ({problem})", stacklevel=2)
    model = source if isinstance(source, ParsingModel) else ParsingModel.from_checkpoint(source)
    return TorchBackend(model, device)
