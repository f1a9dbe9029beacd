"""Saving corrected parses as training pairs: a ``format: folder`` dataset (``images/``, ``masks/``, ``labels.txt``,
``data.yaml``) that ``parsing check-data DIR --format folder`` checks and ``make finetune DATA=DIR`` trains on.

Names are sanitised (letters, digits, ``-``, ``_``, ``.``; no leading dot), every path is checked to stay inside
the folder, and a name already taken gets ``-2``, ``-3``… instead of overwriting another photo's files. Each saved
photo's SHA-1 (of the bytes sent) is kept in ``sources.json``: the same photo again is refused (``DuplicateError``)
unless ``replace=True`` overwrites its pair, and the labelling queue skips the photos already saved.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from parsing.atomic import atomic_write
from parsing.data.io import write_mask_png
from parsing.labels import flat_palette


def safe_stem(name: str | None, fallback: str = "photo") -> str:
    """A file stem from a user's name: its stem, other characters as ``_``, no leading dots, at most 80 chars."""
    stem = Path(str(name or "").replace("\\", "/")).name  # no folders: "../../x.jpg" → "x.jpg"
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".")[:80]
    return stem or fallback


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class DuplicateError(ValueError):
    """The photo is in the dataset already: ``stem`` is its pair's name."""

    def __init__(self, stem: str) -> None:
        super().__init__(f"this photo is saved already as images/{stem}.jpg: send replace=true to overwrite that pair")
        self.stem = stem


class TrainingFolder:
    """A folder dataset the studio adds (photo, mask) pairs to; one label set per folder."""

    def __init__(self, root: Path, names: Sequence[str], palette: Sequence[Sequence[int]]) -> None:
        self.root = Path(root).resolve()
        self.names, self.palette = list(names), [list(c) for c in palette]
        self._lock = threading.Lock()
        labels = self.root / "labels.txt"
        if labels.is_file() and labels.read_text().split() != self.names:
            raise ValueError(f"{labels}: this folder holds masks of other labels; choose another --dataset")
        record = self.root / "sources.json"
        self.sources: dict[str, dict[str, str]] = json.loads(record.read_text()) if record.is_file() else {}

    def saved(self, sha1: str) -> str | None:
        """The stem a photo (by its SHA-1) is saved under, or None."""
        entry = self.sources.get(sha1)
        return None if entry is None else entry["stem"]

    def save(
        self, image: np.ndarray, labels: np.ndarray, name: str | None, sha1: str | None = None, replace: bool = False
    ) -> dict[str, str]:
        """Write ``images/<stem>.jpg`` and ``masks/<stem>.png`` for a photo (H, W, 3) and its mask (H, W);
        returns their paths relative to the folder. ``sha1``: the photo's, to refuse it a second time (or, with
        ``replace``, to overwrite its pair)."""
        if image.shape[:2] != labels.shape:
            raise ValueError(f"photo {image.shape[:2]} and mask {labels.shape} differ in size")
        with self._lock:  # two saves of one name at once: each gets its own
            (self.root / "images").mkdir(parents=True, exist_ok=True)
            (self.root / "masks").mkdir(parents=True, exist_ok=True)
            self._write_labels()
            before = None if sha1 is None else self.saved(sha1)
            if before is not None and not replace:
                raise DuplicateError(before)
            stem = before or self._free_stem(safe_stem(name))
            photo, mask = self.root / "images" / f"{stem}.jpg", self.root / "masks" / f"{stem}.png"
            for path in (photo, mask):
                if self.root not in path.resolve().parents:
                    raise ValueError(f"{path}: outside the dataset folder")
            picture = Image.fromarray(image)
            atomic_write(mask, lambda tmp: write_mask_png(tmp, labels, flat_palette(self.palette)))
            atomic_write(photo, lambda tmp: picture.save(tmp, format="JPEG", quality=95))
            if sha1 is not None:
                self.sources[sha1] = {"stem": stem, "name": str(name or "")}
                text = json.dumps(self.sources, indent=1, sort_keys=True)
                atomic_write(self.root / "sources.json", lambda tmp: tmp.write_text(text))
        return {"image": f"images/{stem}.jpg", "mask": f"masks/{stem}.png"}

    def _free_stem(self, stem: str) -> str:
        taken = {p.stem for p in (self.root / "images").iterdir()} | {p.stem for p in (self.root / "masks").iterdir()}
        if stem not in taken:
            return stem
        n = 2
        while f"{stem}-{n}" in taken:
            n += 1
        return f"{stem}-{n}"

    def _write_labels(self) -> None:
        labels = self.root / "labels.txt"
        if not labels.is_file():
            atomic_write(labels, lambda tmp: tmp.write_text("".join(f"{n}\n" for n in self.names)))
        config = self.root / "data.yaml"
        if not config.is_file():
            data = {"data": {"root": str(self.root), "format": "folder", "labels": self.names}}
            atomic_write(config, lambda tmp: tmp.write_text(yaml.safe_dump(data, sort_keys=False)))
