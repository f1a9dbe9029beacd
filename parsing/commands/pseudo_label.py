"""``parsing pseudo-label``: tagged photos → a ``format: folder`` dataset of a teacher model's masks.

Each photo with a line in ``--tags`` (``{"file": ..., "garments": [...]}``, as for ``parsing-predict --tags``) is
parsed with only its garments (and null/skin/hair) allowed; pixels where the teacher's probability for its label
(among the allowed ones) is below ``--min-confidence`` become 255 (ignored by training). Writes
``OUT/images/<name>`` (a copy of the photo), ``OUT/masks/<stem>.png`` (palette PNG of label indices),
``OUT/data.yaml`` (the ``data:`` settings that train on it) and ``OUT/errors.jsonl`` for files that failed.
Photos already done are skipped unless ``--overwrite``. ``parsing check-data OUT --format folder --labels …``
accepts the result.

    parsing pseudo-label --checkpoint teacher.ckpt --photos shop/ --tags shop_tags.jsonl -o shop_pseudo/
    parsing pseudo-label --checkpoint teacher.ckpt --ccp ../shared/data/ccp -o runs/ccp-pseudo   # CCP's tag-only

``--ccp ROOT`` takes CCP's tag-only photos and their image-level tags (``annotations/image-level``, garments only)
in place of ``--photos`` and ``--tags``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from parsing.atomic import atomic_write
from parsing.commands.help import plain
from parsing.commands.inputs import collect_inputs, read_tags, tags_for_jobs
from parsing.data.datasets import ccp_tag_items
from parsing.data.fit import fit_photo
from parsing.data.io import DataError, read_ccp_tags, read_photo, write_mask_png
from parsing.inference.decode import parse_photo
from parsing.inference.label_view import check_garments
from parsing.inference.options import MAX_PIXELS
from parsing.inference.parser import Parser
from parsing.inference.photo import to_size
from parsing.labels import IGNORE_INDEX, LabelSet, flat_palette
from parsing.model.checkpoint import SHIPPED, CheckpointError


def pseudo_label(
    parser: Parser,
    image: np.ndarray,
    garments: list[str],
    min_confidence: float = 0.5,
    crf: str = "fast",
) -> np.ndarray:
    """One photo (H, W, 3) uint8 → its pseudo-label mask (H, W) uint8: the parse restricted to ``garments``, with
    pixels whose probability (among the allowed labels) is below ``min_confidence`` set to 255."""
    h, w = image.shape[:2]
    view = parser.view(garments)
    x = fit_photo(image, parser.size)
    with torch.inference_mode():
        logits, presence = parser.backend.infer(x[None].to(parser.backend.device))
        p = None if presence is None else presence[0]
        labels, _ = parse_photo(parser.spec, logits[0], p, (h, w), image, crf, view)
        allowed, _, _ = view.select(logits[0], None)  # (L, h', w') the allowed labels' logits
        confidence = allowed.float().softmax(0).max(0).values  # (h', w')
        confidence = F.interpolate(confidence[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    mask = labels.to(torch.uint8).cpu().numpy()
    mask[confidence.cpu().numpy() < min_confidence] = IGNORE_INDEX
    return mask


def ccp_tagged(root: Path) -> tuple[list[str], dict[str, list[str]], list[dict[str, str]]]:
    """CCP's tag-only photos, their garment tags by file name (as ``--tags`` gives them) and the unreadable ones."""
    labels = LabelSet.ccp()
    photos, tags, failed = [], {}, []
    for photo, mat in ccp_tag_items(root):
        try:
            ids = read_ccp_tags(mat, len(labels.names))
        except DataError as err:
            failed.append({"file": str(mat), "error": err.problem})
            continue
        photos.append(str(photo))
        tags[photo.name] = [labels.names[i] for i in ids if labels.garments[i]]
    return photos, tags, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="parsing pseudo-label", description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", nargs="+", help="photo files, folders or globs")
    parser.add_argument("--tags", type=Path, help='JSONL: {"file": ..., "garments": [...]} per photo')
    parser.add_argument("--ccp", type=Path, help="instead of --photos/--tags: a CCP root's tag-only photos")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the dataset folder to write")
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED, help="the teacher")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="below it a pixel is ignored (255)")
    parser.add_argument("--crf", choices=("none", "fast", "dense"), default="fast")
    parser.add_argument("--recursive", action="store_true")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if (args.ccp is None) == (args.photos is None or args.tags is None):
        parser.error("give --photos and --tags, or --ccp ROOT")
    try:
        parser_ = Parser.load(args.checkpoint, device="cpu", crf=args.crf)
        module = parser_.spec
        if args.ccp is not None:
            args.photos, tags, errors = ccp_tagged(args.ccp)
            check_garments(sorted({g for garments in tags.values() for g in garments}), module.class_names)
        else:
            tags, errors = read_tags(args.tags, module.class_names), []
    except (FileNotFoundError, CheckpointError, ValueError) as err:
        print(f"parsing pseudo-label: {err}", file=sys.stderr)
        return 2
    jobs, unreadable = collect_inputs(args.photos, args.recursive)
    errors += unreadable
    found = tags_for_jobs(jobs, tags)
    images, masks = args.output / "images", args.output / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    config = {"root": str(args.output), "format": "folder", "labels": list(module.class_names)}
    atomic_write(args.output / "data.yaml", lambda tmp: tmp.write_text(yaml.safe_dump({"data": config})))
    written = skipped = 0
    failed = list(errors)
    untagged = [str(photo) for photo, _ in jobs if str(photo) not in found]
    for photo, key in jobs:
        if str(photo) not in found:
            continue
        name = "__".join(key.parts)  # a flat folder: sub/look → sub__look
        target = masks / f"{name}.png"
        if target.exists() and (images / f"{name}{photo.suffix}").exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            image, full = read_photo(photo, MAX_PIXELS)  # very large photos: labelled at 8 MP, mask at full size
            mask = pseudo_label(parser_, image, found[str(photo)], args.min_confidence, args.crf)
            mask = to_size(mask, full)
            atomic_write(images / f"{name}{photo.suffix}", lambda tmp, src=photo: shutil.copyfile(src, tmp))
            atomic_write(target, lambda tmp, m=mask: write_mask_png(tmp, m, flat_palette(module.palette)))
            written += 1
        except (DataError, OSError, ValueError, RuntimeError) as err:
            failed.append({"file": str(photo), "error": str(getattr(err, "problem", err))})
            print(f"parsing pseudo-label: {photo}: {failed[-1]['error']}", file=sys.stderr)
    if failed:
        with open(args.output / "errors.jsonl", "a") as fh:
            fh.writelines(json.dumps(record) + "\n" for record in failed)
    print(
        f"parsing pseudo-label: {written} written, {skipped} already done, {len(untagged)} without tags (skipped), "
        f"{len(failed)} failed → {args.output}",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
