"""``Parse``: one photo's parse, in numpy, and every way to look at it or write it.

``labels`` is the mask at the photo's own size; ``garments`` are exactly the garments that mask shows (a garment
below the parser's ``min_share`` is removed from the mask, never left unnamed). ``to_dict()`` is the
``summary.jsonl`` record ``parsing-predict`` writes; ``save()`` writes the same files it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from parsing.atomic import atomic_write
from parsing.box import Box
from parsing.data.io import write_mask_png
from parsing.labels import NON_GARMENTS, flat_palette
from parsing.outputs.edit import EditBase, click_region, regions, resize_nearest
from parsing.outputs.embedding import Embedding
from parsing.outputs.files import output_paths, write_cutouts
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
        edit: what ``click`` reads (the photo on a small grid, its superpixels, the network's top labels there
            with a parser made ``editable=True``), shared by the parses edits make.
        clicks: the clicks that made it (edit-grid cell and label): later clicks do not take their pixels.
        embedding: search vectors (outfit, each garment) from a parser with ``embed=True``, else None.
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
    edit: EditBase | None = field(default=None, repr=False)
    clicks: tuple[tuple[int, int, int], ...] = field(default=(), repr=False)
    embedding: Embedding | None = field(default=None, repr=False)
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

    # --- edits: each returns a new Parse, this one unchanged -------------------------------------------------------
    def label_id(self, label: str | int) -> int:
        """A label name or id → its id; a ValueError naming the labels for anything else."""
        if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(self.names):
            return int(label)
        if isinstance(label, str) and label in self.names:
            return self.names.index(label)
        raise ValueError(f"label {label!r}: not one of this parse's labels ({', '.join(self.names)})")

    def _base(self) -> EditBase:
        if self.edit is None:
            self.edit = EditBase.of(self.image, None)  # without hints: superpixels and segments only
        return self.edit

    def _grid(self) -> np.ndarray:
        return resize_nearest(self.work_labels, self._base().shape)

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        h, w = self.labels.shape
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"pixel ({x}, {y}) is outside the photo ({w}×{h})")
        gh, gw = self._base().shape
        return min(int(y * gh / h), gh - 1), min(int(x * gw / w), gw - 1)

    def click_region(self, x: float, y: float, label: str | int) -> np.ndarray:
        """(H, W) bool: the pixels ``click(x, y, label)`` would change (the studio's hover preview)."""
        new = self.label_id(label)
        gy, gx = self._cell(x, y)
        region = click_region(self._base(), self._grid(), gy, gx, new, self.clicks)
        full = resize_nearest(region.view(np.uint8), self.labels.shape).view(bool)
        current = int(self._grid()[gy, gx])
        return full & ((self.labels == current) if current != new else (self.labels != new))

    def click(self, x: float, y: float, label: str | int) -> Parse:
        """A new parse in which the region around pixel (x, y) (the photo's pixels) takes ``label``: the piece of
        the garment there where the network gives ``label`` a chance, snapped to the photo's edges; all of it when
        the network ranks ``label`` first over most of it; a second click on the same label grows it
        (``parsing.outputs.edit``)."""
        gy, gx = self._cell(x, y)
        edited = self.paint(self.click_region(x, y, label), label)
        edited.clicks = (*self.clicks, (gy, gx, self.label_id(label)))
        return edited

    def paint(self, mask: np.ndarray, label: str | int) -> Parse:
        """A new parse in which ``mask`` (bool, at the photo's size, or any size: resized) takes ``label`` (a brush
        stroke, a polygon, an eraser with ``background``)."""
        new = self.label_id(label)
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask of shape {mask.shape}: give one (H, W) boolean mask")
        mask = mask.astype(bool)
        labels, work = self.labels.copy(), self.work_labels.copy()
        labels[resize_nearest(mask.view(np.uint8), labels.shape).view(bool)] = new
        work[resize_nearest(mask.view(np.uint8), work.shape).view(bool)] = new
        return self.with_labels(labels, work)

    def with_labels(self, labels: np.ndarray, work_labels: np.ndarray | None = None) -> Parse:
        """A new parse with this mask (H, W) (a label map of the same labels, e.g. one the studio sends back)."""
        labels = np.asarray(labels)
        if labels.shape != self.labels.shape:
            raise ValueError(f"mask of {labels.shape[1]}×{labels.shape[0]}: the photo is {self.size_text}")
        if labels.size and int(labels.max()) >= len(self.names):
            raise ValueError(f"mask holds label id {int(labels.max())}: this parse has {len(self.names)} labels")
        labels = labels.astype(np.uint8)
        work = resize_nearest(labels, self.work_labels.shape) if work_labels is None else work_labels
        counts = np.bincount(labels.ravel(), minlength=len(self.names))
        garments = [n for i, n in enumerate(self.names) if n not in NON_GARMENTS and counts[i] > 0]
        confidence = {n: f for n, f in self.confidence.items() if counts[self.names.index(n)] > 0}
        settings = {**self.settings, "edits": self.settings.get("edits", 0) + 1}
        self._base()  # edits of edits share it
        return replace(
            self, labels=labels, work_labels=work, garments=garments, confidence=confidence, settings=settings
        )

    @property
    def size_text(self) -> str:
        return f"{self.labels.shape[1]}×{self.labels.shape[0]}"

    def uncertainty(self) -> float:
        """How unsure the network was: the mean of 1 − its top probability over the person's pixels (0: sure).
        Needs the hints of a parser made ``editable=True``; the labelling queue ranks photos by it."""
        if self.edit is None or self.edit.hints is None:
            raise ValueError("uncertainty needs the network's hints: load the Parser with editable=True")
        grid = self._grid()
        person = ~np.isin(grid, [i for i, n in enumerate(self.names) if n in ("null", "background")])
        top = self.edit.hints.probs[0].astype(np.float32) / 255.0  # (gh, gw) the top label's probability
        return float(1.0 - top[person].mean()) if person.any() else 0.0

    def regions(self) -> np.ndarray:
        """(gh, gw) int32 on the edit grid (``grid_size``): the photo's superpixels cut along the mask's edges,
        the smallest piece a click takes."""
        return regions(self._base(), self._grid())

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
