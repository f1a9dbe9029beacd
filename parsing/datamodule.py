"""LightningDataModule: CCP or a folder of images + PNG masks, a seeded train/val split, albumentations."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from parsing.datasets import Item, SegmentationDataset, ccp_items, collate, folder_items, list_images
from parsing.labels import LabelSet
from parsing.transforms import eval_transform, train_transform


class ParsingDataModule(pl.LightningDataModule):
    """Train/val split of one labelled root; ``test`` scores the val split at the photos' own resolution.

    Args:
        root: a CCP root (``photos/``, ``annotations/pixel-level/``) or, with ``format="folder"``, a folder
            holding ``images/`` and ``masks/<stem>.png`` (pixel value = label index, 255 = ignore).
        labels: names of the mask values 0..K-1 (``format="folder"``; CCP's 59 names are built in).
        merge: merge labels into a coarser set: a preset name (``"ccp-coarse"``) or ``{new: [old, ...]}``.
        ids: only these CCP ids (file stems); ``limit``: only the first N items (for smoke runs).
        val_fraction, seed: the split; the same items and seed always give the same split.
        size: network input (H, W), multiples of 32; photos are fitted inside it with their aspect kept.
        predict_dir: folder of photos for ``predict`` (default: the val split's photos).
    """

    def __init__(
        self,
        root: str = "../shared/data/ccp",
        format: Literal["ccp", "folder"] = "ccp",
        labels: list[str] | None = None,
        merge: str | dict[str, list[str]] | None = None,
        ids: list[str] | None = None,
        limit: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        size: tuple[int, int] = (384, 256),
        scale: tuple[float, float] = (0.75, 1.25),
        rotate: float = 10.0,
        colour_jitter: float = 0.2,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        predict_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if any(s % 32 for s in size):
            raise ValueError(f"size {size} must be multiples of 32")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if format == "ccp":
            self.label_set = LabelSet.ccp(merge)
        elif labels is None:
            raise ValueError("format='folder' needs labels: the names of mask values 0..K-1")
        else:
            base = LabelSet.identity(labels)
            self.label_set = base.merged(merge) if merge is not None else base
        self.train_set = self.val_set = self.predict_set = None

    @property
    def num_classes(self) -> int:
        return len(self.label_set)

    @property
    def class_names(self) -> list[str]:
        return list(self.label_set.names)

    @property
    def palette(self) -> list[list[int]]:
        return [list(c) for c in self.label_set.colours]

    def items(self) -> list[Item]:
        hp = self.hparams
        items = ccp_items(hp.root, hp.ids) if hp.format == "ccp" else folder_items(hp.root)
        return items[: hp.limit] if hp.limit else items

    def split(self, items: list[Item]) -> tuple[list[Item], list[Item]]:
        """Seeded split: the same items and seed give the same val set on every machine."""
        order = np.random.default_rng(self.hparams.seed).permutation(len(items))
        n_val = max(1, round(len(items) * self.hparams.val_fraction))
        if n_val >= len(items):
            raise ValueError(f"{self.hparams.root}: {len(items)} item(s) are too few to split off a val set")
        val = sorted(order[:n_val].tolist())
        train = sorted(order[n_val:].tolist())
        return [items[i] for i in train], [items[i] for i in val]

    def setup(self, stage: str) -> None:
        hp = self.hparams
        train_items, val_items = self.split(self.items())
        if stage == "fit":
            transform = train_transform(hp.size, hp.scale, hp.rotate, hp.colour_jitter)
            self.train_set = SegmentationDataset(train_items, self.label_set, transform)
        if stage in ("fit", "validate", "test"):
            self.val_set = SegmentationDataset(val_items, self.label_set, eval_transform(hp.size), keep_full=True)
        if stage == "predict":
            if hp.predict_dir is not None:
                predict_items: list[Item] = [(p, None) for p in list_images(Path(hp.predict_dir), recursive=True)]
            else:
                predict_items = [(photo, None) for photo, _ in val_items]
            transform = eval_transform(hp.size)
            self.predict_set = SegmentationDataset(predict_items, self.label_set, transform, keep_full=True)

    def _loader(self, dataset: SegmentationDataset, train: bool) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            dataset,
            batch_size=hp.batch_size if train else (hp.eval_batch_size or hp.batch_size),
            shuffle=train,
            drop_last=train and len(dataset) > hp.batch_size,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            collate_fn=collate,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_set, train=False)
