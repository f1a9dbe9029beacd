"""parsing: clothing parsing with an outfit encoder and a dense CRF (Tangseng, Wu, Yamaguchi 2017).

from parsing import Parser
parse = Parser.load()("photo.jpg")
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check at import


class _TorchvisionShim:
    """Runs ``parsing._torchvision``'s shim just before the first ``import torchvision`` (timm, smp, torchmetrics…),
    so that ``import parsing`` itself imports no torch (``parsing --help`` stays fast)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torchvision":
            sys.meta_path.remove(self)
            from parsing._torchvision import ensure_torchvision_importable

            ensure_torchvision_importable()
        return None


if "torchvision" not in sys.modules and not any(isinstance(f, _TorchvisionShim) for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionShim())

__version__ = "0.8.1"
__all__ = ["Parse", "ParseError", "Parser", "__version__"]

if TYPE_CHECKING:
    from parsing.inference.parser import ParseError, Parser
    from parsing.outputs.parse import Parse


def __getattr__(name: str) -> Any:  # the API on first use: ``import parsing`` stays light
    if name in ("Parser", "ParseError"):
        from parsing.inference import parser

        return getattr(parser, name)
    if name == "Parse":
        from parsing.outputs.parse import Parse

        return Parse
    raise AttributeError(f"module 'parsing' has no attribute {name!r}")
