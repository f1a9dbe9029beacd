"""Label sets: the 59 CCP labels, a fixed colour palette, and merges into coarser sets."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IGNORE_INDEX = 255

# The order of CCP's label_list.mat: the index is the value stored in the masks.
CCP_LABELS: tuple[str, ...] = (
    "null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra", "bracelet",
    "cape", "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses", "gloves", "hair",
    "hat", "heels", "hoodie", "intimate", "jacket", "jeans", "jumper", "leggings", "loafers", "necklace",
    "panties", "pants", "pumps", "purse", "ring", "romper", "sandals", "scarf", "shirt", "shoes",
    "shorts", "skin", "skirt", "sneakers", "socks", "stockings", "suit", "sunglasses", "sweater", "sweatshirt",
    "swimwear", "t-shirt", "tie", "tights", "top", "vest", "wallet", "watch", "wedges",
)  # fmt: skip

# Labels that are not garments or accessories: the body and the background.
NON_GARMENTS: frozenset[str] = frozenset({"null", "background", "skin", "hair", "face"})

_FIXED_COLOURS = {"null": (0, 0, 0), "background": (0, 0, 0), "skin": (255, 205, 170), "hair": (110, 60, 20)}

# Coarse CCP: garments grouped by what they cover. Labels not listed fall into "null".
MERGES: dict[str, dict[str, list[str]]] = {
    "ccp-coarse": {
        "null": ["null"],
        "skin": ["skin"],
        "hair": ["hair"],
        "top": ["blouse", "bodysuit", "bra", "shirt", "t-shirt", "top", "sweater", "sweatshirt", "hoodie", "jumper"],
        "outerwear": ["blazer", "cape", "cardigan", "coat", "jacket", "suit", "vest"],
        "dress": ["dress", "romper", "swimwear", "intimate"],
        "skirt": ["skirt"],
        "pants": ["pants", "jeans", "leggings"],
        "shorts": ["shorts", "panties"],
        "legwear": ["socks", "stockings", "tights"],
        "shoes": ["boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers", "wedges"],
        "bag": ["bag", "purse", "wallet"],
        "hat": ["hat"],
        "eyewear": ["glasses", "sunglasses"],
        "scarf": ["scarf", "tie"],
        "belt": ["belt"],
        "accessories": ["accessories", "bracelet", "earrings", "gloves", "necklace", "ring", "watch"],
    },
}


# Colours for every other label, in label order: each as far as possible (CIEDE2000) from black, skin, hair and the
# ones before it, picked greedily from a 15-step sRGB grid. Any two of these 67 are at least 13.2 apart
# (tests/test_labels.py checks ≥ 6; the old golden-angle hues had pairs 1.2 apart).
READABLE: tuple[tuple[int, int, int], ...] = (
    (210, 30, 255), (0, 150, 0), (0, 165, 255), (0, 255, 240), (225, 255, 0), (255, 15, 75), (0, 75, 165),
    (255, 195, 255), (0, 120, 120), (120, 15, 75), (165, 135, 0), (135, 120, 135), (0, 60, 0), (150, 165, 150),
    (240, 105, 0), (15, 0, 75), (45, 240, 120), (105, 105, 75), (240, 255, 225), (135, 135, 225), (195, 225, 255),
    (120, 0, 180), (30, 180, 195), (255, 195, 0), (225, 105, 165), (15, 60, 60), (165, 0, 30), (75, 75, 90),
    (45, 0, 0), (0, 180, 135), (255, 150, 150), (150, 180, 0), (165, 105, 90), (15, 120, 165), (180, 150, 120),
    (195, 45, 105), (30, 120, 75), (120, 90, 150), (195, 165, 180), (255, 240, 240), (90, 75, 255), (195, 60, 0),
    (60, 60, 45), (210, 195, 135), (210, 135, 240), (105, 60, 60), (120, 90, 0), (105, 120, 120), (105, 120, 0),
    (150, 195, 135), (165, 210, 210), (225, 150, 45), (180, 180, 225), (75, 45, 90), (165, 105, 45), (195, 0, 165),
    (15, 45, 75), (90, 15, 0), (135, 150, 90), (15, 0, 30), (45, 30, 15), (135, 165, 180), (165, 255, 210),
    (210, 255, 165),
)  # fmt: skip


def default_palette(names: tuple[str, ...] | list[str]) -> list[tuple[int, int, int]]:
    """A fixed colour per label: pinned colours for null/background/skin/hair, ``READABLE`` for the rest in
    order (golden-angle hues past its 64)."""
    colours, n = [], 0
    for i, name in enumerate(names):
        if name in _FIXED_COLOURS:
            colours.append(_FIXED_COLOURS[name])
            continue
        colours.append(READABLE[n] if n < len(READABLE) else _golden(i))
        n += 1
    return colours


def _golden(i: int) -> tuple[int, int, int]:
    """Before 0.6: golden-angle hues, alternating two saturations (pairs as close as CIEDE2000 1.2)."""
    hue = (i * 0.618033988749895) % 1.0
    sat, val = (0.85, 0.95) if i % 2 else (0.65, 0.75)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def palette_for(names: Sequence[str], palette: Sequence[Sequence[int]] | None) -> list[list[int]]:
    """A model's palette: its own, unless it has none or the old default (checkpoints before 0.6), which becomes
    the readable one."""
    old = [list(_FIXED_COLOURS.get(n) or _golden(i)) for i, n in enumerate(names)]
    if palette is None or [list(map(int, c)) for c in palette] == old:
        return [list(c) for c in default_palette(list(names))]
    return [list(map(int, c)) for c in palette]


@dataclass(frozen=True)
class LabelSet:
    """Names and colours of the labels a model predicts, and how dataset mask values map onto them.

    ``lut`` maps a raw mask value (0..255) to a label index here; values outside ``source`` map to
    ``IGNORE_INDEX`` so that they can be reported as errors.
    """

    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]
    source: tuple[str, ...]
    lut: np.ndarray  # (256,) uint8

    @classmethod
    def identity(cls, names: tuple[str, ...] | list[str]) -> LabelSet:
        names = tuple(names)
        if len(names) > IGNORE_INDEX:
            raise ValueError(f"at most {IGNORE_INDEX} labels are supported, got {len(names)}")
        if len(set(names)) != len(names):
            raise ValueError(f"label names must be unique: {names}")
        lut = np.full(256, IGNORE_INDEX, np.uint8)
        lut[IGNORE_INDEX] = IGNORE_INDEX
        lut[: len(names)] = np.arange(len(names))
        return cls(names, tuple(default_palette(names)), names, lut)

    @classmethod
    def ccp(cls, merge: str | dict[str, list[str]] | None = None) -> LabelSet:
        base = cls.identity(CCP_LABELS)
        return base if merge is None else base.merged(merge)

    def merged(self, groups: str | dict[str, list[str]]) -> LabelSet:
        """Merge source labels into groups (``{new_name: [source names]}``); unlisted labels go to the first group
        (the background)."""
        if isinstance(groups, str):
            if groups not in MERGES:
                raise ValueError(f"unknown label merge {groups!r}; known: {sorted(MERGES)}")
            groups = MERGES[groups]
        names = tuple(groups)
        if not names:
            raise ValueError("the merge has no groups")
        index = {name: i for i, name in enumerate(self.source)}
        lut = self.lut.copy()
        lut[: len(self.source)] = 0  # unlisted labels: the first group
        seen: dict[str, str] = {}
        for new_id, (new_name, members) in enumerate(groups.items()):
            for member in members:
                if member not in index:
                    raise ValueError(f"merge group {new_name!r}: unknown label {member!r}")
                if member in seen:
                    raise ValueError(f"label {member!r} is in both {seen[member]!r} and {new_name!r}")
                seen[member] = new_name
                lut[index[member]] = new_id
        palette = dict(zip(self.source, default_palette(self.source), strict=True))
        colours = tuple(palette[members[0]] if members else (128, 128, 128) for members in groups.values())
        return LabelSet(names, colours, self.source, lut)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def garments(self) -> np.ndarray:
        """(K,) bool: labels made only of garments/accessories (not background, skin, hair)."""
        is_garment = np.ones(len(self.names), bool)
        for source_id, name in enumerate(self.source):
            if name in NON_GARMENTS:
                is_garment[self.lut[source_id]] = False
        return is_garment

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw mask values → label indices (``IGNORE_INDEX`` stays ignored)."""
        return self.lut[raw]

    @property
    def flat_palette(self) -> list[int]:
        """The palette as PIL wants it: 768 ints."""
        return flat_palette(self.colours)


