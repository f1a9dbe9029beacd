"""Predict throughput: ``parsing-predict`` over CCP validation photos (their original size), per option set.

Times the whole command as a user runs it — decoding, network, CRF, writing masks/overlays/summary — after one
warm-up photo, for each variant: no CRF, the default (fast CRF), flip TTA, a merge, tags (each photo's garments,
from its mask), pieces and colours (``--describe``), cut-outs, the dense CRF, and the photos' 2× centre crops
(close-ups, which the default widens: a second network pass each) with and without widening; each against one
eager batch-1 torch forward pass per photo measured in the same run (issue 28's yardstick). With both ``torch``
and ``onnxruntime`` run, the share of mask pixels on which the two backends agree. Writes
``bench/results/predict.json`` and ``bench/results/predict.md`` (``--name``: another stem).

    python bench/predict.py                       # 40 photos per variant, 10 with the dense CRF
    python bench/predict.py --photos 90 --dense-photos 90 --device cuda
    python bench/predict.py --variants default tta-flip
    python bench/predict.py --variants --megapixels 1 4 16 80   # peak memory and time against photo size only

``--megapixels``: one CCP photo enlarged to each size (JPEG), parsed alone by a ``parsing-predict`` process with
the default settings; peak resident memory is that of the process and its loader workers together (the sum of
their proportional set sizes, sampled every 20 ms).
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, cpu_model, shown, write_results
from robustness import zoom_in
from stages import forward_seconds
from parsing.tuning import keep_freed_memory
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import torch
from PIL import Image

from parsing.data.datamodule import ParsingDataModule
from parsing.data.datasets import read_raw_mask
from parsing.labels import CCP_LABELS, NON_GARMENTS
from parsing.commands.predict import main as predict
from parsing.inference.parser import Parser
from parsing.model import TorchBackend
from parsing.model.checkpoint import SHIPPED as DEFAULT_CHECKPOINT

VARIANTS: dict[str, list[str]] = {  # parsing-predict options; "{tags}" = a tags file of each photo's garments
    "no CRF": ["--crf", "none"],
    "default": [],
    "fp32": ["--precision", "fp32"],
    "torch": ["--backend", "torch"],
    "onnxruntime": ["--backend", "onnxruntime"],
    "openvino fp32": ["--backend", "openvino", "--precision", "fp32"],
    "openvino mixed": ["--backend", "openvino", "--precision", "mixed"],
    "openvino bf16": ["--backend", "openvino", "--precision", "bf16"],
    "openvino int8": ["--backend", "openvino", "--precision", "int8"],
    "no CRF, torch": ["--crf", "none", "--backend", "torch"],
    "tta-flip": ["--tta", "flip"],
    "merge": ["--merge", "ccp-coarse"],
    "tags": ["--tags", "{tags}"],
    "describe": ["--describe"],
    "cutouts": ["--cutouts", "--describe"],
    "dense CRF": ["--crf", "dense"],
    "close-ups": [],  # the photos' 2x centre crops: widened (a second network pass each)
    "close-ups, --widen 0": ["--widen", "0"],
}
CLOSE_UPS = ("close-ups", "close-ups, --widen 0")
REFERENCE = "fp32"  # the masks of the others compared with fp32's (onnxruntime fp32 where it is installed)
COMPARED = ("default", "torch", "onnxruntime", "openvino fp32", "openvino mixed", "openvino bf16", "openvino int8")


def write_tags(val: list, path: str) -> None:
    """A ``--tags`` file with each validation photo's garments, read from its mask."""
    with open(path, "w") as fh:
        for photo, mask in val:
            ids = sorted(set(read_raw_mask(mask).flatten().tolist()))
            garments = [CCP_LABELS[i] for i in ids if i < len(CCP_LABELS) and CCP_LABELS[i] not in NON_GARMENTS]
            fh.write(json.dumps({"file": photo.name, "garments": garments}) + "\n")


def peak_memory(command: list[str]) -> tuple[int, float, float]:
    """Run ``command``; its exit status, seconds, and peak memory (GiB) of it and its children: the sum of their
    proportional set sizes (PSS: pages shared between the processes, e.g. torch's libraries, count once)."""
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    return process.returncode, time.perf_counter() - start, peak / 2**30


def memory_rows(args: argparse.Namespace, photo: Path) -> list[dict]:
    """Peak memory and time of parsing-predict on one photo enlarged to each size in ``args.megapixels``."""
    image = cv2.imread(str(photo))
    rows = []
    for mp in args.megapixels:
        h, w = image.shape[:2]
        scale = (mp * 1e6 / (h * w)) ** 0.5
        size = (round(w * scale), round(h * scale))
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / f"photo-{mp}mp.jpg"
            cv2.imwrite(
                str(big), cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), [cv2.IMWRITE_JPEG_QUALITY, 90]
            )
            command = [
                sys.executable,
                "-m",
                "parsing.commands.predict",
                str(big),
                "-o",
                str(Path(tmp) / "out"),
                "--no-progress",
            ]
            command += ["--checkpoint", str(args.checkpoint), "--device", args.device]
            code, seconds, peak = peak_memory(command)
        if code != 0:
            raise SystemExit(f"parsing-predict failed on a {mp}-megapixel photo")
        rows.append({"megapixels": mp, "size": list(size), "seconds": round(seconds, 2), "peak_gib": round(peak, 2)})
        print(rows[-1], flush=True)
    return rows


