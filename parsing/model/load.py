"""``load_backend``: the backend a name asks for, or the best one installed (``auto``)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by load_backend: the names below need no torch (``parsing-predict --help``)
    from parsing.model.backends import Backend
    from parsing.model.parsing_model import ParsingModel

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "mixed", "bf16", "int8")  # all but fp32: OpenVINO
DEFAULT = "int8"  # auto's precision on a CPU with int8 dot-product units (VNNI or AMX), OpenVINO installed


def onnx_installed() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` (the ``onnx`` extra) are installed: what ``auto`` needs for more than
    torch on a CPU."""
    return all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))


def cpu_has_int8_units() -> bool:
    """Whether OpenVINO is installed and this CPU has int8 dot-product units: bf16 units as OpenVINO sees them (AMX
    or AVX512-BF16 CPUs all have VNNI too) or AVX512-VNNI in numpy's run-time CPU feature table (Cascade Lake, Ice
    Lake, Zen 4 and later). Not seen: AVX-VNNI without AVX-512 (Alder Lake-class desktops): fp32 there."""
    if importlib.util.find_spec("openvino") is None:
        return False
    import openvino as ov

    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        return True
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # numpy 2
    except ImportError:  # numpy 1
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return False
    return bool(__cpu_features__.get("AVX512VNNI"))


def load_backend(
    source: str | Path | ParsingModel = "shipped", name: str = "auto", device: str = "cpu", precision: str = "auto"
) -> Backend:
    """A backend for ``source`` (a checkpoint file, ``shipped``, or a ``ParsingModel``). ``name``: ``torch``,
    ``onnxruntime`` (CPU only), ``openvino`` (CPU only, the ``openvino`` extra) or ``auto``: on a CPU with int8 units
    where OpenVINO is installed (``cpu_has_int8_units``), OpenVINO ``int8`` (the encoder in fp32, the decoder in
    int8: fp32's garments, its masks on ~99.8 % of pixels, ``bench/results/precision.md``); else onnxruntime where
    ``onnx`` and ``onnxruntime`` are installed (the ``onnx`` extra: fp32, faster than torch); else torch — also,
    with a warning, when the export or its cache fails. ``precision``: ``auto`` (``int8`` where the CPU has int8
    units, else ``fp32``), ``fp32`` (fp32 on any backend), ``mixed`` (the decoder in bf16), ``int8`` or ``bf16``
    (the whole network; OpenVINO only).
    """
    from parsing.model.backends import OnnxBackend, TorchBackend
    from parsing.model.parsing_model import ParsingModel

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
        wanted = precision if precision != "auto" else (DEFAULT if cpu_has_int8_units() else "fp32")
        return OpenVinoBackend(source, wanted)
    if name == "auto" and str(device) == "cpu" and onnx_installed():
        runtime = "OpenVINO" if precision == "auto" and cpu_has_int8_units() else "onnxruntime"
        try:
            if runtime == "OpenVINO":
                from parsing.model.openvino_backend import OpenVinoBackend

                return OpenVinoBackend(source, DEFAULT)
            return OnnxBackend(source)
        except (FileNotFoundError, ValueError):
            raise  # the checkpoint itself: no fallback can read it either
        except Exception as err:  # an export or a cache that fails: any error of onnx, onnxruntime or the disk  # noqa: BLE001
            problem = f"{type(err).__name__}: {err}"
            warnings.warn(f"the network runs on torch: {runtime} could not ({problem})", stacklevel=2)
    model = source if isinstance(source, ParsingModel) else ParsingModel.from_checkpoint(source)
    return TorchBackend(model, device)
