"""``ParseOptions``: every option of the parse pipeline, in one frozen dataclass, checked in one place.

``Parser.load(…, **options)``, ``Parser.replace(**options)``, ``parsing-predict``'s flags, the service's form fields
and the Ray job all go through it; a bad value is a ``ValueError`` naming the option and its valid values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsing.inference.crf_params import CRFParams

CRFS = ("none", "fast", "dense")  # fast: the torch mean-field CRF; dense: pydensecrf (the ``crf`` extra)
TTAS = ("none", "flip")
REFOCUS = 1.5  # a person this many times smaller than the frame allows is parsed again in a box (refocus)
WIDEN = 1.5  # a close-up (person cut at top and bottom) is also parsed on a canvas this many times wider (refocus)
MIN_SHARE = 0.004  # a garment covering less of the person is a speck: removed from the mask (its pixels relabelled)
MAX_PIXELS = 8_000_000  # photos above this are parsed at this many pixels; their masks are upsampled to full size
MIN_SIDE = 32  # the encoders' total stride: a smaller box has no deepest feature cell


def _either(values: tuple[str, ...]) -> str:
    return f"{', '.join(values[:-1])} or {values[-1]}"


@dataclass(frozen=True)
class ParseOptions:
    """The parse pipeline's options.

    ``crf``: ``fast`` (torch mean-field), ``dense`` (pydensecrf) or ``none``; ``crf_iterations``: mean-field steps
    (default 3 fast, 10 dense). ``tta``: ``flip`` averages the photo and its mirror image (2× the network).
    ``input_size``: the network box (H, W) (None: the model's). ``max_pixels``: larger photos are parsed at this
    many pixels, their masks upsampled. ``refocus``: parse a box around a person this many times too small again
    (0 = off). ``widen``: parse a close-up also on a canvas this many times larger (0 = off). ``merge``: a preset
    (``ccp-coarse``), a YAML file or ``{group: [labels]}``: masks in merged groups. ``min_share``: garments covering
    less of the person are removed from the mask (0 = keep every pixel). ``probs``: keep each parse's (K, h, w)
    probabilities (memory!). ``editable``: keep the network's ranking on a small grid (2.4 MB) so that
    ``Parse.click`` can use it. ``embed``: search vectors for the outfit and each garment from the same pass
    (``Parse.embedding``; the torch network).
    """

    crf: str = "fast"
    crf_iterations: int | None = None
    tta: str = "none"
    input_size: tuple[int, int] | None = None
    max_pixels: int = MAX_PIXELS
    refocus: float = REFOCUS
    widen: float = WIDEN
    merge: str | Path | dict[str, list[str]] | None = None
    min_share: float = MIN_SHARE
    probs: bool = False
    editable: bool = False
    embed: bool = False

    def __post_init__(self) -> None:
        if self.crf not in CRFS:
            raise ValueError(f"crf {self.crf!r}: choose {_either(CRFS)}")
        if self.tta not in TTAS:
            raise ValueError(f"tta {self.tta!r}: choose {_either(TTAS)}")
        if self.crf_iterations is not None and int(self.crf_iterations) < 1:
            raise ValueError(f"crf_iterations {self.crf_iterations}: give at least 1 (or None for the CRF's default)")
        if self.input_size is not None:
            size = tuple(int(side) for side in self.input_size)
            if len(size) != 2 or min(size) < MIN_SIDE:
                raise ValueError(f"input_size {self.input_size}: give (H, W), each at least {MIN_SIDE}")
            object.__setattr__(self, "input_size", size)
        if int(self.max_pixels) < MIN_SIDE * MIN_SIDE:
            raise ValueError(f"max_pixels {self.max_pixels}: give at least {MIN_SIDE * MIN_SIDE}")
        for name in ("refocus", "widen", "min_share"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} {getattr(self, name)}: give 0 (off) or more")
        if float(self.min_share) >= 1:
            raise ValueError(f"min_share {self.min_share}: give a share below 1")
        if self.merge is not None and not isinstance(self.merge, (str, Path, dict)):
            raise ValueError(f"merge {self.merge!r}: give a preset name, a YAML file or {{group: [labels]}}")

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    def replace(self, **changes: Any) -> ParseOptions:
        """These options with some changed; an unknown name is a TypeError listing the valid ones."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise TypeError(f"unknown parse option(s) {unknown}; the options are {', '.join(self.names())}")
        return dataclasses.replace(self, **changes)

    def crf_params(self) -> CRFParams:
        return CRFParams(iterations=self.crf_iterations)
