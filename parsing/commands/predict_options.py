"""``parsing-predict``'s command-line options (``parsing-predict --help``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from parsing.commands.help import ArgumentParser
from parsing.commands.inputs import add_input_size, shard_spec
from parsing.inference.options import CRFS, MAX_PIXELS, MIN_SHARE, REFOCUS, TTAS, WIDEN, ParseOptions
from parsing.model.checkpoint import SHIPPED as DEFAULT_CHECKPOINT
from parsing.model.load import BACKENDS, PRECISIONS


def parse_options(args: argparse.Namespace) -> ParseOptions:
    """The ``ParseOptions`` the command line gives (a ValueError names a bad one)."""
    return ParseOptions(
        crf=args.crf, tta=args.tta, input_size=args.input_size, max_pixels=args.max_pixels, refocus=args.refocus,
        widen=args.widen, merge=args.merge, crf_iterations=args.crf_iterations, probs=args.probs,
        min_share=args.min_share,
    )  # fmt: skip


def parser_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Parser.load``'s keyword arguments from the command line, but the checkpoint and the device."""
    return {"backend": args.backend, "precision": args.precision, "options": parse_options(args)}


def save_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Parse.save`` options the command line gives."""
    return dict(probs=args.probs, cutouts=args.cutouts, describe=args.describe, feather=args.feather)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="parsing-predict",
        description="Parse clothing in photos: palette PNG masks, overlays, summary.jsonl (and errors.jsonl).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained model (default: the shipped CCP model)"
    )
    parser.add_argument(
        "--crf",
        choices=CRFS,
        default="fast",
        help="CRF after the network (default fast: the torch CRF, ~0.06 s/photo on a CPU core; dense: pydensecrf)",
    )
    parser.add_argument(
        "--crf-iterations", type=int, default=None, help="mean-field iterations (default: 10 dense, 3 fast)"
    )
    parser.add_argument(
        "--tta",
        choices=TTAS,
        default="none",
        help="test-time augmentation: flip = mean of the photo's and its mirror image's logits (2x network time)",
    )
    parser.add_argument(
        "--garments", default=None, help="comma-separated garments every photo may hold (e.g. dress,bag,shoes)"
    )
    parser.add_argument(
        "--tags", type=Path, default=None, help='JSONL, one line per photo: {"file": ..., "garments": [...]}'
    )
    parser.add_argument(
        "--merge", default=None, help="write merged labels: a preset (ccp-coarse) or a YAML file {group: [labels]}"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help="larger photos are decoded and parsed at this many pixels, their masks upsampled to full size "
        "(bounds memory; overlays and --probs stay at the working size)",
    )
    parser.add_argument(
        "--refocus",
        type=float,
        default=REFOCUS,
        metavar="GAIN",
        help=f"parse a box around the person again when that enlarges them at least GAIN times (small or distant "
        f"people; default {REFOCUS}; 0 = off)",
    )
    parser.add_argument(
        "--widen",
        type=float,
        default=WIDEN,
        metavar="CANVAS",
        help=f"a close-up (the person cut by the photo's top and bottom edges) is also parsed on a canvas CANVAS "
        f"times the photo's size and the two parses averaged (default {WIDEN}; 0 = off)",
    )
    parser.add_argument(
        "--min-share",
        type=float,
        default=MIN_SHARE,
        help=f"garments covering less of the person (the non-background pixels) are removed from the mask, their "
        f"pixels relabelled by their neighbours, so that mask and outfit agree (default {MIN_SHARE}; 0 keeps all)",
    )
    add_input_size(parser, "the network's input box (portrait; turned for landscape photos); default: the checkpoint's")
    parser.add_argument(
        "--shard",
        type=shard_spec,
        default=None,
        metavar="I/N",
        help="parse only shard I of N (0-based; by a hash of each photo's output name): N array-job tasks, one folder",
    )
    parser.add_argument(
        "--ray", metavar="ADDRESS", help="parse on Ray: local (a local instance), auto, ray://HOST:PORT"
    )
    parser.add_argument("--ray-actors", type=int, default=None, help="Parser actors (each loads the model; default 1)")
    parser.add_argument("--ray-cpus-per-actor", type=float, default=None, help="default 1 (locally: leaves ½ core)")
    parser.add_argument("--ray-gpus-per-actor", type=float, default=0.0, help="GPUs per actor (e.g. 1, or 0.5)")
    parser.add_argument(
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="runs the network; auto: OpenVINO on a CPU with int8 units (VNNI, AMX), else onnxruntime (cached "
        "export); torch on a GPU",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the network's arithmetic; auto: int8 where the CPU has int8 units (AVX512-VNNI, AMX) and OpenVINO is "
        "installed, else fp32; int8: the encoder in fp32, the decoder in int8 (made on first use, cached); mixed: "
        "the decoder in bf16; fp32: fp32's masks on any CPU",
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--recursive", action="store_true", help="look into sub-folders of folder inputs")
    parser.add_argument("--overwrite", action="store_true", help="redo photos whose outputs exist")
    parser.add_argument("--probs", action="store_true", help="also write probs/<stem>.npy (float16, K×H×W; large)")
    parser.add_argument(
        "--describe",
        action="store_true",
        help="per garment in summary.jsonl: its pieces (boxes) and up to 3 named colours",
    )
    parser.add_argument(
        "--cutouts", action="store_true", help="also write cutouts/<stem>/<label>.png: RGBA garments (with pieces)"
    )
    parser.add_argument("--feather", type=float, default=0.0, help="soften cut-out edges by this many pixels")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    ray = {"--ray-actors": args.ray_actors, "--ray-cpus-per-actor": args.ray_cpus_per_actor}
    given = [flag for flag, value in ray.items() if value is not None] + ["--ray-gpus-per-actor"] * bool(
        args.ray_gpus_per_actor
    )
    if args.ray is None and given:
        parser.error(f"{', '.join(given)} without --ray: add --ray local (or auto, ray://HOST:PORT) to parse on Ray")
    args.ray_actors = args.ray_actors or 1
    return args
