"""Outfit-encoder benchmark: the same training continued under each outfit setting, each scored with each decoding.

From one trained checkpoint (``--start``, default the shipped model), the recipe (``--config``) is
continued for ``--steps`` steps under every setting of ``--variants``: ``none`` (no branch), ``aux`` (the branch
learns presence but does not touch the logits), ``gate-multiply`` (the paper's G_c = g_c · F_c) and ``gate-log``
(adds log g_c). Every variant gets the same steps, data and seed, so the comparison is not "more training".
``--head-steps`` first trains the branch alone (segmentation frozen, the paper's stage 2) for the gate variants —
for a start checkpoint without a trained branch. Every model, the start included, is scored on the CCP
validation split at the photos' own resolution (network at the recipe's ``data.size``, no CRF) without
exclusivity decoding and with it, from the segmentation's pixels and (with a branch) from the branch's
presence. Results are rewritten after each variant: ``bench/results/outfit.{json,md}``. Run from the repository
root (the recipe's paths are relative to it).

    python bench/outfit.py --steps 120        # the shipped model, configs/ccp-student.yaml (needs make pseudo)
    python bench/outfit.py --start runs/ccp/checkpoints/last.ckpt --config configs/ccp.yaml --head-steps 50
    python bench/outfit.py --reuse            # re-score variants already trained under --work
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
import argparse
import json
import math
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from common import ROOT, machine, shown

from parsing.data.datamodule import ParsingDataModule
from parsing.model.checkpoint import read_checkpoint
from parsing.training.module import ParsingModule
from parsing.model.checkpoint import SHIPPED as DEFAULT_CHECKPOINT
from parsing.data.transforms import Framing

COLUMNS = [
    ("pixel_acc", "pixel acc"),
    ("fg_acc", "fg acc"),
    ("miou", "mIoU"),
    ("f1", "F1"),
    ("presence_map", "presence mAP"),
    ("presence_f1", "presence F1"),
    ("violation_rate", "violation rate"),
    ("violation_rate_gt", "GT violation rate"),
]
VARIANTS = {  # name → the model's outfit settings
    "none": dict(outfit="none"),
    "aux": dict(outfit="aux"),
    "gate-multiply": dict(outfit="gate", gate_mode="multiply"),
    "gate-log": dict(outfit="gate", gate_mode="log"),
}
DECODINGS = {  # name → the module's decoding settings at test time
    "off": dict(decode=False),
    "pixels": dict(decode=True, decode_from="pixels"),
    "presence": dict(decode=True, decode_from="presence"),
}


def recipe(config: Path) -> tuple[dict, dict]:
    """A LightningCLI config → its ``data`` and ``model`` arguments."""
    text = yaml.safe_load(config.read_text())
    data, model = dict(text.get("data", {})), dict(text.get("model", {}))
    if isinstance(data.get("framing"), dict):  # what LightningCLI builds from the YAML mapping
        data["framing"] = Framing(**data["framing"])
    return data, model


def fit(out: Path, data: dict, model: dict, steps: int, reuse: bool) -> tuple[Path, float]:
    """Train ``steps`` steps into ``out`` (or, with ``reuse``, take what is there) → its checkpoint, minutes."""
    if reuse and (out / "last.ckpt").is_file():
        return out / "last.ckpt", float("nan")
    pl.seed_everything(0)
    dm = ParsingDataModule(**data)
    module = ParsingModule(**model, class_names=dm.class_names, palette=dm.palette)
    trainer = pl.Trainer(
        max_steps=steps,
        limit_val_batches=0,  # scored once at the end, at full resolution (evaluate)
        callbacks=[ModelCheckpoint(dirpath=out, save_last=True, save_top_k=0)],
        logger=CSVLogger(out, name="csv"),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.time()
    trainer.fit(module, dm)
    return out / "last.ckpt", (time.time() - start) / 60


def evaluate(checkpoint: Path, data: dict, **overrides) -> dict[str, float]:
    """Validation-split scores of a checkpoint, with ``overrides`` of its decoding settings."""
    module = ParsingModule.load_from_checkpoint(checkpoint, map_location="cpu", **overrides)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (result,) = trainer.test(module, datamodule=ParsingDataModule(**data), verbose=False)
    return {key: float(value) for key, value in result.items() if not key.startswith("test/iou/")}


def score(name: str, checkpoint: Path, data: dict, decodings: list[str], has_branch: bool) -> list[dict]:
    rows = []
    for decoding in decodings:
        if decoding == "presence" and not has_branch:
            continue
        metrics = evaluate(checkpoint, data, **DECODINGS[decoding])
        rows.append({"model": name, "decoding": decoding, "metrics": metrics})
        print(f"{name} decoding {decoding}: fg {metrics['test/fg_acc']:.4f} mIoU {metrics['test/miou']:.4f}")
    return rows


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Outfit encoder benchmark (CCP validation split, full resolution)",
        "",
        f"From `{meta['start']}`, `{meta['config']}` continued {meta['steps']} steps (batch {meta['batch_size']}, "
        f"{'×'.join(map(str, meta['size']))}, lr {meta['lr']}, seed 0) under each outfit setting"
        + (f", gate variants after {meta['head_steps']} steps of the branch alone" if meta["head_steps"] else "")
        + f". Scored at {'×'.join(map(str, meta['size']))}, no CRF. Decoding = exclusive garment pairs resolved "
        "from the segmentation's pixels or from the branch's presence; violation rate = photos whose map holds "
        f"an exclusive pair. {meta['cpu']}, torch {meta['torch']}.",
        "",
        "| model | decoding | " + " | ".join(title for _, title in COLUMNS) + " | train min |",
        "|" + "---|" * (len(COLUMNS) + 3),
    ]
    for row in result["rows"]:
        cells = []
        for key, _ in COLUMNS:
            value = row["metrics"].get(f"test/{key}")
            cells.append("–" if value is None else f"{100 * value:.1f} %")
        minutes = result["minutes"].get(row["model"])
        shown_minutes = "–" if minutes is None or minutes != minutes else f"{minutes:.1f}"
        lines.append(f"| {row['model']} | {row['decoding']} | " + " | ".join(cells) + f" | {shown_minutes} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=Path, default=DEFAULT_CHECKPOINT, help="the checkpoint every variant continues")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ccp-student.yaml")
    parser.add_argument("--steps", type=int, default=150, help="training steps of each variant")
    parser.add_argument("--head-steps", type=int, default=0, help="steps of the branch alone before a gate variant")
    parser.add_argument("--lr", type=float, default=None, help="max learning rate (default: the recipe's)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--decodings", nargs="+", choices=list(DECODINGS), default=list(DECODINGS))
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=YAML", help="data overrides, e.g. size=[384,256]")
    parser.add_argument("--reuse", action="store_true", help="score variants already trained under --work")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-outfit")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    torch.set_float32_matmul_precision("high")
    data, model = recipe(args.config)
    for item in args.data:
        key, _, value = item.partition("=")
        data[key] = yaml.safe_load(value)
    model.update(encoder_weights=None, init_from=str(args.start))  # every variant starts from --start
    if args.lr is not None:
        model["lr"] = args.lr
    for key in ("outfit", "gate_mode", "trainable"):
        model.pop(key, None)
    has_branch = any(k.startswith("net.outfit.") for k in read_checkpoint(args.start)["state_dict"])
    meta = {
        "start": shown(args.start),
        "config": shown(args.config),
        "steps": args.steps,
        "head_steps": args.head_steps,
        "lr": model.get("lr"),
        "size": data.get("size"),
        "batch_size": data.get("batch_size"),
        **machine(),
    }
    result = {"meta": meta, "rows": [], "minutes": {}}
    earlier = args.results / "outfit.json"  # --reuse: the training minutes its variants were measured with
    trained = json.loads(earlier.read_text()).get("minutes", {}) if args.reuse and earlier.is_file() else {}

    def write() -> None:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "outfit.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.results / "outfit.md").write_text(markdown(result))

    result["rows"] += score("start", args.start, data, args.decodings, has_branch)
    write()
    for variant in args.variants:
        settings = VARIANTS[variant]
        minutes, init = 0.0, str(args.start)
        if args.head_steps and settings["outfit"] == "gate":
            head = {**model, **settings, "trainable": "outfit"}
            checkpoint, minutes = fit(args.work / f"{variant}-head", data, head, args.head_steps, args.reuse)
            init = str(checkpoint)
        hparams = {**model, **settings, "init_from": init}
        checkpoint, more = fit(args.work / variant, data, hparams, args.steps, args.reuse)
        spent = minutes + more  # NaN when reused
        result["minutes"][variant] = trained.get(variant, spent) if math.isnan(spent) else spent
        result["rows"] += score(variant, checkpoint, data, args.decodings, settings["outfit"] != "none")
        write()
    print(markdown(result))


if __name__ == "__main__":
    main()