def write_close_ups(photos: list[str], folder: Path) -> list[str]:
    """Each photo's centre (h/2, w/2) window (``robustness.zoom_in``) as a JPEG in ``folder``: the person cut at the
    head and the knees."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for photo in photos:
        image = cv2.imread(photo)
        path = folder / Path(photo).name
        crop, _ = zoom_in(image, image[..., 0], None)  # the robustness suite's 2x zoom-in
        cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
        out.append(str(path))
    return out


def agreement(a: Path, b: Path) -> dict:
    """Pixels on which two output folders' masks agree: the share over all photos and the lowest photo's."""
    same = total = photos = 0
    lowest = 1.0
    for mask in sorted((a / "masks").rglob("*.png")):
        photos += 1
        x, y = np.asarray(Image.open(mask)), np.asarray(Image.open(b / "masks" / mask.relative_to(a / "masks")))
        same, total = same + int((x == y).sum()), total + x.size
        lowest = min(lowest, float((x == y).mean()))
    return {"pixels": round(same / total, 6), "lowest_photo": round(lowest, 6), "photos": photos}


def forward_yardstick(args: argparse.Namespace, photos: list[str]) -> float:
    """Seconds per photo of one eager batch-1 torch forward pass of the checkpoint's network on ``photos``."""
    parser = Parser.load(args.checkpoint, device=args.device, backend="torch")
    return forward_seconds(TorchBackend(parser.model), [parser.preprocess(photo).x for photo in photos])


def run(args: argparse.Namespace) -> dict:
    data = ParsingDataModule(root=args.data_root)
    _, val = data.split(data.items())
    whole = [str(photo) for photo, _ in val]
    rows = []
    kept = tempfile.TemporaryDirectory()  # the two backends' masks, compared at the end
    plain = forward_yardstick(args, whole[: args.forward_photos])  # with glibc's default allocator settings
    keep_freed_memory()  # the commands' settings (parsing.tuning): the yardstick is measured under them too
    before = forward_yardstick(args, whole[: args.forward_photos])  # and again after: the machine drifts
    for name in args.variants:
        count = args.dense_photos if name == "dense CRF" else args.photos
        if count <= 0:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(kept.name, name) if name in (REFERENCE, *COMPARED) else os.path.join(tmp, "out")
            photos = write_close_ups(whole[:count], Path(tmp) / "close-ups") if name in CLOSE_UPS else whole
            tags = os.path.join(tmp, "tags.jsonl")
            write_tags(val, tags)
            options = [o.replace("{tags}", tags) for o in VARIANTS[name]]
            common = ["--checkpoint", str(args.checkpoint), "--batch-size", str(args.batch_size), *options]
            common += ["--workers", str(args.workers), "--device", args.device, "--no-progress"]
            predict([photos[0], "-o", os.path.join(tmp, "warm-up"), *common])
            start = time.perf_counter()
            code = predict([*photos[:count], "-o", out, *common])
            seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"parsing-predict failed with {name}: {VARIANTS[name]}")
        options = " ".join(VARIANTS[name]).replace("{tags}", "TAGS.jsonl") or "(defaults: --crf fast)"
        rows.append(
            {
                "variant": name,
                "options": options,
                "photos": count,
                "seconds": round(seconds, 2),
                "photos_per_s": round(count / seconds, 3),
            }
        )
        print(rows[-1], flush=True)
    after = forward_yardstick(args, whole[: args.forward_photos])
    forward = (before + after) / 2
    for row in rows:
        row["x_forward"] = round(row["seconds"] / row["photos"] / forward, 2)
    names = [row["variant"] for row in rows]
    base = REFERENCE if REFERENCE in names else "onnxruntime"  # both fp32 on onnxruntime, where it is installed
    pairs = [n for n in COMPARED if n != base and {n, base} <= set(names)]
    same = {n: agreement(Path(kept.name, base), Path(kept.name, n)) for n in pairs}
    same = {n: {**v, "against": base} for n, v in same.items()}
    kept.cleanup()
    steady = steady_rows(args, whole, forward) if args.steady else []
    meta = {
        "checkpoint": shown(args.checkpoint),
        "device": args.device,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "torch": torch.__version__,
        "forward_s": round(forward, 4),
        "forward_s_before_after": [round(before, 4), round(after, 4)],
        "forward_s_default_allocator": round(plain, 4),
        "forward_photos": args.forward_photos,
        "default_backend": repr(Parser.load(args.checkpoint, device=args.device).backend),
    }
    if args.device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    memory = memory_rows(args, val[0][0]) if args.megapixels else []
    return {"meta": meta, "rows": rows, "memory": memory, "backend_agreement": same, "steady": steady}


