"""COCO-format data: instance annotations → semantic masks, round-tripped from real CCP masks; check-data; fit."""

import json
import shutil

import numpy as np
import pytest
import yaml
from conftest import CCP_IDS, ROOT
from pycocotools import mask as rle_tools
from scipy import ndimage

from parsing.commands.check_data import main as check_main
from parsing.commands.cli import main
from parsing.data.check import check_coco
from parsing.data.coco import CocoIndex, coco_items
from parsing.data.datasets import read_raw_mask
from parsing.data.io import read_ccp_mask
from parsing.labels import CCP_LABELS, IGNORE_INDEX


def rle(binary: np.ndarray) -> dict:
    encoded = rle_tools.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"size": encoded["size"], "counts": encoded["counts"].decode("ascii")}


def coco_from_ccp(ccp_root, folder) -> tuple:
    """A COCO dataset made from CCP photos and masks: one RLE instance per connected region of each label;
    category ids are not the label ids (names map them)."""
    (folder / "images").mkdir(parents=True)
    images, annotations, masks = [], [], {}
    for n, stem in enumerate(CCP_IDS):
        shutil.copy(ccp_root / "photos" / f"{stem}.jpg", folder / "images" / f"{stem}.jpg")
        mask = read_ccp_mask(ccp_root / "annotations" / "pixel-level" / f"{stem}.mat")
        masks[f"images/{stem}.jpg"] = mask
        images.append(
            {"id": 10 + n, "file_name": f"images/{stem}.jpg", "height": mask.shape[0], "width": mask.shape[1]}
        )
        for value in np.unique(mask[mask > 0]):
            regions, count = ndimage.label(mask == value)
            for r in range(1, count + 1):
                binary = regions == r
                ann = {"id": len(annotations) + 1, "image_id": 10 + n, "category_id": 100 + int(value), "iscrowd": 0}
                annotations.append({**ann, "segmentation": rle(binary), "area": int(binary.sum())})
    categories = [{"id": 100 + i, "name": name} for i, name in enumerate(CCP_LABELS) if i > 0]
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path, masks


def test_rle_instances_round_trip_to_the_ccp_masks(ccp_root, tmp_path):
    path, masks = coco_from_ccp(ccp_root, tmp_path / "coco")
    items = coco_items(tmp_path / "coco", path, CCP_LABELS)
    assert [str(photo.relative_to(tmp_path / "coco")) for photo, _ in items] == sorted(masks)
    for photo, source in items:
        assert (read_raw_mask(source) == masks[str(photo.relative_to(tmp_path / "coco"))]).all()
    assert check_coco(tmp_path / "coco", path, CCP_LABELS) == []


def test_painting_rules(tmp_path):
    square = [10, 10, 50, 10, 50, 50, 10, 50]  # polygon x, y pairs
    small = [20, 20, 30, 20, 30, 30, 20, 30]
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 60, "width": 60}],
        "categories": [{"id": 1, "name": "dress"}, {"id": 2, "name": "belt"}, {"id": 3, "name": "umbrella"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "segmentation": [small], "iscrowd": 0},  # listed first
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [square], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 3, "segmentation": [[52, 52, 58, 52, 58, 58, 52, 58]]},
            {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]], "iscrowd": 1},
        ],
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    labels = ["background", "dress", "belt"]
    mask = CocoIndex(path, labels).render(1)
    assert mask[25, 25] == 2 and mask[40, 40] == 1  # the smaller instance on top, whatever the order
    assert mask[55, 55] == IGNORE_INDEX and mask[2, 2] == IGNORE_INDEX  # unmapped category, crowd
    assert mask[59, 0] == 0  # nothing: background
    assert CocoIndex(path, labels, unmapped="background").render(1)[55, 55] == 0
    mapped = CocoIndex(path, labels, categories={"umbrella": "belt", "dress": "dress"}).render(1)
    assert mapped[55, 55] == 2 and mapped[25, 25] == IGNORE_INDEX  # belt is not mapped now
    with pytest.raises(ValueError, match="unknown label"):
        CocoIndex(path, labels, categories={"dress": "gown"})


def test_check_data_names_each_problem(ccp_root, tmp_path, capsys):
    path, _ = coco_from_ccp(ccp_root, tmp_path / "coco")
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 999
    data["annotations"][1]["segmentation"] = [[1, 2, 3, 4, 5]]
    data["annotations"][2]["image_id"] = 12345
    data["images"][1]["height"] += 1
    (tmp_path / "coco" / "images" / f"{CCP_IDS[2]}.jpg").unlink()
    path.write_text(json.dumps(data))
    found = [str(p) for p in check_coco(tmp_path / "coco", path, CCP_LABELS)]
    assert f"{path}: annotation 1: unknown category id 999" in found
    assert f"{path}: annotation 2: polygon with 5 coordinates (needs an even number, at least 6)" in found
    assert f"{path}: annotation 3: unknown image id 12345" in found
    assert any(f"{CCP_IDS[1]}.jpg: size" in f and "differs from the COCO file's" in f for f in found)
    assert any(f"{CCP_IDS[2]}.jpg: file not found" in f for f in found)
    others = [f for f in found if "RLE size" in f]  # the resized image's own annotations no longer fit it
    assert len(found) == 5 + len(others) and all("differs from the image's" in f for f in others)
    args = [str(tmp_path / "coco"), "--format", "coco", "--annotations", str(path), "--labels", *CCP_LABELS]
    assert check_main(args) == 1 and "unknown category id 999" in capsys.readouterr().out


def test_fit_on_a_coco_dataset(ccp_root, tmp_path):
    path, _ = coco_from_ccp(ccp_root, tmp_path / "coco")
    config = tmp_path / "coco.yaml"
    data = {"format": "coco", "root": str(tmp_path / "coco"), "annotations": str(path), "labels": list(CCP_LABELS)}
    config.write_text(yaml.safe_dump({"data": data}))
    cli = main(
        ["fit", "--config", str(ROOT / "configs" / "smoke.yaml"), "--config", str(config),
         "--trainer.max_steps", "2", "--trainer.default_root_dir", str(tmp_path / "run")]
    )  # fmt: skip
    assert cli.trainer.global_step == 2 and cli.model.class_names == list(CCP_LABELS)
    assert 0.0 <= float(cli.trainer.callback_metrics["val/pixel_acc"]) <= 1.0
