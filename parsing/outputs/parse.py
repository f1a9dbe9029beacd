"""``Parse``: one photo's parse, in numpy, and every way to look at it or write it.

``labels`` is the mask at the photo's own size; ``garments`` are exactly the garments that mask shows (a garment
below the parser's ``min_share`` is removed from the mask, never left unnamed). ``to_dict()`` is the
``summary.jsonl`` record ``parsing-predict`` writes; ``save()`` writes the same files it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from parsing.box import Box
from parsing.data.io import write_mask_png
from parsing.labels import NON_GARMENTS, flat_palette
from parsing.outputs.files import atomic_write, output_paths, write_cutouts
from parsing.outputs.overlay import overlay, unsure_notes


@dataclass(eq=False)
class Parse:
    """One photo's parse.

    Attributes:
        labels: (H, W) uint8 label ids at the photo's own size (after EXIF orientation).
        names, palette: the labels' names and RGB colours (a merge's groups, when the parser merges).
        garments: the garments the mask shows, in label order (``outfit`` in ``summary.jsonl``).
        presence: (L,) the outfit encoder's probability of each label being in the photo, or None.
        confidence: label name → ``confidence``, ``alternative``, ``alternative_confidence``
            (``parsing.inference.confidence``), for the labels the network's grid samples.
        box: the box parsed again around a small person (refocus), in the photo's pixels, or None.
        widened: whether a close-up was also parsed on a wider canvas.
        source: the file it came from, if any.
        image: the photo as parsed (h, w, 3) uint8: its own size, or shrunk to the parser's ``max_pixels``.
        work_labels: (h, w) the label map at ``image``'s size.
        probs: (K, h, w) float16 softmax of the model's labels, when the parser keeps them (``probs=True``).
        settings: what produced it: checkpoint, crf, tta, garments (the tags it was limited to), merge.
    """

    labels: np.ndarray
    names: list[str]
    palette: list[tuple[int, int, int]]
    garments: list[str]
    presence: np.ndarray | None
    confidence: dict[str, dict[str, Any]]
    box: Box | None
    widened: bool
    source: str | None = None
    image: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    work_labels: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    probs: np.ndarray | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)

    ok = True  # a ``ParseError`` says False: results of ``Parser.parse_many`` can be told apart by it

    def __repr__(self) -> str:
        h, w = self.labels.shape
        where = f"{self.source!r}, " if self.source else ""
        extra = (", refocused" if self.box is not None else "") + (", widened" if self.widened else "")
        return f"Parse({where}{w}×{h}, garments={self.garments}{extra})"

    @property
    def shares(self) -> dict[str, float]:
        """Label name → its share of the photo, for the labels the mask holds (background included)."""
        counts = np.bincount(self.labels.ravel(), minlength=len(self.names))
        return {self.names[i]: float(counts[i]) / self.labels.size for i in np.flatnonzero(counts)}

    def mask_image(self) -> Image.Image:
        """The mask as a palette ("P") PIL image: pixel = label id, shown in the labels' colours."""
        im = Image.fromarray(np.ascontiguousarray(self.labels), mode="P")
        im.putpalette(flat_palette(self.palette))
        return im

    def _ids(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def overlay(self) -> Image.Image:
        """The photo (as parsed) with the coloured mask blended over it and a legend; unsure names say their
        likelier alternative."""
        ids = self._ids()
        sure = {ids[n]: fields for n, fields in self.confidence.items()}
        notes = unsure_notes(sure, self.names)
        return overlay(self.image, self.work_labels, self.palette, self.names, notes=notes)

    def details(self, colours: bool = True) -> dict[int, dict[str, Any]]:
        """Label id → ``mask`` (h, w) on ``image``, ``pieces`` (boxes in the photo's pixels) and, with ``colours``,
        its named colours, for each garment of the mask (``parsing.outputs.describe``)."""
        return self._colours if colours else self._pieces

    @cached_property
    def _pieces(self) -> dict[int, dict[str, Any]]:
        from parsing.outputs.describe import pieces

        scale = (self.labels.shape[0] / self.work_labels.shape[0], self.labels.shape[1] / self.work_labels.shape[1])
        out = {}
        for i in np.unique(self.work_labels).tolist():
            if self.names[i] not in NON_GARMENTS:
                mask = self.work_labels == i
                out[i] = {"mask": mask, "pieces": pieces(mask, 0.001, scale)}
        return out

    @cached_property
    def _colours(self) -> dict[int, dict[str, Any]]:
        from parsing.outputs.describe import colours

        return {i: {**d, "colours": colours(self.image, d["mask"])} for i, d in self._pieces.items()}

    def describe(self) -> dict[str, dict[str, Any]]:
        """Garment name → its ``pieces`` (``bbox`` [x, y, w, h] in the photo's pixels, ``share``) and up to 3
        named ``colours``."""
        return {self.names[i]: {k: v for k, v in d.items() if k != "mask"} for i, d in self.details().items()}

    def cutouts(self, feather: float = 0.0) -> dict[str, Image.Image]:
        """Garment name → an RGBA cut-out cropped to it (alpha from the mask, edges softened by ``feather`` px)."""
        from parsing.outputs.describe import cutout

        found = {self.names[i]: cutout(self.image, d["mask"], feather=feather) for i, d in self._pieces.items()}
        return {name: picture for name, picture in found.items() if picture is not None}

    def to_dict(
        self, outputs: dict[str, str] | None = None, pieces: bool = False, colours: bool = False
    ) -> dict[str, Any]:
        """The ``summary.jsonl`` record (JSON-serialisable): ``outputs`` names the files written (``save``),
        ``pieces`` / ``colours`` add each garment's pieces and named colours."""
        ids = self._ids()
        extra: dict[int, dict[str, Any]] = {ids[n]: dict(fields) for n, fields in self.confidence.items()}
        if pieces or colours:
            for i, detail in self.details(colours).items():
                extra.setdefault(i, {}).update({k: v for k, v in detail.items() if k != "mask"})
        counts = np.bincount(self.labels.ravel(), minlength=len(self.names))
        presence = None if self.presence is None else self.presence.tolist()
        present = [
            {
                "label": self.names[i],
                "id": int(i),
                "share": round(float(counts[i]) / self.labels.size, 5),
                "presence": None if presence is None else round(presence[i], 4),
                **dict.fromkeys(("confidence", "alternative", "alternative_confidence")),  # too small to sample
                **extra.get(int(i), {}),
            }
            for i in np.argsort(-counts)
            if counts[i] > 0 and self.names[i] not in ("null", "background")
        ]
        s = self.settings
        return {
            "file": self.source,
            "size": [int(self.labels.shape[1]), int(self.labels.shape[0])],
            "labels": present,
            "outfit": list(self.garments),
            **(outputs or {}),
            "checkpoint": s.get("checkpoint"),
            "crf": s.get("crf"),
            "tta": s.get("tta"),
            "refocus": None if self.box is None else list(self.box),
            "widened": self.widened,
            "garments": s.get("garments"),
            "merge": s.get("merge"),
        }

    def save(
        self,
        folder: str | Path,
        stem: str | Path,
        *,
        overlay: bool = True,
        probs: bool = False,
        cutouts: bool = False,
        describe: bool = False,
        feather: float = 0.0,
    ) -> dict[str, Any]:
        """Write ``folder/masks/<stem>.png`` (palette PNG), ``overlays/<stem>.jpg`` and, when asked,
        ``probs/<stem>.npy`` (needs a parser with ``probs=True``) and ``cutouts/<stem>/<label>.png``, each
        atomically; returns the ``summary.jsonl`` record naming them."""
        root = Path(folder)
        if probs and self.probs is None:
            raise ValueError("probs=True needs the probabilities: load the Parser with probs=True")
        paths = output_paths(root, stem, probs, cutouts)
        if not overlay:
            del paths["overlay"]
        colours = flat_palette(self.palette)
        atomic_write(paths["mask"], lambda tmp: write_mask_png(tmp, self.labels, colours))
        if overlay:
            picture = self.overlay()
            atomic_write(paths["overlay"], lambda tmp: picture.save(tmp, format="JPEG", quality=90))
        if cutouts:
            write_cutouts(paths["cutouts"], self.image, self.details(describe), self.names, feather)
        if probs:
            atomic_write(paths["probs"], lambda tmp: np.save(tmp, self.probs))
        outputs = {name: str(path.relative_to(root)) for name, path in paths.items()}
        return self.to_dict(outputs, pieces=describe or cutouts, colours=describe)


def save_result(result: Any, folder: str | Path, stem: str | Path, **options: Any) -> tuple[dict | None, str | None]:
    """A ``Parse`` — or the ``ParseError`` in its place — saved as ``Parse.save`` saves it → (its summary record,
    None), or (None, the problem) when it could not be parsed or written."""
    if not result.ok:
        return None, result.problem
    try:
        return result.save(folder, stem, **options), None
    except (OSError, ValueError, RuntimeError) as err:
        return None, f"{type(err).__name__}: {err}"
