"""Writing a parse's files: atomically (a killed run never leaves a half-written file under its final name), into
the layout ``parsing-predict`` uses: ``masks/<key>.png``, ``overlays/<key>.jpg``, ``probs/<key>.npy``,
``cutouts/<key>/<label>.png``, and ``labels.json`` (id → name, colour) beside them (``outputs.folder`` keeps the
logs)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parsing.atomic import atomic_write
from parsing.outputs.describe import cutout


def output_paths(root: Path, key: str | Path, probs: bool = False, cutouts: bool = False) -> dict[str, Path]:
    """Where one photo's files go; ``key``: its output name without suffix, sub-folders allowed (``look/0033``)."""
    key = Path(key)
    # key.name + suffix, not key.with_suffix: a stem may hold dots ("look.v2")
    paths = {
        "mask": root / "masks" / key.parent / f"{key.name}.png",
        "overlay": root / "overlays" / key.parent / f"{key.name}.jpg",
    }
    if probs:
        paths["probs"] = root / "probs" / key.parent / f"{key.name}.npy"
    if cutouts:  # a folder of <label>.png, renamed into place when complete
        paths["cutouts"] = root / "cutouts" / key.parent / key.name
    return paths


def write_cutouts(
    folder: Path, image: np.ndarray, details: dict[int, dict[str, Any]], names: Sequence[str], feather: float = 0.0
) -> None:
    """``folder/<label>.png`` for each garment of ``details`` (label id → its ``mask`` (h, w) on ``image``): RGBA
    cut-outs, written into a temporary folder renamed into place, so a killed run never leaves a partial set."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for i, detail in details.items():
            picture = cutout(image, detail["mask"], feather=feather)
            if picture is not None:
                picture.save(tmp / f"{names[i]}.png")
        shutil.rmtree(folder, ignore_errors=True)  # an older, possibly partial set (--overwrite or a redo)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_labels_json(
    root: Path, names: Sequence[str], palette: Sequence[Sequence[int]], replace: bool = False
) -> Path:
    """``root/labels.json``: ``[{"id", "name", "colour"}]`` for the masks' pixel values. One with other labels
    (masks of another model or merge) is a ValueError unless ``replace`` (every photo is being redone)."""
    text = json.dumps(
        [{"id": i, "name": n, "colour": [int(c) for c in palette[i]]} for i, n in enumerate(names)], indent=1
    )
    target = root / "labels.json"
    if target.is_file() and target.read_text() != text and not replace:
        raise ValueError(f"{target}: the masks in this folder use other labels; write to another folder, or redo all")
    if not target.is_file() or target.read_text() != text:
        atomic_write(target, lambda tmp: tmp.write_text(text))
    return target
