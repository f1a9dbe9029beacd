from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import CCP_IDS, blocks, write_ccp_root, write_folder_root
from PIL import Image

from parsing.data.check import DataProblems
from parsing.data.datamodule import ParsingDataModule
from parsing.data.datasets import SegmentationDataset, ccp_items, collate, folder_items
from parsing.data.io import DataError
from parsing.data.transforms import eval_transform
from parsing.labels import IGNORE_INDEX, LabelSet


def test_ccp_real_files(ccp_root):
    items = ccp_items(ccp_root, CCP_IDS[:3])
    assert [p.stem for p, _ in items] == CCP_IDS[:3]
    ds = SegmentationDataset(items, LabelSet.ccp(), eval_transform((384, 256)), keep_full=True)
    sample = ds[0]
    assert sample["image"].shape == (3, 384, 256) and sample["image"].dtype == torch.float32
    assert sample["image"].min() >= 0.0 and sample["image"].max() <= 1.0
    h, w = sample["size"]
    assert sample["full_mask"].shape == (h, w)
    labels = set(sample["full_mask"].unique().tolist())
    assert {0, 41} <= labels and max(labels) < 59  # null and skin are in every CCP photo
    batch = collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 384, 256) and len(batch["full_mask"]) == 2


def test_ccp_all_ids_listed(ccp_root):
    assert len(ccp_items(ccp_root)) == 904


def test_ccp_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Clothing Co-Parsing root"):
        ccp_items(tmp_path / "nowhere")


def test_ccp_unknown_id(ccp_root):
    with pytest.raises(FileNotFoundError, match="9999"):
        ccp_items(ccp_root, ["0001", "9999"])


def test_mask_size_mismatch_names_the_file(tmp_path):
    root = write_ccp_root(tmp_path / "ccp", {"0001": blocks(40, 30, [0, 41])}, {"0001": (41, 30)})
    ds = SegmentationDataset(ccp_items(root), LabelSet.ccp(), eval_transform((64, 64)))
    with pytest.raises(DataError, match=r"0001\.mat: mask size 30x40 differs from its photo's 30x41"):
        ds[0]


def test_label_out_of_range_names_the_file(tmp_path):
    mask = blocks(40, 30, [0, 41])
    mask[0, 0] = 77
    root = write_ccp_root(tmp_path / "ccp", {"0007": mask})
    ds = SegmentationDataset(ccp_items(root), LabelSet.ccp(), eval_transform((64, 64)))
    with pytest.raises(DataError, match=r"0007\.mat: label values \[77\] outside the label set \(0\.\.58\)"):
        ds[0]


def test_ccp_mat_without_groundtruth(tmp_path):
    root = write_ccp_root(tmp_path / "ccp", {"0001": blocks(40, 30, [0, 41])})
    scipy.io.savemat(root / "annotations" / "pixel-level" / "0001.mat", {"other": np.zeros(3)})
    ds = SegmentationDataset(ccp_items(root), LabelSet.ccp(), eval_transform((64, 64)))
    with pytest.raises(DataError, match="no 2-D 'groundtruth'"):
        ds[0]


def test_folder_dataset(tmp_path):
    masks = {"a": blocks(50, 40, [0, 1, 2]), "b": blocks(64, 32, [0, 2], seed=1)}
    root = write_folder_root(tmp_path / "data", masks, suffix=".jpg")
    labels = LabelSet.identity(["background", "shirt", "pants"])
    ds = SegmentationDataset(folder_items(root), labels, eval_transform((64, 64)), keep_full=True)
    assert len(ds) == 2
    for i, stem in enumerate(["a", "b"]):
        assert (ds[i]["full_mask"].numpy() == masks[stem]).all()


def test_folder_ignore_value_passes_and_out_of_range_fails(tmp_path):
    mask = blocks(20, 20, [0, 1])
    mask[:2] = IGNORE_INDEX
    root = write_folder_root(tmp_path / "data", {"a": mask})
    ds = SegmentationDataset(folder_items(root), LabelSet.identity(["bg", "fg"]), eval_transform((32, 32)))
    assert (ds[0]["mask"] == IGNORE_INDEX).any()
    Image.fromarray(np.full((20, 20), 5, np.uint8), mode="L").save(root / "masks" / "a.png")
    with pytest.raises(DataError, match=r"a\.png: label values \[5\]"):
        ds[0]


def test_folder_image_without_mask(tmp_path):
    root = write_folder_root(tmp_path / "data", {"a": blocks(20, 20, [0, 1])})
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / "images" / "lonely.jpg")
    with pytest.raises(FileNotFoundError, match="lonely.jpg"):
        folder_items(root)


def test_folder_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset root not found"):
        folder_items(tmp_path / "missing")


def test_extra_folders_join_training_only_and_are_checked(tmp_path):
    names = ["background", "shirt", "pants"]
    main = write_folder_root(tmp_path / "main", {f"m{i}": blocks(40, 32, [0, 1], seed=i) for i in range(10)})
    extra = write_folder_root(tmp_path / "extra", {f"x{i}": blocks(40, 32, [0, 2], seed=i) for i in range(6)})
    kw = dict(root=str(main), format="folder", labels=names, size=(64, 64), num_workers=0, batch_size=2)
    dm = ParsingDataModule(**kw, extra=[str(extra)], extra_ratio=0.5)
    dm.setup("fit")
    assert all(Path(s["path"]).parent.parent == main for s in dm.val_set)  # extra never validates
    order = list(dm.train_dataloader().sampler)
    assert len(order) == 9 + 4  # 9 labelled train photos + 0.5 × 9 extra, drawn
    paths = [Path(dm.train_set[i]["path"]).name for i in order]
    assert sum(p.startswith("x") for p in paths) == 4
    Image.fromarray(np.full((40, 32), 7, np.uint8), mode="L").save(extra / "masks" / "x0.png")
    with pytest.raises(DataProblems, match="x0.png"):
        ParsingDataModule(**kw, extra=[str(extra)]).setup("fit")


def test_train_fraction_keeps_val_and_nests(tmp_path):
    names = ["background", "shirt"]
    root = write_folder_root(tmp_path / "data", {f"m{i:02d}": blocks(16, 16, [0, 1], seed=i) for i in range(40)})
    kw = dict(root=str(root), format="folder", labels=names, size=(32, 32), num_workers=0)
    splits = {f: ParsingDataModule(**kw, train_fraction=f).split(folder_items(root)) for f in (1.0, 0.5, 0.25)}
    assert len({tuple(val) for _, val in splits.values()}) == 1  # the val split never moves
    train = {f: {photo.name for photo, _ in tr} for f, (tr, _) in splits.items()}
    assert [len(train[f]) for f in (1.0, 0.5, 0.25)] == [36, 18, 9]
    assert train[0.25] < train[0.5] < train[1.0]  # nested: a learning curve adds photos, never swaps them
    with pytest.raises(ValueError, match="train_fraction"):
        ParsingDataModule(**kw, train_fraction=0.0)
