"""Datasets: CCP in its original layout, a folder of images + PNG masks, and plain images for predict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from parsing.data.coco import CocoMask
from parsing.data.io import DataError, list_images, read_ccp_mask, read_ccp_tags, read_image, read_png_mask
from parsing.labels import IGNORE_INDEX, LabelSet

Item = tuple[Path, "Path | CocoMask | None"]  # (photo, mask or None)


def presence_targets(mask: torch.Tensor, num_classes: int, min_fraction: float = 0.001) -> torch.Tensor:
    """Masks (B, H, W) → (B, K) float: 1 where a label covers at least ``min_fraction`` of the labelled pixels."""
    b = mask.shape[0]
    flat = mask.reshape(b, -1)
    valid = flat != IGNORE_INDEX
    bins = b * num_classes  # ignored pixels go to a spare bin: 7× faster than selecting the valid ones (219 k px)
    index = torch.where(valid, flat + torch.arange(b, device=mask.device)[:, None] * num_classes, bins)
    counts = torch.bincount(index.flatten(), minlength=bins + 1)[:bins].view(b, num_classes)  # (B, K)
    needed = (valid.sum(1, keepdim=True) * min_fraction).clamp(min=1)
    return (counts >= needed).float()


def ccp_items(root: str | Path, ids: Sequence[str] | None = None) -> list[Item]:
    """(photo, mask) pairs of the pixel-annotated CCP photos under ``root`` (all, or just ``ids``)."""
    root = Path(root)
    photos, masks = root / "photos", root / "annotations" / "pixel-level"
    if not photos.is_dir() or not masks.is_dir():
        raise FileNotFoundError(
            f"{root}: not a Clothing Co-Parsing root (expected photos/ and annotations/pixel-level/ inside)"
        )
    available = sorted(p.stem for p in masks.glob("*.mat"))
    if not available:
        raise FileNotFoundError(f"{masks}: no .mat annotations found")
    if ids is not None:
        missing = sorted(set(ids) - set(available))
        if missing:
            raise FileNotFoundError(f"{masks}: no annotation for ids {missing[:10]}")
        available = [i for i in available if i in set(ids)]
    return [(photos / f"{i}.jpg", masks / f"{i}.mat") for i in available]


def read_raw_mask(path: Path | CocoMask) -> np.ndarray:
    """Raw mask values (H, W) uint8 from a CCP .mat, a PNG, or a COCO image's annotations."""
    if isinstance(path, CocoMask):
        return path.render()
    return read_ccp_mask(path) if path.suffix == ".mat" else read_png_mask(path)


def mask_problems(raw: np.ndarray, shape: tuple[int, int] | None, num_labels: int) -> list[str]:
    """What is wrong with a raw mask (H, W): a size other than its photo's ``shape``, values outside 0..num_labels-1
    (255 = ignore is allowed)."""
    problems = []
    if shape is not None and raw.shape != shape:
        (mh, mw), (ph, pw) = raw.shape, shape
        problems.append(f"mask size {mw}x{mh} differs from its photo's {pw}x{ph}")
    bad = (raw >= num_labels) & (raw != IGNORE_INDEX)
    if bad.any():
        values = sorted(int(v) for v in np.unique(raw[bad]))
        problems.append(f"label values {values} outside the label set (0..{num_labels - 1})")
    return problems


def ccp_tag_items(root: str | Path) -> list[Item]:
    """(photo, tags .mat) pairs of CCP's tag-only photos (``annotations/image-level``)."""
    root = Path(root)
    tags = root / "annotations" / "image-level"
    if not tags.is_dir():
        raise FileNotFoundError(f"{tags}: no image-level annotations (CCP's tag-only photos) found")
    return [(root / "photos" / f"{p.stem}.jpg", p) for p in sorted(tags.glob("*.mat"))]


