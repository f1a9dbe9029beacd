"""``parsing index`` and ``parsing search``: a catalogue of photos, searched by outfit, garment and colour.

    parsing index shop/ -o shop.catalogue                      # parse every photo once, with its search vectors
    parsing index new/ -o shop.catalogue                       # later: only the photos not in it yet
    parsing index shop/ -o shop.catalogue --ray local --ray-actors 2      # parsed by Ray actors
    parsing index shop/ -o shop.catalogue --shard 0/4          # array task 0 of 4 → shop.catalogue/shards/0-of-4
    parsing index --merge -o shop.catalogue                    # once all 4 finished: one catalogue
    parsing search shop.catalogue query.jpg                    # outfits like this one
    parsing search shop.catalogue query.jpg --garment coat --colour red --sheet coats.jpg
    parsing search shop.catalogue --garment dress --colour navy -k 20

``index`` resumes (photos already in the catalogue are skipped), reports photos it cannot read on stderr and in
``CATALOGUE/errors.jsonl`` and goes on. Ray and shards give the same catalogue as one process (the same photos,
garments and vectors); ``--merge`` merges only a complete set of finished shards, then removes them.

``search`` prints one JSON line per query: ``{"query", "hits": [{"rank", "photo", "garment", "score", "box"}]}``;
``--sheet`` draws each query and its hits, the garment outlined.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from parsing.commands.help import ArgumentParser, plain
from parsing.commands.inputs import shard_spec
from parsing.tuning import tune_process


def index_main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="parsing index", description=plain(__doc__))
    parser.add_argument("inputs", nargs="*", help="photos, folders or globs")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the catalogue folder (made or added to)")
    parser.add_argument("--checkpoint", default="shipped", help="the model (a new catalogue only)")
    parser.add_argument("--recursive", action="store_true", help="photos in sub-folders too")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--shard", type=shard_spec, metavar="I/N", help="index only shard I of N into OUTPUT/shards/ (merge later)"
    )
    parser.add_argument("--merge", action="store_true", help="merge the finished shards of OUTPUT/shards/ into it")
    parser.add_argument(
        "--ray", metavar="ADDRESS", help="parse on Ray: local (a local instance), auto, ray://HOST:PORT"
    )
    parser.add_argument("--ray-actors", type=int, default=1, help="Parser actors (each loads the model)")
    parser.add_argument("--ray-cpus-per-actor", type=float, default=None, help="default 1 (locally: leaves ½ core)")
    args = parser.parse_args(argv)
    if args.merge:
        if args.inputs or args.shard:
            parser.error("--merge takes no photos and no --shard: it merges what the shards indexed")
        return merge_shards(args.output)
    if not args.inputs:
        parser.error("give photos, folders or globs to index (or --merge)")
    from parsing.commands.inputs import collect_inputs, in_shard

    jobs, errors = collect_inputs(args.inputs, args.recursive)
    if args.shard is not None:
        jobs, errors = [job for job in jobs if in_shard(job[1], *args.shard)], errors if args.shard[0] == 0 else []
    for error in errors:
        print(f"parsing index: {error['file']}: {error['error']}", file=sys.stderr)
    photos = [str(photo) for photo, _ in jobs]
    folder = args.output if args.shard is None else shard_folder(args.output, *args.shard)
    try:
        catalogue = open_or_build(folder, args.checkpoint)
        tune_process()
    except (FileNotFoundError, ValueError) as err:
        print(f"parsing index: {err}", file=sys.stderr)
        return 2
    done = [0]

    def progress(photo: str, problem: str | None) -> None:
        done[0] += 1
        if problem is not None:
            print(f"parsing index: {photo}: {problem} (skipped)", file=sys.stderr)
            with (folder / "errors.jsonl").open("a") as log:
                log.write(json.dumps({"file": photo, "error": problem}) + "\n")
        if not args.no_progress and (done[0] % 25 == 0 or done[0] == len(photos)):
            print(f"parsing index: {done[0]}/{len(photos)}", file=sys.stderr)

    ray = None
    if args.ray is not None:
        ray = {"address": args.ray, "actors": args.ray_actors, "cpus": args.ray_cpus_per_actor}
    report = catalogue.add(photos, progress=progress, ray=ray)
    if args.shard is not None:
        catalogue.mark("shard_done", f"{len(photos)} photos")
    print(
        f"parsing index: {report.added} added, {report.skipped} already in, {len(report.failed)} unreadable; "
        f"{len(catalogue)} photos in {folder}",
        file=sys.stderr,
    )
    return 1 if report.failed or errors else 0


def shard_folder(output: Path, index: int, count: int) -> Path:
    return output / "shards" / f"{index}-of-{count}"


def open_or_build(folder: Path, checkpoint: str):  # noqa: ANN201
    """The catalogue in ``folder``, or a new, empty one of ``checkpoint``'s model."""
    from parsing.search import Catalogue

    if (folder / "catalogue.sqlite").exists():
        return Catalogue.open(folder)
    from parsing import Parser

    return Catalogue.build([], folder, Parser.load(checkpoint, embed=True))


