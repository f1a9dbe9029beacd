"""Predict throughput: ``parsing-predict`` over CCP validation photos (their original size) with each CRF.

Times the whole command as a user runs it — decoding, network, CRF, writing masks/overlays/summary — after one
warm-up photo, and writes ``bench/results/predict.json`` and ``bench/results/predict.md``.

    python bench/predict.py                       # 40 photos without CRF and with the fast CRF, 10 with dense
    python bench/predict.py --photos 90 --dense-photos 90 --device cuda
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from parsing.datamodule import ParsingDataModule
from parsing.predict import DEFAULT_CHECKPOINT, main as predict

ROOT = Path(__file__).resolve().parents[1]


def run(args: argparse.Namespace) -> dict:
    data = ParsingDataModule(root=args.data_root)
    _, val = data.split(data.items())
    photos = [str(photo) for photo, _ in val]
    rows = []
    for crf, count in (("none", args.photos), ("fast", args.photos), ("dense", args.dense_photos)):
        if count <= 0:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            common = ["--checkpoint", str(args.checkpoint), "--crf", crf, "--batch-size", str(args.batch_size)]
            common += ["--workers", str(args.workers), "--device", args.device, "--no-progress"]
            predict([photos[0], "-o", os.path.join(tmp, "warm-up"), *common])
            start = time.perf_counter()
            code = predict([*photos[1 : count + 1], "-o", os.path.join(tmp, "out"), *common])
            seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"parsing-predict failed with crf={crf}")
        rows.append(
            {"crf": crf, "photos": count, "seconds": round(seconds, 2), "photos_per_s": round(count / seconds, 3)}
        )
        print(rows[-1], flush=True)
    meta = {
        "checkpoint": str(args.checkpoint),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "torch": torch.__version__,
    }
    if args.device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    return {"meta": meta, "rows": rows}


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Predict throughput — `parsing-predict` on CCP validation photos (original size, ~550×825)",
        "",
        f"Checkpoint `{meta['checkpoint']}`, device {meta['device']} ({meta.get('gpu', meta['cpu'])}, "
        f"{meta['cpu_count']} cores, {meta['torch_threads']} torch threads), batch {meta['batch_size']}, "
        f"{meta['workers']} loader workers; whole command: read, network, decoding, CRF, masks + overlays + summary.",
        "",
        "| CRF | photos | seconds | photos/s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['crf']} | {r['photos']} | {r['seconds']:.1f} | {r['photos_per_s']:.2f} |" for r in result["rows"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--dense-photos", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predict.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "predict.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