def folder_items(root: str | Path) -> list[Item]:
    """(image, mask) pairs from ``root/images/*`` and ``root/masks/<stem>.png``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root not found")
    images = list_images(root / "images")
    masks_dir = root / "masks"
    if not masks_dir.is_dir():
        raise FileNotFoundError(f"{masks_dir}: mask folder not found (expected root/images and root/masks)")
    orphans = [p.name for p in images if not (masks_dir / f"{p.stem}.png").is_file()]
    if orphans:
        raise FileNotFoundError(f"{masks_dir}: no <stem>.png mask for {len(orphans)} image(s): {orphans[:10]}")
    if not images:
        raise FileNotFoundError(f"{root / 'images'}: no images found")
    return [(p, masks_dir / f"{p.stem}.png") for p in images]


class SegmentationDataset(Dataset):
    """Photos with optional masks; raw mask values are mapped through ``labels`` and checked.

    Each sample is a dict: ``image`` (3, H, W) float in [0, 1], ``mask`` (H, W) int64 at network size,
    ``region`` (H, W) bool, the pixels that show the photo (not padding or a zoom-out canvas), ``presence`` (K,)
    the labels in ``mask`` (covering ≥ ``min_fraction``), ``known`` (K,) which presence targets are known (all,
    here), ``path``, and with ``keep_full``: ``full_mask`` (h, w) at the photo's size, ``size`` (h, w) and
    ``valid`` (h', w'), the part of the network input that holds the resized photo (the rest is padding).
    """

    def __init__(
        self,
        items: Sequence[Item],
        labels: LabelSet,
        transform: Callable[..., dict[str, Any]],
        keep_full: bool = False,
        min_fraction: float = 0.001,
    ) -> None:
        self.items = list(items)
        self.labels = labels
        self.transform = transform
        self.keep_full = keep_full
        self.min_fraction = min_fraction

    def __len__(self) -> int:
        return len(self.items)

    def read_mask(self, path: Path, shape: tuple[int, int]) -> np.ndarray:
        raw = read_raw_mask(path)
        problems = mask_problems(raw, shape, len(self.labels.source))
        if problems:
            raise DataError(path, problems[0])
        return self.labels.encode(raw)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, mask_path = self.items[index]
        image = read_image(image_path)
        h, w = image.shape[:2]
        mask = self.read_mask(mask_path, (h, w)) if mask_path is not None else np.full((h, w), IGNORE_INDEX, np.uint8)
        out = self.transform(image=image, mask=mask, valid=np.ones((h, w), np.uint8))
        region = torch.as_tensor(out["valid"]) == 1
        sample = {"image": out["image"], "mask": torch.as_tensor(out["mask"], dtype=torch.long), "region": region}
        sample["presence"] = presence_targets(sample["mask"][None], len(self.labels), self.min_fraction)[0]
        sample["known"] = torch.ones(len(self.labels), dtype=torch.bool)
        sample["path"] = str(image_path)
        if self.keep_full:
            sample["full_mask"] = torch.from_numpy(mask).long()
            sample["full_image"] = torch.from_numpy(image)  # (h, w, 3) uint8, for the CRF
            sample["size"] = (h, w)
            sample["valid"] = (int(region.any(1).sum()), int(region.any(0).sum()))
        return sample


class TagDataset(Dataset):
    """Tag-only photos: garment presence from image-level tags, no mask (all pixels ignored).

    Only garment labels are ``known``: the tags never list background, skin or hair.
    """

    def __init__(self, items: Sequence[Item], labels: LabelSet, transform: Callable[..., dict[str, Any]]) -> None:
        self.items = list(items)
        self.labels = labels
        self.transform = transform
        self.garments = torch.from_numpy(labels.garments)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, tags_path = self.items[index]
        image = read_image(image_path)
        tags = read_ccp_tags(tags_path, len(self.labels.source))
        h, w = image.shape[:2]
        mask = np.full((h, w), IGNORE_INDEX, np.uint8)
        out = self.transform(image=image, mask=mask, valid=np.ones((h, w), np.uint8))
        presence = torch.zeros(len(self.labels))
        presence[torch.from_numpy(self.labels.lut[tags].astype(np.int64))] = 1.0
        known = self.garments | presence.bool()
        mask_t = torch.as_tensor(out["mask"], dtype=torch.long)
        region = torch.as_tensor(out["valid"]) == 1
        return {
            "image": out["image"],
            "mask": mask_t,
            "region": region,
            "presence": presence,
            "known": known,
            "path": str(image_path),
        }


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the network-size tensors; keep per-photo items (paths, full-size masks, sizes) as lists."""
    stacked = default_collate([{k: s[k] for k in ("image", "mask", "region", "presence", "known")} for s in batch])
    for key in batch[0]:
        if key not in stacked:
            stacked[key] = [s[key] for s in batch]
    return stacked