def merge_shards(output: Path) -> int:
    """``--merge``: every shard of OUTPUT/shards/ (all N of them, each finished) added to OUTPUT, in shard order;
    the shard folders are then removed. Missing or unfinished shards: nothing is merged, and they are named."""
    import shutil

    from parsing.search import Catalogue

    folders = sorted((output / "shards").glob("*-of-*"), key=lambda f: tuple(int(n) for n in f.name.split("-of-")))
    counts = {int(f.name.split("-of-")[1]) for f in folders}
    if not folders or len(counts) != 1:
        found = ", ".join(f.name for f in folders) or "none"
        print(f"parsing index: {output}/shards: no one set of shards I-of-N to merge (found: {found})", file=sys.stderr)
        return 2
    count = counts.pop()
    shards = {int(f.name.split("-of-")[0]): f for f in folders}
    missing = [f"{i}-of-{count}" for i in range(count) if i not in shards]
    unfinished = [f.name for f in folders if "shard_done" not in Catalogue.open(f).meta]
    if missing or unfinished:
        print(f"parsing index: not merged: shards missing: {missing or 'none'}; unfinished: {unfinished or 'none'}",
              file=sys.stderr)  # fmt: skip
        return 2
    first = Catalogue.open(folders[0])
    if (output / "catalogue.sqlite").exists():
        catalogue = Catalogue.open(output)
    else:
        catalogue = Catalogue.build([], output, first.parser)
    added = 0
    for folder in folders:
        try:
            added += catalogue.merge(Catalogue.open(folder)).added
        except ValueError as err:
            print(f"parsing index: {err}", file=sys.stderr)
            return 2
        errors = folder / "errors.jsonl"
        if errors.exists():
            with (output / "errors.jsonl").open("a") as log:
                log.write(errors.read_text())
    shutil.rmtree(output / "shards")
    print(f"parsing index: {count} shards merged, {added} photos added; {len(catalogue)} photos in {output}",
          file=sys.stderr)  # fmt: skip
    return 0


def search_main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="parsing search", description=plain(__doc__))
    parser.add_argument("catalogue", type=Path)
    parser.add_argument("queries", nargs="*", help="query photos (none: search by --garment / --colour alone)")
    parser.add_argument("--garment", default=None, help="find this garment of the query photo (or: photos with it)")
    parser.add_argument("--colour", "--color", default=None, help="a colour name or #rrggbb the hits should have")
    parser.add_argument("-k", type=int, default=10, help="hits per query")
    parser.add_argument("--sheet", type=Path, default=None, help="a contact sheet of the queries and their hits")
    args = parser.parse_args(argv)
    if not args.queries and args.garment is None and args.colour is None:
        parser.error("give a query photo, --garment or --colour")
    from parsing.search import Catalogue

    try:
        catalogue = Catalogue.open(args.catalogue)
    except (FileNotFoundError, ValueError) as err:
        print(f"parsing search: {err}", file=sys.stderr)
        return 2
    try:  # a bad --garment or --colour once, before any query photo (not once per photo, under its name)
        catalogue.resolve(args.garment, args.colour)
    except ValueError as err:
        print(f"parsing search: {err}", file=sys.stderr)
        return 2
    rows, status = [], 0
    for query in args.queries or [None]:
        try:
            hits = catalogue.search(query, garment=args.garment, colour=args.colour, k=args.k)
        except (OSError, ValueError) as err:
            print(f"parsing search: {query or 'search'}: {err}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps({"query": query, "hits": [hit.to_dict() for hit in hits]}), flush=True)
        rows.append((query, hits))
    if args.sheet is not None and rows:
        contact_sheet(rows).save(args.sheet, quality=90)
        print(f"parsing search: sheet → {args.sheet}", file=sys.stderr)
    return status


def contact_sheet(rows: list, size: int = 200):  # noqa: ANN001, ANN201
    """Each query (or an empty cell) and its hits in a row of thumbnails, each hit's garment box outlined."""
    from PIL import Image, ImageDraw, ImageOps

    from parsing.data.io import read_image

    width = 1 + max(len(hits) for _, hits in rows)
    sheet = Image.new("RGB", (width * size, len(rows) * size), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (query, hits) in enumerate(rows):
        cells = [(query, None, "query")] + [(h.photo, h.box, f"{h.rank}: {h.score:.2f}") for h in hits]
        for c, (photo, box, text) in enumerate(cells):
            if photo is None:
                draw.text((c * size + 8, r * size + 8), "no query photo", fill="black")
                continue
            picture = Image.fromarray(read_image(photo))
            scale = min(size / picture.width, (size - 14) / picture.height)
            thumb = ImageOps.contain(picture, (size, size - 14))
            x0, y0 = c * size + (size - thumb.width) // 2, r * size
            sheet.paste(thumb, (x0, y0))
            if box is not None:
                x, y, w, h = (v * scale for v in box)
                draw.rectangle([x0 + x, y0 + y, x0 + x + w, y0 + y + h], outline=(255, 0, 80), width=3)
            draw.text((c * size + 4, r * size + size - 13), text, fill="black")
    return sheet
