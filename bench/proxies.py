"""Proxy training runs (encoders, architectures, context blocks, shares of the training photos) compared: validation
curves and cost, from the run folders.

Each run is a finished ``python -m parsing fit`` whose CSV logger wrote ``csv/version_*/metrics.csv`` and whose
checkpoints are in ``checkpoints/``; its wall time is from the config Lightning saved at the start to the newest
checkpoint. Validation here is Lightning's own (network at training size + exclusivity decoding, no CRF).

    python bench/proxies.py --runs runs/lite0 runs/lite2 --names lite0 lite2 --name encoders
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, write_results
import argparse
import csv
from pathlib import Path

import yaml


def read_run(folder: Path) -> dict:
    """One run folder → its network, size, epochs, steps, wall time and validation curve."""
    logs = sorted(folder.glob("csv/version_*/metrics.csv"))
    if not logs:
        raise FileNotFoundError(f"{folder}: no csv/version_*/metrics.csv (a run with the CSV logger)")
    log = logs[-1]
    config = yaml.safe_load((log.parent / "config.yaml").read_text())
    checkpoints = sorted((folder / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not checkpoints:
        raise FileNotFoundError(f"{folder / 'checkpoints'}: no checkpoint: the run has not finished an epoch")
    seconds = checkpoints[-1].stat().st_mtime - (log.parent / "config.yaml").stat().st_mtime
    curve = [
        {
            "epoch": int(row["epoch"]),
            "step": int(row["step"]) + 1,
            **{key: round(100 * float(row[f"val/{key}"]), 2) for key in ("pixel_acc", "fg_acc", "miou")},
        }
        for row in csv.DictReader(log.open())
        if row.get("val/fg_acc")
    ]
    model = config["model"]
    return {
        "arch": model.get("arch", "fpn"),
        "encoder": model["encoder"],
        "context": model.get("context", "none"),
        "size": config["data"]["size"],
        "train_fraction": config["data"].get("train_fraction", 1.0),
        "max_epochs": config["trainer"]["max_epochs"],
        "steps": curve[-1]["step"] if curve else 0,
        "minutes": round(seconds / 60, 1),
        "s_per_step": round(seconds / max(curve[-1]["step"], 1), 2) if curve else None,
        "curve": curve,
    }


def network(run: dict) -> str:
    """``fpn, timm-tf_efficientnet_lite0`` (+ ``, context attention`` when the run has one)."""
    context = "" if run["context"] == "none" else f", context {run['context']}"
    return f"{run['arch']}, {run['encoder']}{context}"


def markdown(result: dict) -> str:
    lines = [
        "# Proxy training runs — validation (90 CCP photos, network size, no CRF)",
        "",
        f"{result['meta']['cpu']}, torch {result['meta']['torch']}. Wall time: from the run's saved config to its "
        "newest checkpoint (validation included).",
        "",
        "| run | network | input | train share | epochs | steps | minutes | s/step | pixel acc | fg acc | mIoU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        last = run["curve"][-1]
        lines.append(
            f"| {run['name']} | {network(run)} | {run['size'][0]}×{run['size'][1]} | "
            f"{run['train_fraction']:g} | {last['epoch'] + 1} | "
            f"{run['steps']} | {run['minutes']} | {run['s_per_step']} | {last['pixel_acc']:.1f} | "
            f"{last['fg_acc']:.1f} | {last['miou']:.1f} |"
        )
    lines += ["", "Per epoch (fg acc / mIoU):", ""]
    for run in result["runs"]:
        points = ", ".join(f"{p['epoch'] + 1}: {p['fg_acc']:.1f} / {p['miou']:.1f}" for p in run["curve"])
        lines.append(f"- **{run['name']}**: {points}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders (default_root_dir)")
    parser.add_argument("--names", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="proxies", help="results file name (bench/results/NAME.{json,md})")
    args = parser.parse_args()
    names = args.names or [run.name for run in args.runs]
    if len(names) != len(args.runs):
        parser.error(f"{len(args.runs)} runs but {len(names)} names")
    runs = [{"name": name, **read_run(run)} for name, run in zip(names, args.runs, strict=True)]
    write_results(args.out, args.name, {"meta": machine(), "runs": runs}, markdown)


if __name__ == "__main__":
    main()
