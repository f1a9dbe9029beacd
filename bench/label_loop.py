"""The studio's loop, measured: label N photos of a new domain → fine-tune from the shipped model → parse the rest.

The domain: CCP photos re-framed as 2× close-ups (``zoom-in 2x`` of ``bench/robustness.py``), where the shipped
model loses most. *Labelling* is simulated as in ``bench/labelling.py``: each training photo is parsed by the
shipped model and fixed with ``--clicks`` clicks of ``Parse.click`` (the studio's fill tool) at the largest wrong
region, then saved with the studio's own ``TrainingFolder`` — so the labels hold what 10 clicks leave wrong.
Each fine-tune is ``make finetune``'s command (``python -m parsing fit --config configs/finetune.yaml``) on the
first N of those photos, for ``--steps`` steps whatever N; every model is scored on the 90 validation photos,
re-framed the same way and as they are (does it forget?), by ``parsing.Parser`` with its defaults.
Writes ``bench/results/label-loop.{json,md}``.

    python bench/label_loop.py                                  # N = 10, 30, 60; 100 steps each (~25 min)
    python bench/label_loop.py --photos 4 --steps 5 --limit 3 --work /tmp/loop --out /tmp/loop   # a quick look
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, validation_photos, write_results
from labelling import fg_accuracy, next_click
from robustness import FRAMINGS
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
from parsing.labels import LabelSet
from parsing.model.checkpoint import SHIPPED
from parsing.serve.dataset import TrainingFolder
from parsing.training.metrics import confusion_matrix, scores

DOMAIN = "zoom-in 2x"


def label_in_studio(items: list, folder: Path, clicks: int) -> list[float]:
    """Each (photo, mask) re-framed, parsed, fixed with ``clicks`` clicks and saved → each saved mask's fg accuracy."""
    parser = Parser.load(device="cpu", editable=True)
    dataset = TrainingFolder(folder, parser.names, parser.palette)
    accuracy = []
    for i, (photo, mask) in enumerate(items):
        image, truth = FRAMINGS[DOMAIN](read_image(photo), read_raw_mask(mask), np.random.default_rng([1, i]))
        image, truth = np.ascontiguousarray(image), np.ascontiguousarray(truth)
        parse = parser(image)
        for _ in range(clicks):
            click = next_click(parse.labels, truth)
            if click is None:
                break
            parse = parse.click(*click)
        dataset.save(parse.image, parse.work_labels, f"{i:04d}-{Path(photo).stem}")
        accuracy.append(fg_accuracy(parse.labels, truth))
    return accuracy


