"""``Entry``: what a catalogue keeps of one photo's parse — its size, garment list, outfit vector and garment vectors.

Small and plain, so it crosses processes: Ray actors parse and send entries to the process that owns the catalogue
(as JSON text: float32 values survive the round trip exactly), and shard catalogues are merged entry by entry.

    entry = Entry.of("a.jpg", parser(image))         # a parse made with embed=True
    Entry.from_json(entry.to_json()) == entry          # the same photo, garments and vectors
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from parsing.outputs.embedding import GarmentVector


@dataclass(frozen=True, eq=False)
class Entry:
    """One photo of a catalogue: ``photo`` as added, ``width`` × ``height``, ``outfit`` (its garment names),
    ``vector`` (D,) and ``garments`` (one ``GarmentVector`` each)."""

    photo: str
    width: int
    height: int
    outfit: list[str]
    vector: np.ndarray
    garments: list[GarmentVector]

    @classmethod
    def of(cls, photo: Any, parse: Any) -> Entry:
        """A parse made with ``embed=True`` → its entry; a ValueError naming the photo when it has no vectors."""
        if parse.embedding is None:
            raise ValueError(f"{photo}: parsed without embed=True: no vectors to add")
        h, w = parse.labels.shape
        garments = list(parse.embedding.garments.values())
        return cls(str(photo), int(w), int(h), list(parse.garments), parse.embedding.outfit, garments)

    def to_json(self) -> str:
        garments = [{"label": g.label, "vector": _floats(g.vector), "lab": _floats(g.lab), "share": float(g.share),
                     "box": [int(v) for v in g.box]} for g in self.garments]  # fmt: skip
        return json.dumps({"photo": self.photo, "width": self.width, "height": self.height, "outfit": self.outfit,
                           "vector": _floats(self.vector), "garments": garments})  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Entry:
        d = json.loads(text)
        garments = [
            GarmentVector(g["label"], _array(g["vector"]), _array(g["lab"]), g["share"], tuple(g["box"]))
            for g in d["garments"]
        ]
        return cls(d["photo"], d["width"], d["height"], d["outfit"], _array(d["vector"]), garments)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return self.to_json() == other.to_json()


def _floats(x: np.ndarray) -> list[float]:
    return np.asarray(x, np.float32).astype(float).tolist()  # float32 → float64 exactly, and back


def _array(values: list[float]) -> np.ndarray:
    return np.asarray(values, np.float32)
