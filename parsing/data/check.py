"""``parsing check-data ROOT``: every problem in a dataset, each with its file, before a long run starts.

Checks: photos that cannot be read, masks that cannot be read, mask/photo size mismatches, mask values outside
the label set, photos without a mask and masks without a photo, ids used by more than one photo, CCP tag files
that cannot be read or name unknown labels. ``fit`` runs the same check first (``data.check``, on by default)
and stops with the full list.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from parsing.data.coco import CocoIndex
from parsing.data.datasets import mask_problems, read_raw_mask
from parsing.data.io import IMAGE_SUFFIXES, DataError, list_images, read_ccp_tags, read_image
from parsing.labels import CCP_LABELS

MIN_VAL_PHOTOS = 20  # a validation split of fewer photos gives noise for scores (one photo moves fg by points)
VAL_FRACTION = 0.1  # data.val_fraction's default


def validation_size(photos: int, val_fraction: float = VAL_FRACTION) -> int:
    """How many of ``photos`` the data module's split keeps for validation (at least one)."""
    return max(1, round(photos * val_fraction))


@dataclass(frozen=True)
class Problem:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class DataProblems(ValueError):
    """A dataset with problems; the message lists them (the first ``shown``) with their files."""

    def __init__(self, root: str | Path, problems: list[Problem], shown: int = 50) -> None:
        lines = [str(p) for p in problems[:shown]]
        more = f"\n… and {len(problems) - shown} more" if len(problems) > shown else ""
        hint = "\n(run `parsing check-data` for the full list; data.check: false skips this check)"
        super().__init__(f"{root}: {len(problems)} data problem(s):\n" + "\n".join(lines) + more + hint)
        self.problems = problems


def _check_pair(photo: Path | None, mask: Path | None, num_labels: int) -> list[Problem]:
    """One (photo, mask) pair: both readable, same size, mask values in 0..num_labels-1 (or 255 = ignore)."""
    problems, shape, raw = [], None, None
    if photo is not None:
        try:
            shape = read_image(photo).shape[:2]
        except DataError as err:
            problems.append(Problem(err.path, err.problem))
    if mask is not None:
        try:
            raw = read_raw_mask(mask)
        except DataError as err:
            problems.append(Problem(err.path, err.problem))
    if raw is not None:
        problems += [Problem(str(mask), problem) for problem in mask_problems(raw, shape, num_labels)]
    return problems


def _duplicates(photos: list[Path]) -> list[Problem]:
    by_id: dict[str, list[Path]] = defaultdict(list)
    for photo in photos:
        by_id[photo.stem].append(photo)
    return [
        Problem(str(paths[0]), f"id {stem!r} is used by {len(paths)} photos: {[p.name for p in paths]}")
        for stem, paths in sorted(by_id.items())
        if len(paths) > 1
    ]


def same_photos(photos: list[Path]) -> list[Problem]:
    """Files with the same bytes under different names (a photo saved twice by the studio, a copy): in a train and
    a validation split at once they would leak."""
    first: dict[str, Path] = {}
    problems = []
    for photo in sorted(photos):
        digest = hashlib.sha1(photo.read_bytes()).hexdigest()
        if digest in first:
            problems.append(Problem(str(photo), f"the same photo as {first[digest].name} (would leak between splits)"))
        else:
            first[digest] = photo
    return problems


