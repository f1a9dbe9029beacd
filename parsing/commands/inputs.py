"""What the commands take: photo files, folders and globs as (photo, output key) jobs, tags files, a network box."""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
from pathlib import Path

from parsing.data.io import IMAGE_SUFFIXES, list_images
from parsing.inference.options import MIN_SIDE

Job = tuple[Path, Path]  # (photo, output key: relative path without suffix)


def _glob_base(pattern: str) -> Path:
    """The leading part of a glob pattern without wildcards: matches keep their path relative to it."""
    parts = Path(pattern).parts
    base = [p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return Path(*base) if base else Path(".")


def collect_inputs(inputs: list[str], recursive: bool = False) -> tuple[list[Job], list[dict[str, str]]]:
    """Files, folders and globs → (photo, output key) jobs, and errors for inputs that match nothing or clash."""
    jobs: list[Job] = []
    errors: list[dict[str, str]] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = [(p, p.relative_to(path).with_suffix("")) for p in list_images(path, recursive)]
        elif path.is_file():
            found = [(path, Path(path.stem))]
        elif glob.has_magic(spec):
            base = _glob_base(spec)
            found = [
                (Path(p), Path(p).relative_to(base).with_suffix(""))
                for p in sorted(glob.glob(spec, recursive=True))
                if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES
            ]
        else:
            found = []
        if not found:
            errors.append({"file": spec, "error": "no such file or folder, or no images in it"})
        jobs.extend(found)
    seen: dict[Path, Path] = {}
    unique: list[Job] = []
    for photo, key in jobs:
        if key in seen:
            if seen[key].resolve() != photo.resolve():
                errors.append({"file": str(photo), "error": f"same output name as {seen[key]}; not processed"})
            continue
        seen[key] = photo
        unique.append((photo, key))
    return unique, errors


def _side(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"{text!r}: each side is a whole number of pixels, at least {MIN_SIDE}")
    return int(text)


def add_input_size(parser: argparse.ArgumentParser, help: str) -> None:
    """``--input-size H W``, the network's input box, as parsing-predict, pack and the benchmarks take it."""
    parser.add_argument("--input-size", type=_side, nargs=2, default=None, metavar=("H", "W"), help=help)


def read_tags(path: Path, names: list[str]) -> dict[str, list[str]]:
    """``--tags`` JSONL → {file: garment names}; every problem is a ValueError naming the file and line."""
    from parsing.inference.label_view import resolve_garments  # torch: not for ``parsing-predict --help``

    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"{path}: cannot read the tags file ({err.strerror})") from None
    tags: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{n}: not a JSON line") from None
        garments = record.get("garments") if isinstance(record, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("file"), str) or not isinstance(garments, list):
            raise ValueError(f'{path}:{n}: expected {{"file": "...", "garments": ["...", ...]}}')
        try:
            garments = resolve_garments(garments, names)
        except ValueError as err:
            raise ValueError(f"{path}:{n}: {err}") from None
        tags[Path(record["file"]).as_posix()] = garments
    return tags


def tags_for_jobs(jobs: list[Job], tags: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each job's photo → its tags: by the path relative to its input folder (the output key's folder plus the
    file name), else by the bare file name when only one photo has it."""
    names = {}
    for photo, _ in jobs:
        names[photo.name] = names.get(photo.name, 0) + 1
    found = {}
    for photo, key in jobs:
        relative = (key.parent / photo.name).as_posix()
        if relative in tags:
            found[str(photo)] = tags[relative]
        elif names[photo.name] == 1 and photo.name in tags:
            found[str(photo)] = tags[photo.name]
    return found


def shard_spec(text: str) -> tuple[int, int]:
    """``--shard I/N`` → (I, N), 0 ≤ I < N."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give I/N, e.g. 0/4 (shard I of N, from 0)") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be in 0..N-1")
    return i, n


def in_shard(key: Path, index: int, count: int) -> bool:
    """Whether the photo with output key ``key`` belongs to shard ``index`` of ``count``: a hash of its relative
    path, so the partition does not depend on listing order or on which other photos exist."""
    digest = hashlib.sha1(Path(key).as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big") % count == index
