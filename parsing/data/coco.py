"""COCO-format data (``data.format: coco``): instance annotations → semantic masks, on the fly.

A COCO instances JSON (``images``, ``annotations``, ``categories``; ModaNet, Fashionpedia, DeepFashion2 and most
labelling tools export it) and its image folder. Each annotation's polygons or RLE (decoded with
``pycocotools``) paint its category's label:

* categories map to the dataset's labels by ``categories`` (``{category name: label name}``) or, without it, by
  equal names; a category that maps to nothing is painted as ``unmapped``: ``ignore`` (255, the default: the
  model is not taught that an unknown garment is background) or ``background`` (label 0);
* overlapping instances: larger ones are painted first, so the **smaller instance is on top** (a belt over a
  dress, a bag over a coat);
* ``iscrowd`` annotations are painted last, as 255 (ignored by training and metrics);
* pixels no annotation covers are background (label 0).
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from parsing.data.io import DataError
from parsing.labels import IGNORE_INDEX

Unmapped = Literal["ignore", "background"]


class CocoIndex:
    """A parsed COCO instances file: images, their annotations, and each category's mask value. ``problems``:
    (where, what) for everything that cannot be used, each naming the file and the annotation or image id."""

    def __init__(
        self,
        path: str | Path,
        labels: Sequence[str],
        categories: dict[str, str] | None = None,
        unmapped: Unmapped = "ignore",
    ) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise DataError(self.path, "COCO annotations file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(self.path, f"not a readable COCO JSON ({err})") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
            raise DataError(self.path, "not a COCO instances file (needs 'images' and 'annotations' lists)")
        self.problems: list[tuple[str, str]] = []
        index = {name: i for i, name in enumerate(labels)}
        if categories is not None:
            unknown = sorted(set(categories.values()) - set(index))
            if unknown:
                raise ValueError(f"data.categories maps to unknown label(s) {unknown}; labels are {list(labels)}")
        fallback = IGNORE_INDEX if unmapped == "ignore" else 0
        self.values: dict[int, int] = {}
        for category in data.get("categories", []):
            name = str(category.get("name"))
            target = categories.get(name) if categories is not None else (name if name in index else None)
            self.values[category.get("id")] = index[target] if target is not None else fallback
        self.images: dict[Any, dict] = {}
        for image in data["images"]:
            if not all(k in image for k in ("id", "file_name", "height", "width")):
                self.problems.append((str(self.path), f"image entry {image.get('id')} lacks id/file_name/height/width"))
                continue
            self.images[image["id"]] = image
        self.annotations: dict[Any, list[dict]] = defaultdict(list)
        for ann in data["annotations"]:
            where = f"{self.path}: annotation {ann.get('id')}"
            if ann.get("image_id") not in self.images:
                self.problems.append((where, f"unknown image id {ann.get('image_id')}"))
            elif ann.get("category_id") not in self.values:
                self.problems.append((where, f"unknown category id {ann.get('category_id')}"))
            else:
                image = self.images[ann["image_id"]]
                problem = _segmentation_problem(ann.get("segmentation"), image["height"], image["width"])
                if problem:
                    self.problems.append((where, problem))
                else:
                    self.annotations[ann["image_id"]].append(ann)

    def render(self, image_id: Any) -> np.ndarray:
        """The semantic mask (H, W) uint8 of one image (see the module docstring for the painting order)."""
        image = self.images[image_id]
        h, w = int(image["height"]), int(image["width"])
        mask = np.zeros((h, w), np.uint8)
        anns = [(_rle(a["segmentation"], h, w), a) for a in self.annotations.get(image_id, [])]
        plain = sorted((x for x in anns if not x[1].get("iscrowd")), key=lambda x: -float(_rle_tools().area(x[0])))
        for rle, ann in plain:
            mask[_rle_tools().decode(rle) > 0] = self.values[ann["category_id"]]
        for rle, _ in (x for x in anns if x[1].get("iscrowd")):
            mask[_rle_tools().decode(rle) > 0] = IGNORE_INDEX
        return mask


@dataclass(frozen=True)
class CocoMask:
    """The mask of one COCO image, rendered when read (``parsing.data.datasets.read_raw_mask``)."""

    index: CocoIndex
    image_id: Any

    def render(self) -> np.ndarray:
        return self.index.render(self.image_id)

    def __str__(self) -> str:
        return f"{self.index.path}#image {self.image_id}"


@functools.lru_cache(maxsize=8)
def load_coco(
    path: str, labels: tuple[str, ...], categories: tuple[tuple[str, str], ...] | None, unmapped: Unmapped
) -> CocoIndex:
    """A ``CocoIndex``, parsed once per process and arguments."""
    return CocoIndex(path, labels, dict(categories) if categories is not None else None, unmapped)


def coco_items(
    root: str | Path,
    annotations: str | Path,
    labels: Sequence[str],
    categories: dict[str, str] | None = None,
    unmapped: Unmapped = "ignore",
) -> list[tuple[Path, CocoMask]]:
    """(photo, mask) items of a COCO dataset, by file name; photos are ``root/<file_name>``."""
    cats = tuple(sorted(categories.items())) if categories is not None else None
    index = load_coco(str(annotations), tuple(labels), cats, unmapped)
    images = sorted(index.images.values(), key=lambda image: str(image["file_name"]))
    if not images:
        raise FileNotFoundError(f"{annotations}: no images listed")
    return [(Path(root) / str(image["file_name"]), CocoMask(index, image["id"])) for image in images]


def _segmentation_problem(segmentation: Any, h: int, w: int) -> str | None:
    """What is wrong with an annotation's ``segmentation`` (None when usable)."""
    if isinstance(segmentation, list):
        if not segmentation:
            return "empty polygon list"
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(isinstance(v, (int, float)) for v in polygon):
                return "polygon is not a list of numbers"
            if len(polygon) < 6 or len(polygon) % 2:
                return f"polygon with {len(polygon)} coordinates (needs an even number, at least 6)"
        return None
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [h, w]:
            return f"RLE size {list(segmentation['size'])} differs from the image's [{h}, {w}]"
        return None
    return "segmentation is neither polygons nor RLE"


def _rle_tools() -> Any:
    """pycocotools' mask module (the ``train`` extra), imported when COCO masks are first painted."""
    try:
        from pycocotools import mask
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("format: coco needs pycocotools: pip install 'clothing-parsing[train]'") from error
    return mask


def _rle(segmentation: Any, h: int, w: int) -> dict:
    """Polygons, uncompressed or compressed RLE → one compressed RLE."""
    if isinstance(segmentation, list):
        return _rle_tools().merge(_rle_tools().frPyObjects(segmentation, h, w))
    if isinstance(segmentation["counts"], list):
        return _rle_tools().frPyObjects(segmentation, h, w)
    return segmentation
