"""Make ``import torchvision`` work next to a CPU-only torch.

timm (and therefore smp) imports torchvision. Where the only torchvision wheel on offer is a CUDA build, its
compiled ``_C`` extension cannot load against CPU torch and the import dies in torchvision's own meta
registrations (``operator torchvision::nms does not exist``). Defining the two operator schemas it registers
fakes for lets the pure-Python parts import; the compiled ops (nms, roi_align) stay unavailable, and nothing in
``parsing`` uses them. On a machine with matching builds this does nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_libraries: list[torch.library.Library] = []  # keep the definitions alive
_started: list[bool] = []


def ensure_torchvision_importable() -> bool:
    """Define torchvision's op schemas if its compiled extension cannot load. Returns True if it patched."""
    if "torchvision" in sys.modules or _libraries or _started:
        return False
    _started.append(True)  # once: find_spec below may come back here through an import hook
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    extensions = sorted(Path(spec.origin).parent.glob("_C*.so")) + sorted(Path(spec.origin).parent.glob("_C*.pyd"))
    for ext in extensions:
        try:
            torch.ops.load_library(str(ext))
            return False  # matching build: torchvision works as it is
        except (OSError, RuntimeError):
            continue
    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        library.define(schema)
    _libraries.append(library)
    return True