def check_ccp(root: str | Path, ids: list[str] | None = None, workers: int = 4) -> list[Problem]:
    """A Clothing Co-Parsing root in its original layout (all of it, or just ``ids``)."""
    root = Path(root)
    photos_dir, masks_dir = root / "photos", root / "annotations" / "pixel-level"
    tags_dir = root / "annotations" / "image-level"
    if not photos_dir.is_dir() or not masks_dir.is_dir():
        return [Problem(str(root), "not a Clothing Co-Parsing root (expected photos/ and annotations/pixel-level/)")]
    photos = list_images(photos_dir)
    masks = {p.stem: p for p in sorted(masks_dir.glob("*.mat"))}
    tags = {p.stem: p for p in sorted(tags_dir.glob("*.mat"))} if tags_dir.is_dir() else {}
    if ids is not None:
        wanted = set(ids)
        photos = [p for p in photos if p.stem in wanted]
        problems = [Problem(str(masks_dir / f"{i}.mat"), "no such annotation") for i in sorted(wanted - set(masks))]
        masks = {k: v for k, v in masks.items() if k in wanted}
        tags = {}
    else:
        problems = []
    problems += _duplicates(photos)
    by_id = {p.stem: p for p in photos}
    problems += [Problem(str(mask), "mask without a photo") for stem, mask in masks.items() if stem not in by_id]
    if ids is None:
        problems += [
            Problem(str(photo), "photo without a mask or tags")
            for stem, photo in by_id.items()
            if stem not in masks and stem not in tags
        ]
    pairs = [(by_id[stem], mask) for stem, mask in masks.items() if stem in by_id]
    with ThreadPoolExecutor(workers) as pool:
        for found in pool.map(lambda pair: _check_pair(*pair, len(CCP_LABELS)), pairs):
            problems += found
        for found in pool.map(lambda path: _check_tags(path, len(CCP_LABELS)), tags.values()):
            problems += found
    return problems


def _check_tags(path: Path, num_labels: int) -> list[Problem]:
    try:
        read_ccp_tags(path, num_labels)
    except DataError as err:
        return [Problem(err.path, err.problem)]
    return []


def check_folder(root: str | Path, num_labels: int, workers: int = 4, same: bool = False) -> list[Problem]:
    """A folder dataset: ``root/images/*`` and ``root/masks/<stem>.png``; ``same``: also files with the same
    bytes under two names (``parsing check-data`` asks; the check before ``fit`` does not read every photo twice)."""
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    missing = [Problem(str(d), "folder not found") for d in (images_dir, masks_dir) if not d.is_dir()]
    if missing:
        return missing
    photos = list_images(images_dir)
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    problems = _duplicates(photos) + (same_photos(photos) if same else [])
    by_id = {p.stem: p for p in photos}
    problems += [Problem(str(photo), "photo without a mask") for stem, photo in by_id.items() if stem not in masks]
    problems += [Problem(str(mask), "mask without a photo") for stem, mask in masks.items() if stem not in by_id]
    problems += [Problem(str(m), "mask must be a .png") for m in masks.values() if m.suffix.lower() != ".png"]
    pairs = [(by_id[stem], mask) for stem, mask in masks.items() if stem in by_id and mask.suffix.lower() == ".png"]
    with ThreadPoolExecutor(workers) as pool:
        for found in pool.map(lambda pair: _check_pair(*pair, num_labels), pairs):
            problems += found
    return problems


def check_coco(
    root: str | Path,
    annotations: str | Path,
    labels: Sequence[str],
    categories: dict[str, str] | None = None,
    unmapped: str = "ignore",
    workers: int = 4,
) -> list[Problem]:
    """A COCO dataset: the JSON (unknown image or category ids, bad polygons or RLE, each with its annotation id),
    and each listed image (missing, unreadable, or of another size than the JSON says)."""
    try:
        index = CocoIndex(annotations, labels, categories, unmapped)
    except DataError as err:
        return [Problem(err.path, err.problem)]
    problems = [Problem(where, what) for where, what in index.problems]

    def check_image(image: dict) -> list[Problem]:
        photo = Path(root) / str(image["file_name"])
        try:
            shape = read_image(photo).shape[:2]
        except DataError as err:
            return [Problem(err.path, f"{err.problem} (COCO image {image['id']})")]
        if shape != (image["height"], image["width"]):
            said = f"{image['width']}x{image['height']}"
            return [Problem(str(photo), f"size {shape[1]}x{shape[0]} differs from the COCO file's {said}")]
        return []

    with ThreadPoolExecutor(workers) as pool:
        for found in pool.map(check_image, index.images.values()):
            problems += found
    return problems
