"""Robustness benchmark: the CCP validation photos re-framed as users' photos are framed, each model scored on each.

Every validation photo and its mask go through fixed, seeded transforms (``FRAMINGS``): the original; its upper
and lower half; a 2× zoom-in centre crop; a 0.5× zoom-out onto a plain canvas; the person composited on a plain
light background; a small photo (longest side 256 px). Each is parsed at its own resolution by ``Parser``
(what ``parsing-predict`` runs per photo: fit into the model's box, network, decoding, CRF) and scored with the
package's metrics on the 59 labels and on ``ccp-coarse``. Writes ``bench/results/robustness.{json,md}``.

    python bench/robustness.py                                              # the shipped model
    python bench/robustness.py --checkpoints old.ckpt new.ckpt --names old new
    python bench/robustness.py --limit 5 --framings original upper-half     # a quick look
    python bench/robustness.py --checkpoints new.ckpt --names new --previous old.json  # add to an earlier run
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import (
    checkpoint_names,
    load_parser,
    machine,
    model_arguments,
    previous_models,
    shown,
    validation_photos,
    write_results,
)
import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from parsing.data.datasets import read_raw_mask
from parsing.data.io import read_image
from parsing.labels import LabelSet
from parsing.training.metrics import confusion_matrix, scores
from parsing.outputs.overlay import overlay
from parsing.inference.options import MIN_SHARE, REFOCUS, WIDEN

NULL = 0
Pair = tuple[np.ndarray, np.ndarray]  # photo (h, w, 3) uint8, mask (h, w) CCP ids


def _light(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(215, 250, 3).round()


def upper_half(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    h = image.shape[0] // 2
    return image[:h], mask[:h]


def lower_half(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    h = image.shape[0] // 2
    return image[h:], mask[h:]


def zoom_in(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    """The centre (h/2, w/2) window: the person at twice the size, cut on every side."""
    h, w = mask.shape
    y, x = h // 4, w // 4
    return image[y : y + h // 2, x : x + w // 2], mask[y : y + h // 2, x : x + w // 2]


def zoom_out(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    """The photo at half size in the middle of a plain light canvas of the original size (canvas = null)."""
    h, w = mask.shape
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    canvas = np.empty_like(image)
    canvas[:] = _light(rng)
    canvas_mask = np.full_like(mask, NULL)
    y, x = (h - h // 2) // 2, (w - w // 2) // 2
    canvas[y : y + h // 2, x : x + w // 2] = small
    canvas_mask[y : y + h // 2, x : x + w // 2] = small_mask
    return canvas, canvas_mask


def studio(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    """The person on a plain light background (the null region replaced, edge softened by 1 px)."""
    alpha = cv2.GaussianBlur((mask != NULL).astype(np.float32), (0, 0), 1.0)[..., None]
    out = alpha * image.astype(np.float32) + (1 - alpha) * _light(rng).astype(np.float32)
    return out.round().astype(np.uint8), mask


def small(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    """Longest side 256 px (a thumbnail)."""
    h, w = mask.shape
    f = 256 / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)


def waist_up_studio(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    """A shop's waist-up shot: the person on a plain light background, then the upper half."""
    return upper_half(*studio(image, mask, rng), rng)


def close_up_studio(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
    """A shop's close-up: the person on a plain light background, then the centre (h/2, w/2) window."""
    return zoom_in(*studio(image, mask, rng), rng)


FRAMINGS: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], Pair]] = {
    "original": lambda image, mask, rng: (image, mask),
    "upper-half": upper_half,
    "lower-half": lower_half,
    "zoom-in 2x": zoom_in,
    "zoom-out 0.5x": zoom_out,
    "studio background": studio,
    "small (256 px)": small,
    "waist-up studio": waist_up_studio,  # not in the default run: --framings original "waist-up studio" …
    "close-up studio": close_up_studio,
}
DEFAULT_FRAMINGS = list(FRAMINGS)[:7]  # the 7 of the issue's suite


