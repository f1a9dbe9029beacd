"""Your own label set: the shipped model with ``--merge`` (no training) against fine-tunes, by number of photos.

A shop-style label set — CCP's 59 labels grouped into the 11 a catalogue uses (``SHOP``) — stands in for a user's
own labels. Each fine-tune is a real ``python -m parsing fit`` on CCP relabelled to those groups
(``data.merge``), from the shipped model (``configs/finetune.yaml``'s recipe, lr 3e-4) or from ImageNet
(``configs/ccp.yaml``'s, lr 1e-3), on the first N photos of a fixed order of the training split (nested subsets),
for the same budget of optimizer steps whatever N. Every model is scored the same way on the 90 held-out
validation photos: ``parsing.Parser`` at full resolution (fast CRF, defaults), ground truth grouped the same way.
Every model is scored at the fine-tunes' training size and at the shipped model's input box. Wall time is each
fit's.
Writes ``bench/results/finetune.{json,md}``.

    python bench/finetune.py                                  # 25/50/100/all photos, both starts, 120 steps
    python bench/finetune.py --photos 25 --starts shipped --steps 20 --work /tmp/ft   # a quick look
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, write_results
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from parsing import Parser
from parsing.data.datamodule import ParsingDataModule
from parsing.data.datasets import read_raw_mask
from parsing.data.io import read_image
from parsing.labels import MERGES, LabelSet
from parsing.training.metrics import confusion_matrix, scores
from parsing.model.checkpoint import SHIPPED

# What a catalogue labels: ccp-coarse with shorts joining pants and the small accessories one group.
COARSE = MERGES["ccp-coarse"]
SMALL = ("accessories", "belt", "eyewear", "hat", "legwear", "scarf")
SHOP: dict[str, list[str]] = {
    "background": COARSE["null"],
    **{group: COARSE[group] for group in ("skin", "hair", "top", "outerwear", "dress", "skirt")},
    "trousers": COARSE["pants"] + COARSE["shorts"],
    **{group: COARSE[group] for group in ("shoes", "bag")},
    "accessories": sorted(label for group in SMALL for label in COARSE[group]),
}
STARTS = {"shipped": ROOT / "configs" / "finetune.yaml", "imagenet": ROOT / "configs" / "ccp.yaml"}


def run_config(start: str, photos: int, train_size: int, args: argparse.Namespace, folder: Path) -> dict:
    """The fit config of one fine-tune: the start's recipe on CCP grouped into SHOP, ``photos`` training photos,
    ``args.steps`` steps, no validation during the fit (scored afterwards), one ``last.ckpt``."""
    config = yaml.safe_load(STARTS[start].read_text())
    trainer = config["trainer"]
    trainer.update(max_epochs=None, max_steps=args.steps, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.update(default_root_dir=str(folder), logger=False, enable_progress_bar=False)
    trainer["callbacks"] = [
        {
            "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
            "init_args": {"dirpath": str(folder / "checkpoints"), "filename": "last", "enable_version_counter": False},
        }
    ]
    data = config["data"]
    for key in ("labels", "framing"):
        data.pop(key, None)
    data.update(root=args.data_root, format="ccp", merge=SHOP, train_fraction=min(1.0, photos / train_size))
    data.update(size=args.size, check=False, seed=0, val_fraction=0.1)
    return config


def fine_tune(start: str, photos: int, train_size: int, args: argparse.Namespace) -> tuple[Path, float]:
    """Run one fit (skipped when its checkpoint exists) → its checkpoint and wall seconds."""
    folder = args.work / f"{start}-{photos}"
    checkpoint = folder / "checkpoints" / "last.ckpt"
    timing = folder / "seconds.json"
    if checkpoint.exists() and timing.exists():
        return checkpoint, json.loads(timing.read_text())["seconds"]
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(run_config(start, photos, train_size, args, folder), sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    begin = time.perf_counter()
    with (folder / "fit.log").open("w") as log:
        subprocess.run([sys.executable, "-m", "parsing", "fit", "--config", str(config)], check=True, env=env,
                       stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
    seconds = time.perf_counter() - begin
    timing.write_text(json.dumps({"seconds": seconds}))
    return checkpoint, seconds


def score(checkpoint: Path, photos: list, input_size: list[int] | None, merge: dict | None) -> dict:
    """Pixel accuracy, foreground accuracy and mIoU over SHOP's groups on ``photos``, parsed with defaults."""

    parser = Parser.load(checkpoint, device="cpu", input_size=input_size, merge=merge)
    if parser.names != list(SHOP):
        raise ValueError(f"{checkpoint}: labels {parser.names}, expected {list(SHOP)}")
    truth_lut = torch.from_numpy(LabelSet.ccp(SHOP).lut.astype(np.int64))
    matrix = confusion_matrix(len(SHOP))
    start = time.perf_counter()
    for photo, mask_path in photos:
        labels = torch.from_numpy(parser(read_image(photo)).labels).long()
        truth = truth_lut[torch.from_numpy(read_raw_mask(mask_path)).long()]
        matrix.update(labels.flatten(), truth.flatten())
    result = scores(matrix.compute())
    return {
        **{key: round(100.0 * float(result[key]), 2) for key in ("pixel_acc", "fg_acc", "miou")},
        "input_size": list(parser.size),
        "s_per_photo": round((time.perf_counter() - start) / len(photos), 3),
    }