def fine_tune(data: Path, photos: int, args: argparse.Namespace) -> tuple[Path, float]:
    """``make finetune DATA=…`` on the first ``photos`` saved pairs, ``args.steps`` steps → checkpoint, seconds."""
    folder = args.work / f"fit-{photos}"
    subset = args.work / f"data-{photos}"
    checkpoint = folder / "checkpoints" / "last.ckpt"
    if checkpoint.exists():
        return checkpoint, json.loads((folder / "seconds.json").read_text())["seconds"]
    for kind in ("images", "masks"):
        (subset / kind).mkdir(parents=True, exist_ok=True)
        for path in sorted((data / kind).iterdir())[:photos]:
            (subset / kind / path.name).write_bytes(path.read_bytes())
    (subset / "labels.txt").write_bytes((data / "labels.txt").read_bytes())
    config = yaml.safe_load((ROOT / "configs" / "finetune.yaml").read_text())
    config["trainer"].update(max_epochs=None, max_steps=args.steps, limit_val_batches=0, num_sanity_val_steps=0)
    config["trainer"].update(default_root_dir=str(folder), logger=False, enable_progress_bar=False)
    config["trainer"]["callbacks"] = [
        {
            "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
            "init_args": {
                "dirpath": str(folder / "checkpoints"),
                "filename": "last",
                "enable_version_counter": False,
                "every_n_train_steps": args.steps,  # once, at the end (tiny epochs would save every step)
            },
        }
    ]
    # few photos make one-step epochs: loader processes restarted every step would cost more than they save
    config["data"].update(root=str(subset), val_fraction=0.1, check=False, num_workers=0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    begin = time.perf_counter()
    with (folder / "fit.log").open("w") as log:
        command = [sys.executable, "-m", "parsing", "fit", "--config", str(folder / "config.yaml")]
        subprocess.run(command, check=True, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - begin
    (folder / "seconds.json").write_text(json.dumps({"seconds": seconds}))
    return checkpoint, seconds


def score(checkpoint: str | Path, items: list, framing: str) -> dict[str, float]:
    """fg accuracy and mIoU on 59 labels and on ``ccp-coarse``, the validation photos re-framed."""
    parser = Parser.load(checkpoint, device="cpu")
    coarse = torch.from_numpy(LabelSet.identity(parser.names).merged("ccp-coarse").lut.astype(np.int64))
    fine_m, coarse_m = confusion_matrix(len(parser.names)), confusion_matrix(int(coarse[: len(parser.names)].max()) + 1)
    for i, (photo, mask) in enumerate(items):
        image, truth = FRAMINGS[framing](read_image(photo), read_raw_mask(mask), np.random.default_rng([0, i]))
        labels = torch.from_numpy(parser(np.ascontiguousarray(image)).labels).long().flatten()
        truth = torch.from_numpy(np.ascontiguousarray(truth)).long().flatten()
        fine_m.update(labels, truth)
        coarse_m.update(coarse[labels], coarse[truth])
    fine, rough = scores(fine_m.compute()), scores(coarse_m.compute())
    return {
        "fg": round(100 * float(fine["fg_acc"]), 2),
        "miou": round(100 * float(fine["miou"]), 2),
        "coarse_fg": round(100 * float(rough["fg_acc"]), 2),
        "coarse_miou": round(100 * float(rough["miou"]), 2),
    }


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# The studio's loop: label close-ups, fine-tune from the shipped model, parse the rest",
        "",
        f"Labels: CCP training photos re-framed as `{DOMAIN}`, each parsed by the shipped model and fixed with "
        f"{meta['clicks']} `Parse.click` clicks (saved masks {meta['label_fg']:.1f} % right on the person, mean). "
        f"Fine-tunes: `configs/finetune.yaml` (`make finetune`), {meta['steps']} steps whatever N. Scored on the "
        f"{meta['val_photos']} validation photos by `Parser` defaults; fg accuracy / mIoU on 59 labels and on "
        "`ccp-coarse`. "
        f"CPU: {meta.get('cpu', '?')}. `python bench/label_loop.py`",
        "",
        f"| model | photos | fit minutes | {DOMAIN}: fg / mIoU | coarse fg / mIoU | original: fg / mIoU | coarse |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        d, o = row[DOMAIN], row["original"]
        minutes = "–" if row["seconds"] is None else f"{row['seconds'] / 60:.1f}"
        lines.append(
            f"| {row['model']} | {row['photos']} | {minutes} | {d['fg']} / {d['miou']} | {d['coarse_fg']} / "
            f"{d['coarse_miou']} | {o['fg']} / {o['miou']} | {o['coarse_fg']} / {o['coarse_miou']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    ap.add_argument("--photos", type=int, nargs="+", default=[10, 30, 60])
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("/tmp/parsing-label-loop"))
    ap.add_argument("--limit", type=int, default=None, help="score on the first N validation photos only")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    dm = ParsingDataModule(root=args.data_root, num_workers=0)
    train = dm.split(dm.items())[0][: max(args.photos)]
    data = args.work / "studio"
    if not (data / "labels.txt").exists():
        accuracy = label_in_studio(train, data, args.clicks)
        (args.work / "label-accuracy.json").write_text(json.dumps(accuracy))
    accuracy = json.loads((args.work / "label-accuracy.json").read_text())
    val = validation_photos(args.data_root, args.limit)
    models = [("shipped", 0, str(SHIPPED), None)]
    for n in args.photos:
        checkpoint, seconds = fine_tune(data, n, args)
        models.append(("fine-tune", n, str(checkpoint), seconds))
    rows = []
    for name, n, checkpoint, seconds in models:
        row = {"model": name, "photos": n, "seconds": seconds}
        row.update({framing: score(checkpoint, val, framing) for framing in (DOMAIN, "original")})
        print(row, flush=True)
        rows.append(row)
    meta = {**machine(), "val_photos": len(val), "clicks": args.clicks, "steps": args.steps}
    meta["label_fg"] = 100 * float(np.mean(accuracy))
    write_results(args.out, "label-loop", {"meta": meta, "rows": rows}, markdown)


if __name__ == "__main__":
    main()