def run_model(
    checkpoint: Path,
    photos: list[tuple[Path, Path]],
    framings: list[str],
    crf: str,
    seed: int,
    tta: str = "none",
    refocus: float = REFOCUS,
    input_size: list[int] | None = None,
    widen: float = WIDEN,
    min_share: float = MIN_SHARE,
    network: dict | None = None,
) -> dict:
    options = dict(crf=crf, tta=tta, refocus=refocus, widen=widen, min_share=min_share, **(network or {}))
    parser = load_parser(checkpoint, input_size, **options)
    model, size = parser.spec, parser.size
    k = model.num_classes
    coarse = LabelSet.ccp("ccp-coarse")
    if k != len(coarse.source):
        raise ValueError(f"{checkpoint}: {k} labels; this benchmark scores CCP-59 models")
    lut = torch.from_numpy(coarse.lut.astype(np.int64))
    fine = {name: confusion_matrix(k) for name in framings}
    grouped = {name: confusion_matrix(len(coarse)) for name in framings}
    seconds = dict.fromkeys(framings, 0.0)
    refocused = dict.fromkeys(framings, 0)
    widened = dict.fromkeys(framings, 0)
    for n, (photo, mask_path) in enumerate(photos):
        image, mask = read_image(photo), read_raw_mask(mask_path)
        for name in framings:
            rng = np.random.default_rng([seed, n])  # the same transformed photo for every model
            im, ms = FRAMINGS[name](image, mask, rng)
            im, ms = np.ascontiguousarray(im), torch.from_numpy(np.ascontiguousarray(ms)).long()
            start = time.perf_counter()
            parse = parser(im)
            refocused[name] += parse.box is not None
            widened[name] += parse.widened
            labels = torch.from_numpy(parse.labels).long()
            seconds[name] += time.perf_counter() - start
            fine[name].update(labels.flatten(), ms.flatten())
            grouped[name].update(lut[labels].flatten(), lut[ms].flatten())
        print(f"{checkpoint.name} {n + 1}/{len(photos)} {photo.name}", flush=True)
    rows = {}
    for name in framings:
        f, g = scores(fine[name].compute()), scores(grouped[name].compute())
        rows[name] = {
            **{key: round(100.0 * float(f[key]), 2) for key in ("pixel_acc", "fg_acc", "miou", "f1")},
            "coarse_fg_acc": round(100.0 * float(g["fg_acc"]), 2),
            "coarse_miou": round(100.0 * float(g["miou"]), 2),
            "s_per_photo": round(seconds[name] / len(photos), 3),
            "refocused": refocused[name],
            "widened": widened[name],
        }
    network = repr(parser.backend)  # e.g. OpenVinoBackend(precision=int8): what auto picked on this CPU
    return {"input_size": list(size), "network": network, "widen": widen, "min_share": min_share, "rows": rows}


