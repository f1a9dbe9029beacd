"""``parsing-predict INPUT [INPUT ...] -o OUT``: garment masks, overlays and a summary for files, folders or globs.

Writes, keeping each input's path relative to the folder (or glob base) it was found in:
``OUT/masks/<rel>/<stem>.png`` (palette PNG, pixel = label index), ``OUT/overlays/<rel>/<stem>.jpg``,
optionally ``OUT/probs/<rel>/<stem>.npy`` (float16 (K, H, W) probabilities), one line per photo in
``OUT/summary.jsonl`` and one per failed file in ``OUT/errors.jsonl``. Photos already done (outputs present and
listed in the summary) are skipped unless ``--overwrite``, so a killed run resumes. Exit status: 0, or 1 when any
file failed, 2 for bad arguments.

Known garments: ``--garments dress,bag`` (every photo) or ``--tags TAGS.jsonl`` (one line per photo,
``{"file": "look/0033.jpg", "garments": ["dress", "bag"]}``, ``file`` relative to its input folder or glob base,
or the bare file name when unique) allow only those garments plus null/skin/hair. ``--merge ccp-coarse`` (or a
YAML ``{group: [labels]}``) writes merged labels, their probabilities summed before the argmax
(``parsing.inference.label_view``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, Dataset

from parsing.data.datasets import list_images
from parsing.data.io import IMAGE_SUFFIXES, DataError, read_photo, write_mask_png
from parsing.data.transforms import fit_photo
from parsing.inference.confidence import label_confidence, unsure_notes
from parsing.inference.crf import CRFParams
from parsing.inference.label_view import LabelView, check_garments
from parsing.inference.refocus import refocused, scale_box, widened
from parsing.labels import MERGES, NON_GARMENTS, flat_palette
from parsing.outputs.overlay import overlay
from parsing.training.module import CheckpointError, ParsingModule, module_from_checkpoint, read_checkpoint
from parsing.training.transfer import SHIPPED

DEFAULT_CHECKPOINT = SHIPPED
Job = tuple[Path, Path]  # (photo, output key: relative path without suffix)


# --- inputs -----------------------------------------------------------------------------------------------------
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


MAX_PIXELS = 8_000_000  # photos above this are parsed at this many pixels; their masks are upsampled to full size
REFOCUS = (
    1.5  # a person this many times smaller than the frame allows is parsed again in a box (parsing.inference.refocus)
)
WIDEN = 1.5  # a close-up (person cut at top and bottom) is also parsed on a canvas this many times wider (refocus)


def shrink(image: np.ndarray, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The photo (H, W, 3), or a copy shrunk to at most ``max_pixels`` (aspect kept) when it is larger."""
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image
    f = (max_pixels / (h * w)) ** 0.5
    return cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)


