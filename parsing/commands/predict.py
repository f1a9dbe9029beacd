"""``parsing-predict INPUT [INPUT ...] -o OUT``: masks, overlays and a summary for photo files, folders or globs.

Input collection (``commands.inputs``) + ``parsing.Parser.parse_stream`` + ``Parse.save``. Writes, keeping each
input's path relative to the folder (or glob base) it was found in: ``OUT/masks/<rel>/<stem>.png`` (palette PNG,
pixel = label id, names in ``OUT/labels.json``), ``OUT/overlays/<rel>/<stem>.jpg``, optionally probs and cut-outs,
a line per photo in ``OUT/summary.jsonl`` and per failed file in ``OUT/errors.jsonl``. Photos already done are
skipped unless ``--overwrite``, so a killed run resumes. Exit status: 0; 1 when any file failed; 2 for bad
arguments; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from torch.utils.data import DataLoader, Dataset

from parsing.commands.inputs import Job, collect_inputs, in_shard, read_tags, tags_for_jobs
from parsing.commands.predict_options import parse_args, parser_options, save_options
from parsing.data.io import DataError
from parsing.inference.options import MAX_PIXELS
from parsing.inference.parser import Parser
from parsing.inference.photo import Photo, prepare
from parsing.model.checkpoint import SHIPPED, CheckpointError
from parsing.model.load import onnx_installed
from parsing.outputs.files import write_labels_json
from parsing.outputs.folder import OutputFolder
from parsing.outputs.parse import save_result
from parsing.tuning import tune_process

DEFAULT_CHECKPOINT = SHIPPED


def _ignore_sigint(_: int) -> None:
    """Loader workers leave Ctrl-C to the command: killed mid-transfer they made the interpreter print tracebacks
    after the one-line message (the parent shuts them down as it exits)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PhotoDataset(Dataset):
    """Photos read and fitted into the network box in the loader's workers (``Parser.prepare``); a bad file
    becomes ``{"path", "error"}``."""

    def __init__(self, jobs: list[Job], size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> None:
        self.jobs, self.size, self.max_pixels = jobs, size, max_pixels

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        photo, key = self.jobs[index]
        try:
            return {"key": key, "photo": prepare(photo, self.size, self.max_pixels, str(photo))}
        except DataError as err:
            return {"key": key, "path": str(photo), "error": err.problem}


# --- command ------------------------------------------------------------------------------------------------------
def _progress(loader: DataLoader, total: int, show: bool) -> Iterator[list[dict[str, Any]]]:
    if not show:
        yield from loader
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("parsing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("parsing", total=total)
        for batch in loader:
            yield batch
            progress.advance(task, len(batch))


def load(args: argparse.Namespace) -> tuple[Parser, list[str] | None, dict[str, list[str]]]:
    """The parser, the garments every photo may hold and the tags file's (ValueError/CheckpointError/...)."""
    parser = Parser.load(args.checkpoint, device=args.device, **parser_options(args))
    on_torch = args.backend == "auto" and parser.backend.name == "torch" and str(parser.backend.device) == "cpu"
    if on_torch and not onnx_installed():  # torch for want of the runtimes (a failed export warns by itself)
        print("parsing-predict: the network runs on torch; pip install 'clothing-parsing[openvino]' runs it about 2x "
              "faster on a CPU (docs/install.md)", file=sys.stderr)  # fmt: skip
    tune_process()  # a long run: glibc keeps freed memory, the start-up objects leave the collector
    every = None
    if args.garments is not None:
        every = parser.garment_names(g for g in args.garments.split(",") if g.strip())
    tags = read_tags(args.tags, parser.spec.class_names) if args.tags is not None else {}
    return parser, every, tags


def predict(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    try:
        parser, every, tags = load(args)
        out = OutputFolder(args.output, args.probs, args.cutouts)
        write_labels_json(out.root, parser.names, parser.palette, replace=args.overwrite)
    except (FileNotFoundError, CheckpointError, ValueError, ImportError) as err:
        print(f"parsing-predict: {err}", file=sys.stderr)
        return 2
    jobs, errors = collect_inputs(args.inputs, args.recursive)
    if args.shard is not None:
        jobs, errors = [job for job in jobs if in_shard(job[1], *args.shard)], errors if args.shard[0] == 0 else []
    photo_tags = tags_for_jobs(jobs, tags)
    if args.tags is not None:
        print(f"parsing-predict: tags for {len(photo_tags)} of {len(jobs)} photos from {args.tags}", file=sys.stderr)
    done = out.summarised()
    todo = jobs if args.overwrite else [(p, k) for p, k in jobs if not (str(p) in done and out.done(k))]
    redo = {str(photo) for photo, _ in todo} & set(done)
    if redo:  # their earlier lines go: each photo keeps one summary line
        out.forget(redo)
    out.refresh()
    out.finished.clear()  # from here on: photos other processes finish while this one runs
    skipped = len(jobs) - len(todo)
    failed = written = others = 0

    def fail(record: dict[str, str]) -> None:  # reported at once: a killed run keeps its error log
        nonlocal failed
        failed += 1
        out.append(out.errors, record)
        print(f"parsing-predict: {record['file']}: {record['error']}", file=sys.stderr)

    for record in errors:
        fail(record)
    # Writing (overlay, PNG/JPEG encoding) runs on one thread while the next batch parses; the summary lines, the
    # error lines and the claims are settled here in input order, once each photo's files are in place.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parsing-writer")
    pending: deque[tuple[Future, str, Any]] = deque()

    def settle(keep: int = 0) -> None:
        nonlocal written
        while len(pending) > keep or (pending and pending[0][0].done()):
            future, source, claim = pending.popleft()
            record, problem = future.result()
            if record is not None:
                out.append(out.summary, record)
                written += 1
            else:
                fail({"file": source, "error": problem})
            out.release(claim, finished=True)

    try:
        print(f"parsing-predict: {len(jobs)} photos, {skipped} already done in {out.root}", file=sys.stderr)
        if args.ray is not None:  # the actors parse and write; this process appends the summary
            from parsing.scale.ray_job import predict_on_ray

            options = parser.options.replace(input_size=parser.size)  # the driver's, checked once
            loads = {"checkpoint": str(args.checkpoint), **parser_options(args), "options": options}
            written = predict_on_ray(args, loads, save_options(args), todo, photo_tags, every, out, fail)
            batches: Iterable[list[dict[str, Any]]] = ()
        else:
            dataset = PhotoDataset(todo, parser.size, args.max_pixels)
            loader = DataLoader(
                dataset, args.batch_size, num_workers=args.workers, collate_fn=list, worker_init_fn=_ignore_sigint
            )
            batches = _progress(loader, len(todo), not args.no_progress and len(todo) > 0)
        inflight: deque[dict[str, Any]] = deque()  # the photos handed to the parser, in order

        def claimed() -> Iterator[tuple[Photo, list[str] | None]]:
            """The loader's photos that this process claims (the others are another process's, or finished by
            one), bad files reported on the way."""
            nonlocal others
            for batch in batches:
                for item in batch:
                    claim = out.claim(item["key"])
                    if claim is not None and str(item.get("path") or item["photo"].source) in out.refresh():
                        out.release(claim, finished=True)  # another process finished it
                        claim = None
                    if claim is None:
                        others += 1
                    elif "error" in item:
                        fail({"file": item["path"], "error": item["error"]})
                        out.release(claim, finished=True)
                    else:
                        inflight.append({**item, "claim": claim})
                        yield item["photo"], photo_tags.get(item["photo"].source, every)

        # one stream across the loader's batches: the next photo's network runs while this one is finished
        for result in parser.parse_stream(claimed(), args.batch_size):
            item = inflight.popleft()
            future = writer.submit(save_result, result, out.root, item["key"], **save_options(args))
            pending.append((future, item["photo"].source, item["claim"]))
            settle(keep=args.batch_size)  # at most one batch of parses waits for its files
        settle()
    except KeyboardInterrupt:
        settle()  # the photos already parsed are written and recorded
        print(f"\nparsing-predict: interrupted after {written} photos; run again to resume", file=sys.stderr)
        return 130
    finally:
        writer.shutdown(wait=True)
    note = f", {others} left to other processes" if others else ""
    print(
        f"parsing-predict: {written} parsed, {skipped} already done{note}, {failed} failed → {out.root}",
        file=sys.stderr,
    )
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """``predict``, with Ctrl-C answered in one line (what was written stays: run again to resume)."""
    try:
        return predict(args)
    except KeyboardInterrupt:
        print("\nparsing-predict: interrupted; run again to resume", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