def flat_palette(colours: Sequence[Sequence[int]]) -> list[int]:
    """RGB colours → the 768 ints of a PIL palette (unused entries black)."""
    flat = [int(c) for rgb in colours for c in rgb]
    return flat + [0] * (768 - len(flat))


LABEL_FILES = ("labels.txt", "labels.yaml", "labels.yml")  # a folder dataset's label list, beside images/ and masks/


def label_list(values: str | Sequence[str]) -> list[str]:
    """Label names as commands take them: a YAML/flow list ``"[a, b, c]"``, separate words, or commas
    (``a,b,c``); YAML's unquoted ``null`` is CCP's ``null`` label."""
    import yaml

    items = [values] if isinstance(values, str) else list(values)
    if len(items) == 1 and items[0].strip().startswith("["):
        parsed = yaml.safe_load(items[0])
        if not isinstance(parsed, list):
            raise ValueError(f"{items[0]!r}: not a list of label names")
        items = ["null" if v is None else str(v) for v in parsed]
    names = [n.strip() for item in items for n in str(item).split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"label names repeat: {names}")
    return names


def read_label_file(root: str | Path) -> list[str] | None:
    """The label list of a folder dataset from ``labels.txt`` (one name per line) or ``labels.yaml`` (a list, or
    ``labels: [...]``) in ``root``; None when there is none."""
    import yaml

    for name in LABEL_FILES:
        path = Path(root) / name
        if not path.is_file():
            continue
        if name == "labels.txt":
            return label_list([line for line in path.read_text().splitlines() if line.strip()])
        data = yaml.safe_load(path.read_text())
        data = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of label names (or labels: [...])")
        return label_list(["null" if v is None else str(v) for v in data])
    return None


def garments_in(mask: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """The garment names a label map (h, w) (numpy or torch) holds: any pixel, ``IGNORE_INDEX`` skipped."""
    ids = np.asarray(mask).ravel()
    counts = np.bincount(ids[ids != IGNORE_INDEX].astype(np.int64), minlength=len(class_names))
    shown = [name for name, count in zip(class_names, counts.tolist(), strict=False) if count]
    return [name for name in shown if name not in NON_GARMENTS]
