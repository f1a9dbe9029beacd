"""``parsing check-data ROOT [--format ccp|folder|coco]``: every problem of a dataset, each with its file
(``parsing.data.check`` does the checking)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parsing.commands.help import plain
from parsing.data import check as data_check
from parsing.data.check import (
    MIN_VAL_PHOTOS,
    VAL_FRACTION,
    check_ccp,
    check_coco,
    check_folder,
    same_photos,
    validation_size,
)
from parsing.data.io import list_images
from parsing.labels import label_list, read_label_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="parsing check-data",
        description=plain(data_check.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", help="dataset root")
    parser.add_argument("--format", choices=("ccp", "folder", "coco"), default="ccp")
    parser.add_argument(
        "--labels",
        nargs="+",
        help='folder/coco: the label names for mask values 0..K-1: "[a, b, c]", a b c or a,b,c '
        "(default: ROOT/labels.txt or labels.yaml)",
    )
    parser.add_argument("--annotations", help="coco format: the instances JSON")
    parser.add_argument("--workers", type=int, default=4, help="reader threads")
    args = parser.parse_args(argv)
    try:
        args.labels = label_list(args.labels) if args.labels else read_label_file(args.root)
    except ValueError as err:
        parser.error(str(err))
    if args.format in ("folder", "coco") and not args.labels:
        parser.error(f'--format {args.format} needs --labels "[a, b, ...]" or a labels.txt in {args.root}')
    if args.format == "coco" and not args.annotations:
        parser.error("--format coco needs --annotations")
    if args.format == "ccp":
        problems = check_ccp(args.root, workers=args.workers)
        for same in (
            same_photos(list_images(Path(args.root) / "photos")) if (Path(args.root) / "photos").is_dir() else []
        ):
            print(f"note: {same.path}: {same.problem}", file=sys.stderr)  # CCP as published: noted, not refused
    elif args.format == "coco":
        problems = check_coco(args.root, args.annotations, args.labels, workers=args.workers)
    else:
        problems = check_folder(args.root, len(args.labels), workers=args.workers, same=True)
        photos = len(list_images(Path(args.root) / "images")) if (Path(args.root) / "images").is_dir() else 0
        if photos > 0 and validation_size(photos) < MIN_VAL_PHOTOS:
            print(
                f"note: {photos} photos: the default validation split (data.val_fraction {VAL_FRACTION}) holds "
                f"{validation_size(photos)}; under {MIN_VAL_PHOTOS} its scores are noise — label more photos or "
                f"raise data.val_fraction",
                file=sys.stderr,
            )
    for problem in problems:
        print(problem)
    root = Path(args.root)
    if problems and args.format == "ccp" and (root / "images").is_dir() and (root / "masks").is_dir():
        print(
            f"{root} holds images/ and masks/: a folder dataset (the studio's Save writes one): add --format folder",
            file=sys.stderr,
        )
    print(f"{args.root}: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
