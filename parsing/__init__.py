"""parsing: clothing parsing with an outfit encoder and a dense CRF (Tangseng, Wu, Yamaguchi 2017).

from parsing import Parser
parse = Parser.load()("photo.jpg")
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from parsing._torchvision import ensure_torchvision_importable

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check at import
ensure_torchvision_importable()  # before anything imports timm / smp

__version__ = "0.4.0"
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
