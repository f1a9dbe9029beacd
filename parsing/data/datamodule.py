"""LightningDataModule: CCP or a folder of images + PNG masks, a seeded train/val split, albumentations."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from parsing.data.check import (
    MIN_VAL_PHOTOS,
    VAL_FRACTION,
    DataProblems,
    check_ccp,
    check_coco,
    check_folder,
    validation_size,
)
from parsing.data.coco import coco_items
from parsing.data.datasets import (
    Item,
    SegmentationDataset,
    TagDataset,
    ccp_items,
    ccp_tag_items,
    collate,
    folder_items,
    presence_targets,
    read_raw_mask,
)
from parsing.data.io import list_images
from parsing.data.transforms import Framing, eval_transform, train_transform
from parsing.labels import LabelSet, read_label_file

_PRESENCE_CACHE: dict[tuple, torch.Tensor] = {}


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker's albumentations pipelines their own seed, derived from the
    torch seed of the worker (itself from the seeded main process) and the DDP rank: reproducible, never shared."""
    info = torch.utils.data.get_worker_info()
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    seed = (torch.initial_seed() + 1_000_003 * rank) % 2**32
    datasets = info.dataset.datasets if isinstance(info.dataset, ConcatDataset) else [info.dataset]
    for dataset in datasets:
        transform = getattr(dataset, "transform", None)
        if hasattr(transform, "set_random_seed"):
            transform.set_random_seed(seed)


class ShardSampler(DistributedSampler):
    """Evaluation under DDP: each process scores every ``world``-th photo, none twice (DistributedSampler would
    repeat photos to even the shards out, which changes the metrics). Lightning keeps it as it is."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        super().__init__(dataset, shuffle=False, drop_last=False)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


class MixedSampler(Sampler[int]):
    """Indices into a ConcatDataset of pools: every index of the first pool once per epoch, and from each further
    pool ``ratio`` × the first pool's size drawn afresh each epoch (all of it when its ratio is None)."""

    def __init__(self, pools: Sequence[tuple[int, float | None]], seed: int = 0) -> None:
        base = pools[0][0]
        self.sizes = [n for n, _ in pools]
        self.takes = [base] + [n if r is None else min(n, round(r * base)) for n, r in pools[1:]]
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return sum(self.takes)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        parts, start = [torch.arange(self.takes[0])], self.sizes[0]
        for n, take in zip(self.sizes[1:], self.takes[1:], strict=True):
            parts.append(start + torch.randperm(n, generator=g)[:take])
            start += n
        order = torch.cat(parts)
        yield from order[torch.randperm(len(order), generator=g)].tolist()


