"""Outfit-encoder benchmark: plain segmentation vs + outfit gate vs + exclusivity decoding.

Starts from a trained plain model (stage 1, e.g. ``make train``) and follows the paper's schedule:
stage 2 trains only the outfit encoder (segmentation frozen), stage 3 trains everything end to end, both with
CCP's tag-only photos mixed in. A control continues the plain model for as many epochs as stage 3, so that
the comparison is not just "more training". Every model is scored on the CCP validation split at the photos'
own resolution, without and with exclusivity decoding (from the outfit encoder's presence probabilities, or
from the segmentation's own label shares). Writes ``bench/results/outfit.json`` and ``bench/results/outfit.md``.

    python bench/outfit.py --plain runs/ccp/checkpoints/last.ckpt
    python bench/outfit.py --plain runs/ccp/checkpoints/last.ckpt --reuse   # re-score trained stages only
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
import argparse
import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from common import ROOT, shown

from parsing.datamodule import ParsingDataModule
from parsing.module import ParsingModule

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


def default_recipe(config: Path) -> tuple[dict, dict]:
    recipe = yaml.safe_load(config.read_text())
    return dict(recipe.get("data", {})), dict(recipe.get("model", {}))


def datamodule(data: dict, **overrides) -> ParsingDataModule:
    return ParsingDataModule(**{**data, **overrides})


def fit(name: str, out: Path, data: dict, model: dict, epochs: int, reuse: bool, **overrides) -> tuple[Path, float]:
    """Train one stage (or, with ``reuse``, take its existing checkpoint); returns it and the wall time."""
    if reuse and (out / name / "last.ckpt").is_file():
        return out / name / "last.ckpt", float("nan")
    dm = datamodule(data, tag_ratio=overrides.pop("tag_ratio", 0.0))
    module = ParsingModule(**{**model, **overrides}, class_names=dm.class_names, palette=dm.palette)
    checkpoints = ModelCheckpoint(dirpath=out / name, save_last=True, save_top_k=0)
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[checkpoints],
        logger=CSVLogger(out, name=name),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.time()
    trainer.fit(module, dm)
    return out / name / "last.ckpt", time.time() - start


def evaluate(checkpoint: Path, data: dict, **overrides) -> dict[str, float]:
    module = ParsingModule.load_from_checkpoint(checkpoint, map_location="cpu", **overrides)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (result,) = trainer.test(module, datamodule=datamodule(data), verbose=False)
    return {key: float(value) for key, value in result.items() if not key.startswith("test/iou/")}


def markdown(rows: list[dict], meta: dict) -> str:
    head = "| model | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            value = row["metrics"].get(f"test/{key}")
            cells.append("–" if value is None else f"{100 * value:.1f} %")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    notes = "\n".join(f"- {key}: {value}" for key, value in meta.items())
    return (
        "# Outfit encoder benchmark (CCP validation split, full resolution)\n\n"
        + "\n".join(lines)
        + "\n\n"
        + notes
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", type=Path, required=True, help="stage-1 checkpoint (plain segmentation)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ccp.yaml")
    parser.add_argument("--stage2-epochs", type=int, default=2)
    parser.add_argument("--stage3-epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4, help="max learning rate of stages 2 and 3 and control")
    parser.add_argument("--tag-ratio", type=float, default=0.5)
    parser.add_argument("--gate-mode", choices=["multiply", "log"], default="multiply")
    parser.add_argument("--no-control", action="store_true", help="skip continuing the plain model")
    parser.add_argument("--reuse", action="store_true", help="score stages already trained under --work")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-outfit")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    pl.seed_everything(0)
    torch.set_float32_matmul_precision("high")
    data, model = default_recipe(args.config)
    model.update(lr=args.lr, encoder_weights=None)  # every stage starts from a trained checkpoint
    meta = {
        "plain checkpoint": shown(args.plain),
        "recipe": f"{args.config.name}; stage 2 {args.stage2_epochs} ep (outfit encoder only), stage 3 "
        f"{args.stage3_epochs} ep end to end, lr {args.lr}, tag-only photos {args.tag_ratio}× per labelled photo, "
        f"gate {args.gate_mode}",
        "host": f"{torch.get_num_threads()} CPU threads",
    }
    off, pixels, presence = dict(decode=False), dict(decode=True, decode_from="pixels"), dict(decode_from="presence")
    rows = [{"name": "plain (stage 1)", "metrics": evaluate(args.plain, data, **off)}]
    rows.append({"name": "plain + exclusivity decoding (pixels)", "metrics": evaluate(args.plain, data, **pixels)})
    if not args.no_control:
        name = f"plain + {args.stage3_epochs} ep (control)"
        control, seconds = fit(
            "control", args.work, data, model, args.stage3_epochs, args.reuse, init_from=str(args.plain)
        )
        meta["control wall time"] = f"{seconds / 60:.1f} min"
        rows.append({"name": name, "metrics": evaluate(control, data, **off)})
        rows.append({"name": f"{name} + decoding (pixels)", "metrics": evaluate(control, data, **pixels)})
    outfit = dict(outfit="gate", gate_mode=args.gate_mode, tag_ratio=args.tag_ratio)
    s2_args = dict(trainable="outfit", init_from=str(args.plain), **outfit)
    stage2, s2 = fit("stage2", args.work, data, model, args.stage2_epochs, args.reuse, **s2_args)
    stage3, s3 = fit("stage3", args.work, data, model, args.stage3_epochs, args.reuse, init_from=str(stage2), **outfit)
    meta["outfit wall time"] = f"{(s2 + s3) / 60:.1f} min"
    rows.append({"name": "+ outfit gate", "metrics": evaluate(stage3, data, **off)})
    rows.append({"name": "+ outfit gate + decoding (presence)", "metrics": evaluate(stage3, data, **presence)})
    rows.append({"name": "+ outfit gate + decoding (pixels)", "metrics": evaluate(stage3, data, **pixels)})

    previous = args.results / "outfit.json"
    if args.reuse and previous.is_file():  # stages reused: keep the wall times measured when they were trained
        for key, value in json.loads(previous.read_text())["meta"].items():
            if "wall time" in key and meta.get(key, "nan").startswith("nan"):
                meta[key] = value
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "outfit.json").write_text(json.dumps({"rows": rows, "meta": meta}, indent=2))
    table = markdown(rows, meta)
    (args.results / "outfit.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