def picture(
    checkpoints: list[Path], names: list[str], photo: Path, mask: Path, framings: list[str], seed: int
) -> Image.Image:
    """A grid: one row per framing of ``photo``, one overlay per model (what ``parsing-predict`` writes)."""
    image, truth = read_image(photo), read_raw_mask(mask)
    tiles: list[list[Image.Image]] = [[] for _ in framings]
    for checkpoint in checkpoints:
        parser = load_parser(checkpoint)
        model = parser.spec
        for row, name in enumerate(framings):
            im, _ = FRAMINGS[name](image, truth, np.random.default_rng([seed, 0]))
            im = np.ascontiguousarray(im)
            labels = parser(im).labels
            tiles[row].append(overlay(im, labels, model.palette, model.class_names))
    height = 300
    rows = [[t.resize((max(1, round(t.width * height / t.height)), height)) for t in row] for row in tiles]
    width = max(sum(t.width for t in row) + 10 * len(row) for row in rows)
    canvas = Image.new("RGB", (width, (height + 22) * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        x = 0
        for c, tile in enumerate(row):
            canvas.paste(tile, (x, r * (height + 22) + 20))
            draw.text((x + 4, r * (height + 22) + 4), f"{framings[r]}: {names[c]}", fill="black")
            x += tile.width + 10
    return canvas


def markdown(result: dict) -> str:
    meta, models = result["meta"], result["models"]
    lines = [
        f"# Robustness benchmark — {meta['photos']} CCP validation photos under {len(meta['framings'])} framings",
        "",
        f"Each photo parsed at its transformed resolution by `Parser` (the `parsing-predict` path), CRF "
        f"`{meta['crf']}`, TTA `{meta.get('tta', 'none')}`, refocus {meta.get('refocus', 0) or 'off'}; "
        "scores over all pixels of all photos, 59 labels and "
        "`ccp-coarse` (17 groups). "
        f"Δ = fg acc (coarse mIoU) minus the same model's on the original photos. {meta['cpu']}, torch "
        f"{meta['torch']}.",
        "",
    ]
    for model in models:
        size = "×".join(map(str, model["input_size"])) if "input_size" in model else "its own"
        widen = f"close-ups widened {model['widen']}×" if model.get("widen", 0) > 1 else "no widening"
        network = f", network `{model['network']}`" if "network" in model else ""
        lines.append(f"- **{model['name']}**: `{model['checkpoint']}`, network input {size}{network}, {widen}")
    lines += [
        "",
        "| framing | model | pixel acc | fg acc | Δ fg | mIoU | coarse fg acc | coarse mIoU | Δ coarse | s/photo |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for framing in meta["framings"]:
        for model in models:
            r, base = model["rows"][framing], model["rows"].get("original")
            dfg = f"{r['fg_acc'] - base['fg_acc']:+.1f}" if base else "–"
            dco = f"{r['coarse_miou'] - base['coarse_miou']:+.1f}" if base else "–"
            lines.append(
                f"| {framing} | {model['name']} | {r['pixel_acc']:.1f} | {r['fg_acc']:.1f} | {dfg} | {r['miou']:.1f} "
                f"| {r['coarse_fg_acc']:.1f} | {r['coarse_miou']:.1f} | {dco} | {r['s_per_photo']:.2f} |"
            )
    lines += [
        "",
        "Framings (photo and mask alike): upper/lower half = rows above/below the middle; zoom-in = the centre "
        "(h/2, w/2) window; zoom-out = the photo at half size on a plain light canvas of the original size (canvas "
        "= background); studio = background pixels replaced by a plain light colour (1-px soft edge); small = "
        "longest side 256 px; waist-up / close-up studio = studio, then the upper half / the zoom-in window. Light "
        "colours are seeded per photo, equal for every model.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model_arguments(parser, "robustness")
    parser.add_argument("--framings", nargs="+", default=DEFAULT_FRAMINGS, choices=list(FRAMINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tta", choices=("none", "flip"), default="none", help="test-time augmentation")
    parser.add_argument("--refocus", type=float, default=REFOCUS, help="the Parser's refocus gain (0 = off)")
    parser.add_argument("--widen", type=float, default=WIDEN, help="the Parser's close-up canvas (0 = off)")
    parser.add_argument("--min-share", type=float, default=MIN_SHARE, help="the Parser's speck threshold (0 = off)")
    parser.add_argument("--previous", type=Path, default=None, help="an earlier result JSON whose models to keep")
    parser.add_argument("--picture", type=Path, default=None, help="also draw overlays of one photo (--photo) here")
    parser.add_argument("--photo", default="0009", help="the validation photo of --picture")
    parser.add_argument("--picture-framings", nargs="+", default=["upper-half", "zoom-in 2x", "studio background"])
    parser.add_argument("--picture-only", action="store_true", help="draw --picture and stop")
    args = parser.parse_args()
    names = checkpoint_names(parser, args)
    torch.set_num_threads(args.threads)
    photos = validation_photos(args.data_root, args.limit)
    if args.picture is not None:
        photo, mask = next((p, m) for p, m in validation_photos(args.data_root) if p.stem == args.photo)
        grid = picture(args.checkpoints, names, photo, mask, args.picture_framings, args.seed)
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.picture, quality=88)
        print(f"→ {args.picture}")
        if args.picture_only:
            return
    expected = {
        "photos": len(photos),
        "seed": args.seed,
        "framings": args.framings,
        "crf": args.crf,
        "tta": args.tta,
        "refocus": args.refocus,
    }
    models = previous_models(parser, args.previous, expected, names)
    for name, checkpoint in zip(names, args.checkpoints, strict=True):
        scored = run_model(
            checkpoint, photos, args.framings, args.crf, args.seed, args.tta, args.refocus, args.input_size, args.widen,
            args.min_share, {"backend": args.backend, "precision": args.precision},
        )  # fmt: skip
        models.append({"name": name, "checkpoint": shown(checkpoint), **scored})
    meta = {
        "photos": len(photos),
        "split": "CCP validation split (seed 0, 10 %)",
        "framings": args.framings,
        "crf": args.crf,
        "tta": args.tta,
        "refocus": args.refocus,
        "seed": args.seed,
        **machine(),
    }
    write_results(args.out, args.name, {"meta": meta, "models": models}, markdown)


if __name__ == "__main__":
    main()