class ParsingDataModule(pl.LightningDataModule):
    """Train/val split of one labelled root; ``test`` scores the val split at the photos' own resolution.

    Args:
        root: a CCP root (``photos/``, ``annotations/pixel-level/``); with ``format="folder"``, a folder
            holding ``images/`` and ``masks/<stem>.png`` (pixel value = label index, 255 = ignore); with
            ``format="coco"``, the folder the COCO file's ``file_name``s are relative to.
        labels: names of the mask values 0..K-1 (``folder`` and ``coco``; CCP's 59 names are built in).
        annotations, categories, unmapped: ``format="coco"``: the instances JSON, ``{category name: label}``
            (default: equal names) and what unmapped categories become (``ignore`` or ``background``); see
            ``parsing.data.coco``.
        merge: merge labels into a coarser set: a preset name (``"ccp-coarse"``) or ``{new: [old, ...]}``.
        ids: only these CCP ids (file stems); ``limit``: only the first N items (for smoke runs).
        val_fraction, seed: the split; the same items and seed always give the same split.
        train_fraction: train on this seeded share of the training split only (the val split is unchanged, and a
            smaller share is a subset of a larger one): a learning curve, i.e. what more labelled photos buy.
        size: network input (H, W), multiples of 32; photos are fitted inside it with their aspect kept.
        scale, rotate, colour_jitter: the whole-photo augmentation (random scale, shift, rotation, colour).
        framing: zoom-in crops, zoom-out canvases, aspect jitter, new backgrounds, degraded photos
            (``parsing.data.transforms.Framing``; all off by default). Tag-only photos get no zoom-in crops: a crop
            could cut a tagged garment out.
        predict_dir: folder of photos for ``predict`` (default: the val split's photos).
        tag_ratio: add this many CCP tag-only photos (``annotations/image-level``) per pixel-labelled photo to
            each training epoch; their masks are all ignored, so they supervise the garment presence: the outfit
            encoder's and, with ``model.pooled_weight``, the segmentation's own (pooled over pixels).
        extra: more labelled data for training only (never validation): folders of ``images/`` and
            ``masks/<stem>.png`` whose mask values are ``root``'s labels, e.g. ``parsing pseudo-label`` output.
        extra_ratio: draw this many extra photos per labelled photo of ``root`` each epoch (None: all of them).
        presence_min_fraction: a label is present in a photo when it covers at least this share of it.
        check: before ``fit``, read every photo and mask once and stop with the list of problems, if any
            (``parsing check-data`` prints the same list).
    """

    def __init__(
        self,
        root: str = "../shared/data/ccp",
        format: Literal["ccp", "folder", "coco"] = "ccp",
        labels: list[str] | None = None,
        annotations: str | None = None,
        categories: dict[str, str] | None = None,
        unmapped: Literal["ignore", "background"] = "ignore",
        merge: str | dict[str, list[str]] | None = None,
        ids: list[str] | None = None,
        limit: int | None = None,
        val_fraction: float = VAL_FRACTION,
        train_fraction: float = 1.0,
        seed: int = 0,
        size: tuple[int, int] = (384, 256),
        scale: tuple[float, float] = (0.75, 1.25),
        rotate: float = 10.0,
        colour_jitter: float = 0.2,
        framing: Framing | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        predict_dir: str | None = None,
        tag_ratio: float = 0.0,
        extra: list[str] | None = None,
        extra_ratio: float | None = None,
        presence_min_fraction: float = 0.001,
        check: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["framing"])
        self.framing = framing or Framing()
        self.hparams["framing"] = dataclasses.asdict(self.framing)  # plain values: checkpoints and hparams.yaml
        if any(s % 32 for s in size):
            raise ValueError(f"size {size} must be multiples of 32")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
        if tag_ratio and format != "ccp":
            raise ValueError("tag_ratio needs format='ccp' (tag-only photos come from annotations/image-level)")
        if format == "folder" and labels is None:
            labels = read_label_file(root)  # root/labels.txt or labels.yaml, as check-data and the studio write
        if format == "ccp":
            self.label_set = LabelSet.ccp(merge)
        elif labels is None:
            where = f" or a labels.txt in {root}" if format == "folder" else ""
            raise ValueError(f"format={format!r} needs labels: the names of mask values 0..K-1{where}")
        elif format == "coco" and annotations is None:
            raise ValueError("format='coco' needs annotations: the COCO instances JSON")
        else:
            base = LabelSet.identity(labels)
            self.label_set = base.merged(merge) if merge is not None else base
        self.train_set = self.val_set = self.predict_set = None
        self.sampler: MixedSampler | None = None

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
        if hp.format == "ccp":
            items = ccp_items(hp.root, hp.ids)
        elif hp.format == "coco":
            items = coco_items(hp.root, hp.annotations, self.label_set.source, hp.categories, hp.unmapped)
        else:
            items = folder_items(hp.root)
        return items[: hp.limit] if hp.limit else items

    def split(self, items: list[Item]) -> tuple[list[Item], list[Item]]:
        """Seeded split: the same items and seed give the same val set on every machine."""
        order = np.random.default_rng(self.hparams.seed).permutation(len(items))
        n_val = validation_size(len(items), self.hparams.val_fraction)
        if n_val >= len(items):
            raise ValueError(f"{self.hparams.root}: {len(items)} item(s) are too few to split off a val set")
        val = sorted(order[:n_val].tolist())
        train = order[n_val:]
        if self.hparams.train_fraction < 1.0:  # a fixed order of the training split: smaller shares are nested
            keep = max(1, round(len(train) * self.hparams.train_fraction))
            train = np.sort(train)[np.random.default_rng(self.hparams.seed + 1).permutation(len(train))[:keep]]
        train = sorted(train.tolist())
        return [items[i] for i in train], [items[i] for i in val]

    def presence_table(self) -> torch.Tensor:
        """(N, K) labels present in each training mask at full size: the co-occurrence statistics."""
        masks = [mask for _, mask in self.split(self.items())[0]]
        paths = tuple(str(mask) for mask in masks)
        key = (paths, self.label_set.lut.tobytes(), self.num_classes, self.hparams.presence_min_fraction)
        if key not in _PRESENCE_CACHE:  # reading every mask takes a while: once per process
            rows = []
            for source in masks:
                mask = torch.from_numpy(self.label_set.encode(read_raw_mask(source)).astype(np.int64))
                rows.append(presence_targets(mask[None], self.num_classes, self.hparams.presence_min_fraction)[0])
            _PRESENCE_CACHE[key] = torch.stack(rows)
        return _PRESENCE_CACHE[key]

    def check(self) -> None:
        """Raise ``DataProblems`` listing every problem of the data this module uses."""
        hp = self.hparams
        if hp.format == "ccp":
            ids = hp.ids
            if hp.limit and ids is None:
                ids = [photo.stem for photo, _ in self.items()]
            problems = check_ccp(hp.root, ids)
        elif hp.format == "coco":
            problems = check_coco(hp.root, hp.annotations, self.label_set.source, hp.categories, hp.unmapped)
        else:
            problems = check_folder(hp.root, len(self.label_set.source))
        for root in hp.extra or []:
            problems += check_folder(root, len(self.label_set.source))
        if problems:
            raise DataProblems(hp.root, problems)

    def setup(self, stage: str) -> None:
        hp = self.hparams
        if stage == "fit" and hp.check:
            self.check()
        train_items, val_items = self.split(self.items())
        if stage == "fit":
            for warning in small_validation(train_items, val_items, self.label_set.source, hp.val_fraction):
                rank_zero_warn(warning)
            backdrops = [photo for photo, _ in train_items]
            augment = (hp.size, hp.scale, hp.rotate, hp.colour_jitter, hp.seed)
            transform = train_transform(*augment, framing=self.framing, backdrops=backdrops)
            pixels = SegmentationDataset(train_items, self.label_set, transform, False, hp.presence_min_fraction)
            pools: list[tuple[Dataset, float | None]] = [(pixels, None)]
            if hp.extra:
                extra_items = [item for root in hp.extra for item in folder_items(root)]
                extra = SegmentationDataset(extra_items, self.label_set, transform, False, hp.presence_min_fraction)
                pools.append((extra, hp.extra_ratio))
            if hp.tag_ratio > 0:
                uncut = dataclasses.replace(self.framing, zoom_in=0.0)
                tag_transform = train_transform(*augment, framing=uncut, backdrops=backdrops)
                pools.append((TagDataset(ccp_tag_items(hp.root), self.label_set, tag_transform), hp.tag_ratio))
            self.train_set = pixels
            if len(pools) > 1:
                self.train_set = ConcatDataset([dataset for dataset, _ in pools])
                self.sampler = MixedSampler([(len(dataset), ratio) for dataset, ratio in pools], hp.seed)
        if stage in ("fit", "validate", "test"):
            transform = eval_transform(hp.size)
            self.val_set = SegmentationDataset(val_items, self.label_set, transform, True, hp.presence_min_fraction)
        if stage == "predict":
            if hp.predict_dir is not None:
                predict_items: list[Item] = [(p, None) for p in list_images(Path(hp.predict_dir), recursive=True)]
            else:
                predict_items = [(photo, None) for photo, _ in val_items]
            transform = eval_transform(hp.size)
            self.predict_set = SegmentationDataset(predict_items, self.label_set, transform, keep_full=True)

    def _loader(self, dataset: SegmentationDataset | ConcatDataset, train: bool) -> DataLoader:
        hp = self.hparams
        sampler = self.sampler if train else None
        if not train and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            sampler = ShardSampler(dataset)
        return DataLoader(
            dataset,
            batch_size=hp.batch_size if train else (hp.eval_batch_size or hp.batch_size),
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=train and len(dataset) > hp.batch_size,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            worker_init_fn=seed_worker,
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


def small_validation(train: list[Item], val: list[Item], names: Sequence[str], val_fraction: float) -> list[str]:
    """Warnings for a validation split too small to trust, or missing labels the training split has (by name;
    read from the masks, so only for small splits)."""
    if len(val) >= MIN_VAL_PHOTOS:
        return []
    want = math.ceil(MIN_VAL_PHOTOS / max(len(train) + len(val), 1) * 100) / 100
    if want <= 0.5:
        advice = f"label more photos or raise data.val_fraction (≥ {want:.2f} gives {MIN_VAL_PHOTOS})"
    else:  # no split gives enough validation photos and keeps half of them for training
        advice = f"label more photos ({2 * MIN_VAL_PHOTOS} give {MIN_VAL_PHOTOS} with data.val_fraction 0.5)"
    out = [
        f"the validation split has {len(val)} photo(s) (data.val_fraction {val_fraction}); its scores will be noise: "
        + advice
    ]
    seen = [set(np.unique(read_raw_mask(mask)).tolist()) for _, mask in (*train, *val) if mask is not None]
    in_train = set().union(*seen[: len(train)]) if train else set()
    in_val = set().union(*seen[len(train) :]) if val else set()
    missing = sorted(names[i] for i in in_train - in_val if i < len(names))
    if missing:
        out.append(f"labels in training but in no validation photo: {', '.join(missing)}")
    return out