def markdown(result: dict) -> str:
    meta = result["meta"]
    sizes = meta["score_sizes"]
    lines = [
        "# Your own labels: `--merge` vs fine-tuning, by number of labelled photos",
        "",
        f"{meta['cpu']}, torch {meta['torch']}. Label set: CCP grouped into {len(SHOP)} shop groups "
        f"({', '.join(SHOP)}). Scored on the {meta['val_photos']} held-out validation photos at full resolution "
        "(`parsing.Parser`, fast CRF), each model with the photos fitted into each network input box below; "
        "foreground accuracy / mIoU over the groups. Fine-tunes: `python -m parsing fit` on the first N "
        f"of {meta['train_photos']} training photos (nested), {meta['steps']} steps of batch 8 at "
        f"{meta['size'][0]}×{meta['size'][1]} whatever N, no validation during the fit; minutes: the whole fit "
        "command. Command: `python bench/finetune.py`.",
        "",
        "| model | photos | start | minutes | " + " | ".join(f"fg / mIoU at {s}" for s in sizes) + " |",
        "|---|---|---|---|" + "---|" * len(sizes),
    ]
    for row in result["rows"]:
        minutes = "—" if row["seconds"] is None else f"{row['seconds'] / 60:.1f}"
        cells = [f"{row['scores'][s]['fg_acc']} / {row['scores'][s]['miou']}" for s in sizes]
        lines.append(f"| {row['model']} | {row['photos']} | {row['start']} | {minutes} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[25, 50, 100, 0], help="0 = all training photos")
    parser.add_argument("--starts", nargs="+", choices=list(STARTS), default=list(STARTS))
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--size", type=int, nargs=2, default=[384, 256], metavar=("H", "W"))
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--limit", type=int, default=None, help="score on the first N validation photos only")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-finetune", help="run folders")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="finetune")
    args = parser.parse_args()
    torch.set_num_threads(2)

    dm = ParsingDataModule(root=args.data_root, num_workers=0, check=False)
    train, val = dm.split(dm.items())  # the split of every fit here and of common.validation_photos
    train_size, photos = len(train), val[: args.limit]
    boxes = [args.size, list(Parser.load(SHIPPED).size)]  # the fine-tunes' training size, the shipped model's box

    def scored(checkpoint: Path, merge: dict | None) -> dict:
        rows = [score(checkpoint, photos, box, merge) for box in boxes]
        return {"×".join(map(str, r.pop("input_size"))): r for r in rows}

    merged = scored(SHIPPED, SHOP)
    rows = [{"model": "shipped + `--merge`", "photos": 0, "start": "—", "seconds": None, "scores": merged}]
    print(rows[-1], flush=True)
    for count in args.photos:
        count = count or train_size
        for start in args.starts:
            checkpoint, seconds = fine_tune(start, count, train_size, args)
            row = {"model": "fine-tune", "photos": count, "start": start, "seconds": round(seconds, 1)}
            rows.append({**row, "scores": scored(checkpoint, None)})
            print(rows[-1], flush=True)
    meta = {
        **machine(),
        "steps": args.steps,
        "size": args.size,
        "train_photos": train_size,
        "val_photos": len(photos),
        "score_sizes": ["×".join(map(str, box)) for box in boxes],
        "groups": SHOP,
    }
    write_results(args.out, args.name, {"meta": meta, "rows": rows}, markdown)


if __name__ == "__main__":
    main()