def command_seconds(args: argparse.Namespace, photos: list[str], options: list[str]) -> float:
    """Wall seconds of one ``parsing-predict`` process (start-up included) on ``photos``."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "parsing.commands.predict", *photos, "-o", tmp, "--no-progress"]
        command += ["--checkpoint", str(args.checkpoint), "--device", args.device, *options]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def steady_rows(args: argparse.Namespace, photos: list[str], forward: float) -> list[dict]:
    """The steady state of whole commands: (an N-photo run − a 1-photo run) / (N − 1), for ``--steady-variants``
    (the default and fp32), each run twice (the lower of the two taken)."""
    n = min(args.steady, len(photos))
    rows = []
    for name in args.steady_variants:
        options = VARIANTS[name]
        many = min(command_seconds(args, photos[:n], options) for _ in range(2))
        one = min(command_seconds(args, photos[:1], options) for _ in range(2))
        per = (many - one) / (n - 1)
        rows.append({"variant": name, "photos": n, "many_s": round(many, 2), "one_s": round(one, 2),
                     "per_photo_s": round(per, 4), "x_forward": round(per / forward, 2)})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def spread(meta: dict) -> str:
    """ ", the mean of 0.190 before and 0.200 s after the variants" when both were measured."""
    if "forward_s_before_after" not in meta:
        return ""
    before, after = meta["forward_s_before_after"]
    return f", the mean of {before:.3f} s before and {after:.3f} s after the variants"


def allocator(meta: dict) -> str:
    """How the yardstick was measured: under the commands' allocator settings (``parsing.tuning``), since 0.7.1."""
    if "forward_s_default_allocator" not in meta:
        return ""
    return (
        "; with the allocator settings the commands use (`parsing.tuning`: glibc keeps freed memory), which make "
        f"the eager pass faster too — with glibc's defaults it took {meta['forward_s_default_allocator']:.3f} s"
    )


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Predict throughput — `parsing-predict` on CCP validation photos (original size, ~550×825)",
        "",
        f"Checkpoint `{meta['checkpoint']}`, device {meta['device']} ({meta.get('gpu', meta['cpu'])}, "
        f"{meta['cpu_count']} cores, {meta['torch_threads']} torch threads), batch {meta['batch_size']}, "
        f"{meta['workers']} loader workers; whole command: read, network, decoding, CRF, masks + overlays + summary. "
        f"The default's network here: `{meta.get('default_backend', 'onnxruntime fp32')}`.",
        "",
        f"× forward: seconds per photo over one eager batch-1 torch forward pass of the network "
        f"({meta.get('forward_s', float('nan')):.3f} s per photo on {meta.get('forward_photos', '?')} photos, "
        f"measured in the same run{spread(meta)}){allocator(meta)}.",
        "",
        "| variant | options | photos | seconds | photos/s | × forward |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | `{r['options']}` | {r['photos']} | {r['seconds']:.1f} | {r['photos_per_s']:.2f} | "
        f"{r.get('x_forward', '—')} |"
        for r in result["rows"]
    ]
    for name, same in (result.get("backend_agreement") or {}).items():
        lines += [
            "",
            f"{name} against {same.get('against', 'onnxruntime')} (fp32): the masks agree on "
            f"{100 * same['pixels']:.3f} % of the pixels of the {same['photos']} photos (lowest photo "
            f"{100 * same['lowest_photo']:.3f} %).",
        ]
    if result.get("steady"):
        lines += [
            "",
            "Steady state of the whole command (separate `parsing-predict` processes, start-up included in each): "
            "(an N-photo run − a 1-photo run) / (N − 1), the lower of two runs each:",
            "",
            "| variant | N | N-photo run s | 1-photo run s | s / photo | × forward |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['variant']} | {r['photos']} | {r['many_s']:.1f} | {r['one_s']:.1f} | {r['per_photo_s']:.3f} | "
            f"{r['x_forward']} |"
            for r in result["steady"]
        ]
    if any(r["variant"] in CLOSE_UPS for r in result["rows"]):
        lines += [
            "",
            "close-ups: each photo's centre (h/2, w/2) window (~275×410), a person cut at the head and the knees; the "
            "default parses each twice (`--widen`: once more on a 1.5× canvas).",
        ]
    if result.get("memory"):
        lines += [
            "",
            "Photo size against peak memory (the `parsing-predict` process and its 2 loader workers together, sum of "
            "their proportional set sizes) and "
            "time, one photo per run, default settings, including start-up (~5 s: imports, loading the model):",
            "",
            "| megapixels | size (W×H) | peak memory | seconds |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['megapixels']} | {r['size'][0]}×{r['size'][1]} | {r['peak_gib']:.2f} GiB | {r['seconds']:.1f} |"
            for r in result["memory"]
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--dense-photos", type=int, default=10)
    parser.add_argument("--forward-photos", type=int, default=10, help="photos for the forward-pass yardstick")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--megapixels", type=float, nargs="*", default=[1, 4, 16, 80])
    parser.add_argument("--steady", type=int, default=0, help="N: the steady state from N-photo and 1-photo runs")
    parser.add_argument("--steady-variants", nargs="+", default=["default", "fp32"], choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="predict", help="file stem of the results")
    args = parser.parse_args()
    write_results(args.out, args.name, run(args), markdown)


if __name__ == "__main__":
    main()