def to_size(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map (h, w) uint8 at the working size → (H, W), nearest neighbour with pixel centres aligned."""
    if labels.shape == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


class PhotoDataset(Dataset):
    """Photos fitted inside the network's input box (turned for landscape photos); bad files become errors.

    Each item carries the photo for decoding and the CRF (``full_image``), at its own size, or shrunk to
    ``max_pixels`` when larger (JPEGs decoded at reduced scale), and the photo's own ``size`` (H, W)."""

    def __init__(self, jobs: list[Job], size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> None:
        self.jobs = jobs
        self.size = size
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        photo, key = self.jobs[index]
        try:
            image, size = read_photo(photo, self.max_pixels)
        except DataError as err:
            return {"path": str(photo), "key": key, "error": err.problem}
        return {"path": str(photo), "key": key, "image": fit_photo(image, self.size), "full_image": image, "size": size}


def collate_photos(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad the fitted photos bottom/right to the batch's largest; keep bad files apart as ``errors``."""
    good = [s for s in batch if "error" not in s]
    out: dict[str, Any] = {"errors": [s for s in batch if "error" in s]}
    out["path"] = [s["path"] for s in good]
    out["key"] = [s["key"] for s in good]
    out["full_image"] = [torch.from_numpy(s["full_image"]) for s in good]
    out["size"] = [tuple(s["size"]) for s in good]
    out["valid"] = [tuple(s["image"].shape[-2:]) for s in good]
    if good:
        hh, ww = max(v[0] for v in out["valid"]), max(v[1] for v in out["valid"])
        out["image"] = torch.stack(
            [F.pad(s["image"], (0, ww - s["image"].shape[2], 0, hh - s["image"].shape[1])) for s in good]
        )
    return out


# --- model --------------------------------------------------------------------------------------------------------
def input_size(state: dict) -> tuple[int, int]:
    """A checkpoint's network input size (H, W) for inference: the ``input_size`` ``parsing pack --input-size``
    recorded (measured for that model), else the size it was trained at."""
    size = state.get("input_size") or state.get("datamodule_hyper_parameters", {}).get("size", (384, 256))
    return int(size[0]), int(size[1])


MIN_SIDE = 32  # the encoders' total stride: a smaller box has no deepest feature cell


def _side(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"{text!r}: each side is a whole number of pixels, at least {MIN_SIDE}")
    return int(text)


def add_input_size(parser: argparse.ArgumentParser, help: str) -> None:
    """``--input-size H W``, the network's input box, as parsing-predict, pack and the benchmarks take it."""
    parser.add_argument("--input-size", type=_side, nargs=2, default=None, metavar=("H", "W"), help=help)


def load_parser(checkpoint: str | Path, device: str = "cpu") -> tuple[ParsingModule, tuple[int, int]]:
    """A trained ParsingModule ready for inference, and its network input size (H, W) (``input_size``). The file
    is read once; a missing, corrupt or foreign file raises ``FileNotFoundError`` / ``CheckpointError``."""
    state = read_checkpoint(checkpoint)
    module = module_from_checkpoint(state)  # every weight is in the checkpoint
    return module.eval().to(device), input_size(state)


def parse_image(
    module: ParsingModule,
    size: tuple[int, int],
    image: np.ndarray,
    crf: str = "fast",
    garments: list[str] | None = None,
    merge: str | dict[str, list[str]] | None = None,
    tta: str = "none",
    max_pixels: int = MAX_PIXELS,
    refocus: float = REFOCUS,
    widen: float = WIDEN,
) -> dict[str, Any]:
    """One photo (H, W, 3) uint8 → ``labels`` (H, W) uint8, the decoded garment set ``outfit`` (names), the
    outfit encoder's ``presence`` probabilities (K,) or None and ``confidence``: label name → its ``confidence``,
    ``alternative`` and ``alternative_confidence`` (``parsing.inference.confidence``) — what ``parsing-predict`` writes, in
    memory. ``crf``:
    ``fast`` (default), ``dense`` or ``none``; ``garments``: the only garments the photo may hold (tags);
    ``merge``: a label merge (``ccp-coarse`` or ``{group: [labels]}``): ``labels``/``names`` are then the groups';
    ``tta``: ``flip`` averages the photo's and its mirror image's logits (twice the network's time); a photo above
    ``max_pixels`` is parsed at that many pixels and its labels upsampled to its size; ``refocus``: when the
    person would be enlarged at least this many times by parsing just a box around them, that box is parsed again
    (``parsing.inference.refocus``; 0 = never), and ``box`` holds it (else None); ``widen``: when the person is cut by the
    photo's top and bottom edges (a close-up), the photo is also parsed on a canvas this many times its size and
    the two parses averaged (0 = never), and ``widened`` says whether it was."""
    full = image.shape[:2]
    image = shrink(image, max_pixels)
    h, w = image.shape[:2]
    view = module.label_view(merge, garments) if garments is not None or merge is not None else None
    device = next(module.parameters()).device
    x = fit_photo(image, size).to(device)  # (3, h', w')
    with torch.inference_mode():
        logits, presence = module.infer(x[None], tta)
        p = None if presence is None else presence[0]
        z, wide = widened(module, x, logits[0], widen, tta)  # (K, h', w')
        labels, chosen = module.parse_photo(z, p, (h, w), image, crf, view)  # read only: no copy
        labels, chosen, p, box, z_box = refocused(module, size, image, labels, chosen, p, crf, view, tta, refocus)
        names = list(view.names) if view is not None else module.class_names
        sure = label_confidence(labels, z, names, view, box, z_box)
    labels_np = to_size(labels.to(torch.uint8).cpu().numpy(), full)
    counts = np.bincount(labels_np.ravel(), minlength=len(names))
    probs = None if p is None else torch.sigmoid(p).cpu()
    if view is not None:
        probs = view.presence_probs(probs)
    outfit = outfit_names(names, counts, chosen)
    box = None if box is None else scale_box(box, (h, w), full)
    confidence = {names[label]: fields for label, fields in sure.items()}
    return {
        "labels": labels_np,
        "names": names,
        "outfit": outfit,
        "presence": probs,
        "confidence": confidence,
        "box": box,
        "widened": wide,
    }


def outfit_names(names: list[str], counts: np.ndarray, chosen: torch.Tensor | None) -> list[str]:
    """The garments of the decoded set (all labels when not decoding) that the label map actually shows."""
    in_set = chosen.tolist() if chosen is not None else [True] * len(names)
    return [n for i, n in enumerate(names) if n not in NON_GARMENTS and in_set[i] and counts[i] > 0]


# --- outputs ------------------------------------------------------------------------------------------------------
def _atomic_write(target: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename: a killed run never leaves a half-written output under the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class Outputs:
    """The output folder: where each photo's files go, what is done, and the two JSONL logs."""

    def __init__(self, root: Path, probs: bool, cutouts: bool = False) -> None:
        self.root = root
        self.probs = probs
        self.cutouts = cutouts
        self.summary = root / "summary.jsonl"
        self.errors = root / "errors.jsonl"
        root.mkdir(parents=True, exist_ok=True)

    def paths(self, key: Path) -> dict[str, Path]:
        # key.name + suffix, not key.with_suffix: a stem may hold dots ("look.v2")
        paths = {
            "mask": self.root / "masks" / key.parent / f"{key.name}.png",
            "overlay": self.root / "overlays" / key.parent / f"{key.name}.jpg",
        }
        if self.probs:
            paths["probs"] = self.root / "probs" / key.parent / f"{key.name}.npy"
        if self.cutouts:  # a folder of <label>.png, renamed into place when complete
            paths["cutouts"] = self.root / "cutouts" / key.parent / key.name
        return paths

    def summarised(self) -> dict[str, str]:
        """file → its summary line, from earlier runs."""
        lines: dict[str, str] = {}
        if self.summary.is_file():
            for line in self.summary.read_text().splitlines():
                try:
                    lines[json.loads(line)["file"]] = line
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut by a killed run
        return lines

    def forget(self, files: set[str]) -> None:
        """Drop these files' earlier summary lines (they are being redone: --overwrite, or left half done)."""
        kept = [line for f, line in self.summarised().items() if f not in files]
        _atomic_write(self.summary, lambda tmp: tmp.write_text("".join(f"{line}\n" for line in kept)))

    def append(self, log: Path, record: dict[str, Any]) -> None:
        with open(log, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def summary_record(
    names: list[str],
    photo: str,
    labels: np.ndarray,
    probs: torch.Tensor | None,
    chosen: torch.Tensor | None,
    outputs: dict[str, Path],
    root: Path,
    checkpoint: str,
    crf: str,
    garments: list[str] | None = None,
    merge: str | None = None,
    tta: str = "none",
    details: dict[int, dict[str, Any]] | None = None,
    box: tuple[int, int, int, int] | None = None,
    widened: bool = False,
) -> dict[str, Any]:
    """One photo's ``summary.jsonl`` line; ``names`` are the labels of ``labels`` (merged ones with ``merge``),
    ``probs`` their presence probabilities (or None), ``garments`` the tags the parse was limited to, ``details``
    label id → extra fields for its entry (``pieces``, ``colours``), ``box`` the refocused box (top, left, bottom,
    right) at ``labels``' size, if any; ``widened`` whether the photo was also parsed on a wider canvas."""
    counts = np.bincount(labels.ravel(), minlength=len(names))
    probs = probs.tolist() if probs is not None else None
    present = [
        {
            "label": names[i],
            "id": int(i),
            "share": round(float(counts[i]) / labels.size, 5),
            "presence": None if probs is None else round(probs[i], 4),
            **dict.fromkeys(("confidence", "alternative", "alternative_confidence")),  # too small to sample
            **(details or {}).get(int(i), {}),
        }
        for i in np.argsort(-counts)
        if counts[i] > 0 and names[i] not in ("null", "background")
    ]
    outfit = outfit_names(names, counts, chosen)
    return {
        "file": photo,
        "size": [int(labels.shape[1]), int(labels.shape[0])],
        "labels": present,
        "outfit": outfit,
        **{name: str(path.relative_to(root)) for name, path in outputs.items()},
        "checkpoint": checkpoint,
        "crf": crf,
        "tta": tta,
        "refocus": None if box is None else list(box),
        "widened": widened,
        "garments": garments,
        "merge": merge,
    }


# --- garment details: pieces, colours, cut-outs -----------------------------------------------------------------
def describe_garments(
    image: np.ndarray, labels: np.ndarray, names: list[str], size: tuple[int, int], colours: bool = True
) -> dict[int, dict[str, Any]]:
    """Per garment label of a label map (h, w) at the working photo (h, w, 3): its ``mask``, its ``pieces`` (boxes
    in the photo's own pixels, ``size`` (H, W)) and, with ``colours``, its named colours (``parsing.outputs.describe``)."""
    from parsing.outputs.describe import colours as named_colours
    from parsing.outputs.describe import pieces

    scale = (size[0] / labels.shape[0], size[1] / labels.shape[1])
    details = {}
    for i in np.unique(labels).tolist():
        if names[i] in NON_GARMENTS:
            continue
        mask = labels == i
        details[i] = {"mask": mask, "pieces": pieces(mask, 0.001, scale)}
        if colours:
            details[i]["colours"] = named_colours(image, mask)
    return details


def write_cutouts(
    folder: Path, image: np.ndarray, labels: np.ndarray, names: list[str], details: dict, feather: float
) -> None:
    """``folder/<label>.png`` for each garment: RGBA cut-outs (``parsing.outputs.describe.cutout``), written into a
    temporary folder renamed into place, so a killed run never leaves a partial set."""
    from parsing.outputs.describe import cutout

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for i, detail in details.items():
            picture = cutout(image, detail["mask"], feather=feather)
            if picture is not None:
                picture.save(tmp / f"{names[i]}.png")
        shutil.rmtree(folder, ignore_errors=True)  # an older, possibly partial set (--overwrite or a redo)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- known garments and merges --------------------------------------------------------------------------------------
def read_merge(spec: str | None) -> str | dict[str, list[str]] | None:
    """``--merge``: a preset name or a YAML file ``{group: [labels]}`` (ValueError naming the problem)."""
    if spec is None or spec in MERGES:
        return spec
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--merge {spec}: neither a preset ({', '.join(sorted(MERGES))}) nor a YAML file")
    try:
        groups = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise ValueError(f"{path}: a merge is a mapping of group names to lists of labels")
    return groups


def read_tags(path: Path, names: list[str]) -> dict[str, list[str]]:
    """``--tags`` JSONL → {file: garment names}; every problem is a ValueError naming the file and line."""
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
            check_garments(garments, names)
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


# --- command ------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
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
        choices=("none", "dense", "fast"),
        default="fast",
        help="CRF after the network (default fast: the torch CRF, ~0.06 s/photo on a CPU core; dense: pydensecrf)",
    )
    parser.add_argument(
        "--crf-iterations", type=int, default=None, help="mean-field iterations (default: 10 dense, 3 fast)"
    )
    parser.add_argument(
        "--tta",
        choices=("none", "flip"),
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
    add_input_size(parser, "the network's input box (portrait; turned for landscape photos); default: the checkpoint's")
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
    return parser.parse_args(argv)


def _batches(loader: DataLoader, total: int, show: bool) -> Iterator[dict[str, Any]]:
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
            progress.advance(task, len(batch["path"]) + len(batch["errors"]))


def predict(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("parsing-predict: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    try:
        module, size = load_parser(args.checkpoint, device)
    except (FileNotFoundError, CheckpointError) as err:
        print(f"parsing-predict: {err}", file=sys.stderr)
        return 2
    if args.input_size is not None:
        size = (args.input_size[0], args.input_size[1])
    try:
        merge = read_merge(args.merge)
        every = [g.strip() for g in args.garments.split(",") if g.strip()] if args.garments is not None else None
        check_garments(every, module.class_names)
        tags = read_tags(args.tags, module.class_names) if args.tags is not None else {}
        views = {None: module.label_view(merge)} if merge is not None else {None: None}
    except ValueError as err:
        print(f"parsing-predict: {err}", file=sys.stderr)
        return 2
    if args.crf_iterations is not None:
        module.crf_params = CRFParams(**{**vars(module.crf_params), "iterations": args.crf_iterations})
    if args.crf == "dense":
        from parsing.inference.crf import densecrf

        try:
            densecrf()
        except ImportError as err:
            print(f"parsing-predict: {err}", file=sys.stderr)
            return 2

    out = Outputs(args.output, args.probs, args.cutouts)
    jobs, errors = collect_inputs(args.inputs, args.recursive)
    photo_tags = tags_for_jobs(jobs, tags)
    if args.tags is not None:
        print(f"parsing-predict: tags for {len(photo_tags)} of {len(jobs)} photos from {args.tags}", file=sys.stderr)

    def view_for(photo: str) -> tuple[LabelView | None, list[str] | None]:
        garments = photo_tags.get(photo, every)
        key = None if garments is None else tuple(sorted(set(garments)))
        if key not in views:
            views[key] = module.label_view(merge, list(key))
        return views[key], garments

    done = out.summarised()
    if args.overwrite:
        todo = jobs
    else:
        todo = [
            (photo, key)
            for photo, key in jobs
            if not (str(photo) in done and all(p.exists() for p in out.paths(key).values()))
        ]
    redo = {str(photo) for photo, _ in todo} & set(done)
    if redo:  # their earlier lines go: each photo keeps one summary line
        out.forget(redo)
    skipped = len(jobs) - len(todo)
    loader = DataLoader(
        PhotoDataset(todo, size, args.max_pixels),
        batch_size=args.batch_size,
        num_workers=args.workers,
        collate_fn=collate_photos,
    )

    failed = 0

    def fail(record: dict[str, str]) -> None:  # reported at once: a killed run keeps its error log
        nonlocal failed
        failed += 1
        out.append(out.errors, record)
        print(f"parsing-predict: {record['file']}: {record['error']}", file=sys.stderr)

    for record in errors:
        fail(record)
    written = 0
    for batch in _batches(loader, len(todo), not args.no_progress and len(todo) > 0):
        for bad in batch["errors"]:
            fail({"file": bad["path"], "error": bad["error"]})
        if not batch["path"]:
            continue
        with torch.inference_mode():
            images = batch["image"].to(device)  # (B, 3, H, W), padded
            logits, presence = module.infer(images, args.tta)
            for i, (vh, vw) in enumerate(batch["valid"]):
                photo, key, image = batch["path"][i], batch["key"][i], batch["full_image"][i]
                try:
                    view, garments = view_for(photo)
                    names = list(view.names) if view is not None else module.class_names
                    palette = [list(c) for c in view.palette] if view is not None else module.palette
                    p = None if presence is None else presence[i]
                    work = tuple(image.shape[:2])  # the photo's size, or less above --max-pixels
                    x, z = images[i, :, :vh, :vw], logits[i, :, :vh, :vw]  # (3, h', w'), (K, h', w'): no padding
                    z, wide = widened(module, x, z, args.widen, args.tta)
                    labels, chosen = module.parse_photo(z, p, work, image, args.crf, view)
                    labels, chosen, p, box, z_box = refocused(
                        module, size, image, labels, chosen, p, args.crf, view, args.tta, args.refocus
                    )
                    sure = label_confidence(labels, z, names, view, box, z_box)
                    work_labels = labels.to(torch.uint8).cpu().numpy()
                    labels_np = to_size(work_labels, batch["size"][i])
                    paths = out.paths(key)
                    colours = flat_palette(palette)
                    _atomic_write(paths["mask"], lambda tmp, m=labels_np, f=colours: write_mask_png(tmp, m, f))
                    picture = overlay(image.numpy(), work_labels, palette, names, notes=unsure_notes(sure, names))
                    _atomic_write(paths["overlay"], lambda tmp, im=picture: im.save(tmp, format="JPEG", quality=90))
                    details = {}
                    if args.describe or args.cutouts:
                        details = describe_garments(image.numpy(), work_labels, names, batch["size"][i], args.describe)
                    if args.cutouts:
                        write_cutouts(paths["cutouts"], image.numpy(), work_labels, names, details, args.feather)
                    if args.probs:
                        full = F.interpolate(z[None].float(), size=work, mode="bilinear")[0]  # (K, h, w)
                        if box is not None:
                            t, left, b, r = box
                            full[:, t:b, left:r] = F.interpolate(
                                z_box[None].float(), (b - t, r - left), mode="bilinear"
                            )[0]
                        probs = full.softmax(0).half().cpu().numpy()
                        _atomic_write(paths["probs"], lambda tmp, a=probs: np.save(tmp, a))
                    probs = None if p is None else torch.sigmoid(p).cpu()
                    probs = view.presence_probs(probs) if view is not None else probs
                    record = summary_record(
                        names,
                        photo,
                        labels_np,
                        probs,
                        chosen,
                        paths,
                        out.root,
                        str(args.checkpoint),
                        args.crf,
                        garments,
                        args.merge,
                        args.tta,
                        {
                            label: {
                                **sure.get(label, {}),
                                **{k: v for k, v in details.get(label, {}).items() if k != "mask"},
                            }
                            for label in sure.keys() | details.keys()
                        },
                        None if box is None else scale_box(box, work, batch["size"][i]),
                        wide,
                    )
                    out.append(out.summary, record)
                    written += 1
                except (OSError, ValueError, RuntimeError) as err:
                    fail({"file": photo, "error": f"{type(err).__name__}: {err}"})
    print(f"parsing-predict: {written} parsed, {skipped} already done, {failed} failed → {out.root}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return predict(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
