"""``Parser``: the one parse pipeline, behind the library, ``parsing-predict`` and every other caller.

    from parsing import Parser

    parser = Parser.load()                    # the shipped model; or Parser.load("my.ckpt", crf="none")
    parse = parser("photo.jpg")               # a path, a PIL image or a numpy array
    parse.garments, parse.labels.shape        # ['dress', 'shoes'], (H, W)
    parse.overlay().save("overlay.jpg")
    for parse in parser.parse_many(paths, batch_size=4):
        if parse.ok: ...                      # else a ParseError naming the photo and the problem

Per photo: fit into the network box → network (batched) → ``widen`` (a close-up also parsed on a wider
canvas) → exclusive-pair decoding and the CRF at the photo's size → ``refocus`` (a small person parsed again in a
box) → garments below ``min_share`` removed from the mask → confidence → the mask at the photo's own size.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from parsing.data.io import DataError
from parsing.inference.confidence import label_confidence
from parsing.inference.crf import CRFParams
from parsing.inference.decode import parse_photo
from parsing.inference.label_view import LabelView, read_merge, resolve_garments
from parsing.inference.onnx_backend import network_on_onnxruntime
from parsing.inference.photo import MAX_PIXELS, ImageInput, Photo, check_input, describe_input, prepare, to_size
from parsing.inference.refocus import refocused, scale_box, widened
from parsing.inference.specks import remove_specks
from parsing.labels import NON_GARMENTS
from parsing.outputs.parse import Parse
from parsing.training.checkpoint import input_size as checkpoint_input_size
from parsing.training.checkpoint import module_from_checkpoint, read_checkpoint
from parsing.training.module import ParsingModule
from parsing.training.transfer import SHIPPED

REFOCUS = 1.5  # a person this many times smaller than the frame allows is parsed again in a box (refocus)
WIDEN = 1.5  # a close-up (person cut at top and bottom) is also parsed on a canvas this many times wider (refocus)
MIN_SHARE = 0.004  # a garment covering less of the person is a speck: removed from the mask (its pixels relabelled)


class ParseError(ValueError):
    """A photo that could not be parsed: ``source`` names it, ``problem`` says why. ``ok`` is False."""

    ok = False

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is a ValueError."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA device is available")
    return device


class Parser:
    """A loaded model and the options of its pipeline; call it on a photo, or ``parse_many`` on many.

    Use ``Parser.load``. ``crf``: ``fast`` (torch mean-field), ``dense`` (pydensecrf) or ``none``; ``tta``:
    ``flip`` averages the photo and its mirror image (2× the network); ``input_size``: the network box (H, W)
    (default: the checkpoint's); ``max_pixels``: larger photos are parsed at this many pixels, their masks
    upsampled; ``refocus``: parse a box around a person this many times too small again (0 = off); ``widen``: parse
    a close-up also on a canvas this many times larger (0 = off); ``merge``: a preset (``ccp-coarse``), a YAML file
    or ``{group: [labels]}``: masks in merged groups; ``min_share``: garments covering less are removed from the
    mask (0 = keep every pixel); ``probs``: keep each parse's (K, h, w) probabilities (memory!).

    ``overlap``: in ``parse_photos``/``parse_many``, the next photo's network runs in a thread while this one is
    finished; on by default where the network has its own threads (onnxruntime on the CPU).
    """

    def __init__(
        self,
        module: ParsingModule,
        size: tuple[int, int],
        *,
        checkpoint: str = "",
        device: str = "cpu",
        crf: str = "fast",
        tta: str = "none",
        max_pixels: int = MAX_PIXELS,
        refocus: float = REFOCUS,
        widen: float = WIDEN,
        merge: str | dict[str, list[str]] | None = None,
        min_share: float = MIN_SHARE,
        probs: bool = False,
    ) -> None:
        if crf not in ("none", "fast", "dense"):
            raise ValueError(f"crf {crf!r}: choose none, fast or dense")
        if tta not in ("none", "flip"):
            raise ValueError(f"tta {tta!r}: choose none or flip")
        if crf == "dense":
            from parsing.inference.crf import densecrf

            densecrf()  # a clear ImportError now, not one per photo
        module.eval()
        module.to(device)  # (an OnnxModule hands both to its ParsingModule and stays itself)
        self.module = module
        self.size = (int(size[0]), int(size[1]))
        self.checkpoint, self.device, self.crf, self.tta = checkpoint, device, crf, tta
        self.max_pixels, self.refocus, self.widen, self.min_share, self.keep_probs = (
            max_pixels,
            refocus,
            widen,
            min_share,
            probs,
        )
        self.merge_spec = merge
        self.timings: dict[str, float] | None = None  # a dict: seconds per pipeline stage are added to it
        # Photos per network pass: on a CPU one at a time (a batch of 4 cost 0.229 s per photo against 0.186 s one
        # by one: bench/results/stages.md); a GPU takes the whole batch.
        self.network_batch: int | None = 1 if str(device) == "cpu" else None
        self.merge = read_merge(merge) if isinstance(merge, (str, Path)) else merge
        # The network of a parse_photos call's next batch runs in a thread while this one is finished, when the
        # network has its own threads (onnxruntime): the steps after it leave a core idle (the CRF runs on one).
        self.overlap = getattr(module, "own_threads", False) and str(device) == "cpu"
        self._pool: ThreadPoolExecutor | None = None
        self._views: dict[tuple[str, ...] | None, LabelView | None] = {}
        self.view(None)  # a bad merge fails here

    @classmethod
    def load(
        cls,
        checkpoint: str | Path = "shipped",
        *,
        device: str = "auto",
        crf: str = "fast",
        tta: str = "none",
        input_size: tuple[int, int] | None = None,
        max_pixels: int = MAX_PIXELS,
        refocus: float = REFOCUS,
        widen: float = WIDEN,
        merge: str | dict[str, list[str]] | None = None,
        crf_iterations: int | None = None,
        min_share: float = MIN_SHARE,
        probs: bool = False,
        backend: str = "auto",
    ) -> Parser:
        """A parser for ``checkpoint``: ``"shipped"`` (the packaged CCP model) or a packed or Lightning checkpoint
        file. A missing file is a ``FileNotFoundError``, anything else unusable a ``CheckpointError``, each
        naming the file; a bad option a ``ValueError``. ``backend``: ``torch``, ``onnxruntime`` (CPU; the network
        exported once and cached by the checkpoint's hash) or ``auto``: onnxruntime on the CPU where it is
        installed (the ``onnx`` extra; same masks, ~15 % faster end to end, ``bench/results/predict.md``), else
        torch."""
        path = SHIPPED if str(checkpoint) == "shipped" else Path(checkpoint)
        state = read_checkpoint(path)
        module = module_from_checkpoint(state)
        if crf_iterations is not None:
            module.crf_params = CRFParams(**{**vars(module.crf_params), "iterations": crf_iterations})
        size = tuple(input_size) if input_size is not None else checkpoint_input_size(state)
        options = dict(crf=crf, tta=tta, max_pixels=max_pixels, refocus=refocus, widen=widen, merge=merge)
        device = resolve_device(device)
        if backend not in ("auto", "torch", "onnxruntime"):
            raise ValueError(f"backend {backend!r}: choose auto, torch or onnxruntime")
        if backend == "onnxruntime" and device != "cpu":
            raise ValueError("backend='onnxruntime' runs on the CPU here; on a GPU use backend='torch'")
        if backend == "onnxruntime" or (backend == "auto" and device == "cpu"):
            module = network_on_onnxruntime(module.eval(), path, required=backend == "onnxruntime")
        return cls(module, size, checkpoint=str(path), device=device, min_share=min_share, probs=probs, **options)

    def replace(self, **options: Any) -> Parser:
        """A parser sharing this one's model, with some options changed (``crf``, ``tta``, ``input_size``,
        ``max_pixels``, ``refocus``, ``widen``, ``merge``, ``min_share``, ``probs``)."""
        current = dict(
            checkpoint=self.checkpoint, device=self.device, crf=self.crf, tta=self.tta, max_pixels=self.max_pixels,
            refocus=self.refocus, widen=self.widen, merge=self.merge_spec, min_share=self.min_share,
            probs=self.keep_probs,
        )  # fmt: skip
        size = options.pop("input_size", None) or self.size
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(f"Parser.replace: unknown option(s) {sorted(unknown)}")
        return Parser(self.module, size, **{**current, **options})

    # --- labels ---------------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The names of the mask's label ids (the merge's groups, with a merge)."""
        return self._labels(self.view(None))[0]

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return self._labels(self.view(None))[1]

    def _labels(self, view: LabelView | None) -> tuple[list[str], list[tuple[int, int, int]]]:
        """The names and colours of a parse's label ids with ``view`` (None: the model's own)."""
        names, colours = (
            (view.names, view.palette) if view is not None else (self.module.class_names, self.module.palette)
        )
        return list(names), [tuple(int(c) for c in rgb) for rgb in colours]

    def garment_names(self, garments: Iterable[str]) -> list[str]:
        """User-typed garment names → the model's (case-insensitive; a ValueError with a did-you-mean)."""
        return resolve_garments(list(garments), self.module.class_names)

    def view(self, garments: Sequence[str] | None) -> LabelView | None:
        """The label view for a photo known to hold only ``garments`` (model label names), cached; None when the
        parse is in the model's own labels."""
        key = None if garments is None else tuple(sorted(set(garments)))
        if key not in self._views:
            if key is None and self.merge is None:
                self._views[key] = None
            else:
                self._views[key] = self.module.label_view(self.merge, None if key is None else list(key))
        return self._views[key]

    # --- parsing --------------------------------------------------------------------------------------------
    def __call__(self, image: ImageInput, *, garments: Sequence[str] | None = None) -> Parse:
        """Parse one photo; a ``ParseError`` (a ValueError) names an unreadable one."""
        check_input(image)  # a TypeError, not a ParseError, for what is no photo at all
        result = self.parse_inputs([image], [self._garments(garments)])[0]
        if isinstance(result, ParseError):
            raise result
        return result

    def parse_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: int = 4,
        garments: Sequence[str] | None = None,
    ) -> Iterator[Parse | ParseError]:
        """Parse photos in input order, read as they are needed, ``batch_size`` at a time through the network
        (one at a time on a CPU). A photo that cannot be read or parsed yields a ``ParseError`` in its place
        (``.ok`` is False) and the others go on."""
        tags = self._garments(garments)
        yield from self.parse_stream(((image, tags) for image in images), batch_size)

    def _garments(self, garments: Sequence[str] | None) -> list[str] | None:
        return None if garments is None else self.garment_names(garments)

    def _prepared(self, image: Any) -> Photo | ParseError:
        try:
            return self.prepare(image)
        except (DataError, TypeError) as err:
            return ParseError(describe_input(image), getattr(err, "problem", str(err)))

    def parse_inputs(self, images: Sequence[Any], garments: Sequence[Sequence[str] | None]) -> list[Parse | ParseError]:
        """Inputs (paths, PIL images, arrays) and, per input, the only garments it may hold (model label names)
        or None → their parses in order, a ``ParseError`` for each that cannot be read or parsed."""
        return list(self.parse_stream(zip(images, garments, strict=True), batch_size=max(1, len(images))))

    def prepare(self, image: ImageInput, source: str | None = None) -> Photo:
        """Any input → a ``Photo`` for ``parse_photos`` (what ``parsing-predict``'s loader workers do)."""
        return prepare(image, self.size, self.max_pixels, source)

    def parse_photos(
        self, photos: Sequence[Photo], garments: Sequence[Sequence[str] | None] | None = None
    ) -> list[Parse | ParseError]:
        """Prepared photos → their parses (one network batch on a GPU, padded bottom/right to its largest photo);
        ``garments``: per photo, the only garments it may hold (model label names), or None."""
        garments = garments if garments is not None else [None] * len(photos)
        return list(self.parse_stream(zip(photos, garments, strict=True), batch_size=max(1, len(photos))))

    def parse_stream(
        self, items: Iterable[tuple[ImageInput | Photo | ParseError, Sequence[str] | None]], batch_size: int = 4
    ) -> Iterator[Parse | ParseError]:
        """(photo, garments) pairs → their parses in order, pairs read as they are needed. A photo: anything
        ``parse_many`` takes or a ``Photo`` from ``prepare`` (e.g. made in your own loader workers); garments: the
        only ones it may hold (model label names) or None. A ``ParseError`` in place of a photo is passed through,
        and one for each photo that cannot be read or parsed. Network batches of ``batch_size`` (one photo on a
        CPU); with ``overlap`` the next batch's network runs while this one is finished."""
        step = self.network_batch or batch_size
        pending: deque[tuple[list[Any], Future | None]] = deque()  # batches in input order, their networks
        items = ((p if isinstance(p, (Photo, ParseError)) else self._prepared(p), tags) for p, tags in items)
        for batch in _batches(items, step):
            photos = [photo for photo, _ in batch if isinstance(photo, Photo)]
            ahead = self._network_thread().submit(self.network_pass, photos) if self.overlap and photos else None
            pending.append((batch, ahead))
            while len(pending) > (1 if self.overlap else 0):  # with overlap one batch's network runs ahead
                yield from self._finish_pending(*pending.popleft())
        while pending:
            yield from self._finish_pending(*pending.popleft())

    def _finish_pending(self, batch: list[Any], ahead: Future | None) -> list[Parse | ParseError]:
        photos = [photo for photo, _ in batch]
        if isinstance(photos[0], ParseError):
            return photos  # one that could not be read: a batch of its own
        network = ahead.result() if ahead is not None else self.network_pass(photos)
        return self.finish_batch(photos, [tags for _, tags in batch], *network)

    def _network_thread(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="parsing-network")
        return self._pool

    def network_pass(self, photos: Sequence[Photo]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One network batch, padded bottom/right to its largest photo → images (B, 3, H, W), logits (B, K, H, W),
        presence logits (B, K) or None: the first half of ``parse_photos``, ``finish_batch`` the second, for callers
        that run the two on threads of their own (the service)."""
        hh, ww = max(p.x.shape[1] for p in photos), max(p.x.shape[2] for p in photos)
        batch = torch.stack([F.pad(p.x, (0, ww - p.x.shape[2], 0, hh - p.x.shape[1])) for p in photos])
        with torch.inference_mode(), self._timed("network"):
            images = batch.to(self.device)  # (B, 3, H, W), padded
            return images, *self.module.infer(images, self.tta)

    def finish_batch(
        self,
        photos: Sequence[Photo],
        garments: Sequence[Any],
        images: torch.Tensor,
        logits: torch.Tensor,
        presence: torch.Tensor | None,
    ) -> list[Parse | ParseError]:
        """Each photo's own steps after the network (``network_pass``'s outputs), the padding cropped off."""
        out: list[Parse | ParseError] = []
        with torch.inference_mode():
            for i, photo in enumerate(photos):
                vh, vw = photo.x.shape[-2:]
                x, z = images[i, :, :vh, :vw], logits[i, :, :vh, :vw]  # (3, h', w'), (K, h', w'): no padding
                p = None if presence is None else presence[i]
                try:
                    out.append(self._finish(photo, x, z, p, garments[i]))
                except (ValueError, RuntimeError) as err:
                    out.append(ParseError(photo.source or "<photo>", f"{type(err).__name__}: {err}"))
        return out

    def _finish(self, photo: Photo, x: torch.Tensor, z: torch.Tensor, p: torch.Tensor | None, garments: Any) -> Parse:
        """One photo after the network: widen, decode + CRF, refocus, specks, confidence, full size."""
        module, view = self.module, self.view(garments)
        names, palette = self._labels(view)
        work = tuple(photo.image.shape[:2])  # the photo's size, or less above max_pixels
        with self._timed("widen"):
            z, wide = widened(module, x, z, self.widen, self.tta)
        with self._timed("decode + CRF"):
            labels, chosen = parse_photo(module, z, p, work, photo.image, self.crf, view)
        with self._timed("refocus"):
            labels, chosen, p, box, z_box = refocused(
                module, self.size, photo.image, labels, chosen, p, self.crf, view, self.tta, self.refocus
            )
        with self._timed("specks"):
            labels = remove_specks(labels, names, self.min_share) if self.min_share > 0 else labels
        with self._timed("confidence"):
            sure = label_confidence(labels, z, names, view, box, z_box)
        with self._timed("full size"):
            work_labels = labels.to(torch.uint8).cpu().numpy()
            full_labels = to_size(work_labels, photo.size)
        counts = np.bincount(full_labels.ravel(), minlength=len(names))
        presence = None if p is None else torch.sigmoid(p).cpu()
        presence = view.presence_probs(presence) if view is not None else presence
        probs = self._probs(z, z_box, box, work) if self.keep_probs else None
        return Parse(
            labels=full_labels,
            names=names,
            palette=palette,
            garments=[n for i, n in enumerate(names) if n not in NON_GARMENTS and counts[i] > 0],
            presence=None if presence is None else presence.float().numpy(),
            confidence={names[label]: fields for label, fields in sure.items()},
            box=None if box is None else scale_box(box, work, photo.size),
            widened=wide,
            source=photo.source,
            image=photo.image,
            work_labels=work_labels,
            probs=probs,
            settings={
                "checkpoint": self.checkpoint,
                "crf": self.crf,
                "tta": self.tta,
                "garments": None if garments is None else list(garments),
                "merge": self.merge_spec if isinstance(self.merge_spec, (str, type(None))) else "custom",
            },
        )

    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        """Add the block's seconds to ``self.timings[stage]`` when ``timings`` is a dict (``bench/stages.py``)."""
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    @staticmethod
    def _probs(
        z: torch.Tensor, z_box: torch.Tensor | None, box: tuple[int, int, int, int] | None, work: tuple[int, int]
    ) -> np.ndarray:
        """(K, h, w) float16 softmax of the model's labels at the working size (the refocused box pasted in)."""
        full = F.interpolate(z[None].float(), size=work, mode="bilinear")[0]  # (K, h, w)
        if box is not None:
            t, left, b, r = box
            full[:, t:b, left:r] = F.interpolate(z_box[None].float(), (b - t, r - left), mode="bilinear")[0]
        return full.softmax(0).half().cpu().numpy()


def _batches(items: Iterable[tuple[Any, Any]], size: int) -> Iterator[list[tuple[Any, Any]]]:
    """(photo, garments) items → lists of up to ``size`` photos in order; a ``ParseError`` item is a list of its own."""
    batch: list[tuple[Any, Any]] = []
    for item in items:
        if isinstance(item[0], ParseError):
            if batch:
                yield batch
                batch = []
            yield [item]
            continue
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
