"""``Parser``: the one parse pipeline, behind the library, ``parsing-predict``, the service and the Ray job.

    from parsing import Parser

    parser = Parser.load()                    # the shipped model; or Parser.load("my.ckpt", crf="none")
    parse = parser("photo.jpg")               # a path, a PIL image or a numpy array
    parse.garments, parse.labels.shape        # ['dress', 'shoes'], (H, W)
    parse.overlay().save("overlay.jpg")
    for parse in parser.parse_many(paths, batch_size=4):
        if parse.ok: ...                      # else a ParseError naming the photo and the problem

Three stages, as a Hugging Face pipeline: ``preprocess`` (any input → a ``Photo`` fitted into the network box),
``forward`` (a batch of photos through the ``Backend``) and ``postprocess`` (per photo: ``widen`` — a close-up also
parsed on a wider canvas — exclusive-pair decoding and the CRF at the photo's size, ``refocus`` — a small person
parsed again in a box — garments below ``min_share`` removed, confidence, the mask at the photo's own size).
``parse_stream`` is the one loop over them; every other call goes through it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from parsing.box import scale_box
from parsing.data.io import DataError
from parsing.inference.confidence import label_confidence, sampled_probs
from parsing.inference.crf import argmax
from parsing.inference.crf_dense import densecrf
from parsing.inference.decode import parse_photo
from parsing.inference.kept import edit_hints, embed, photo_probs
from parsing.inference.label_view import LabelView, read_merge, resolve_garments
from parsing.inference.options import ParseOptions
from parsing.inference.photo import ImageInput, ParseError, Photo, check_input, describe_input, prepare, to_size
from parsing.inference.refocus import refocused, widened
from parsing.inference.specks import remove_specks
from parsing.inference.stream import NetworkThread, ReadsPlacement, batches
from parsing.labels import NON_GARMENTS
from parsing.model.backends import Backend, TorchBackend, resolve_device
from parsing.model.checkpoint import checkpoint_path
from parsing.model.load import load_backend
from parsing.model.parsing_model import ParsingModel
from parsing.outputs.edit import EditBase
from parsing.outputs.parse import Parse

__all__ = ["ParseError", "ParseOptions", "Parser"]


class Parser:
    """A backend that runs a model's network (``backend.spec``: its labels, pairs, decoding) and the pipeline's
    ``ParseOptions``; call it on a photo, or ``parse_many`` on many. Use ``Parser.load`` (or ``Parser(backend)``,
    ``Parser(model)`` for a ``ParsingModel`` of your own); ``replace`` makes a variant with other options.

    ``overlap``: in ``parse_stream`` (and so ``parse_many``), the next photo's network runs on a thread while this
    one is finished; on where the network has its own threads (onnxruntime on the CPU).

    A Parser may be shared between threads: the model and the backend are only read, the label-view cache is
    locked, and with ``overlap`` every call's network runs on the one network thread. ``timings`` (a bench's
    stage clock) is the one thing not meant for concurrent calls.
    """

    def __init__(
        self,
        backend: Backend | ParsingModel,
        options: ParseOptions | None = None,
        *,
        checkpoint: str = "",
        _network: NetworkThread | None = None,
    ) -> None:
        self.backend = backend if isinstance(backend, Backend) else TorchBackend(backend)
        self.spec = self.backend.spec  # labels, exclusive pairs, decoding, network box
        self.options = options if options is not None else ParseOptions()
        self.checkpoint = checkpoint
        if self.options.crf == "dense":
            densecrf()  # a clear ImportError now, not one per photo
        self.size: tuple[int, int] = self.options.input_size or self.spec.input_size
        self.crf_params = self.options.crf_params()
        merge = self.options.merge
        self.merge = read_merge(merge) if isinstance(merge, (str, Path)) else merge
        self.timings: dict[str, float] | None = None  # a dict: seconds per pipeline stage are added to it
        cpu = self.backend.device.type == "cpu"
        # Photos per network pass: on a CPU one at a time (a batch of 4 cost 0.229 s per photo against 0.186 s one
        # by one: bench/results/stages.md); a GPU takes the whole batch.
        self.network_batch: int | None = 1 if cpu else None
        # The next photo's network runs while this one is finished when the network has threads of its own
        # (onnxruntime): the steps after it leave a core idle (the CRF runs on one).
        self.overlap = self.backend.own_threads and cpu
        self._network = _network or NetworkThread()
        self._views: dict[tuple[str, ...] | None, LabelView | None] = {}
        self._views_lock = threading.Lock()
        self.view(None)  # a bad merge fails here

    @classmethod
    def load(
        cls,
        checkpoint: str | Path = "shipped",
        *,
        device: str = "auto",
        backend: str = "auto",
        precision: str = "auto",
        options: ParseOptions | None = None,
        **changes: Any,
    ) -> Parser:
        """A parser for ``checkpoint``: ``"shipped"`` (the packaged CCP model) or a packed or ``fit`` checkpoint
        file; ``options`` (a ``ParseOptions``) and/or ``changes``: any of its fields by name. A missing file is a
        ``FileNotFoundError``, anything else unusable a ``CheckpointError``, each naming the file; a bad option a
        ``ValueError`` (an unknown one a ``TypeError``). ``backend``: ``torch``, ``onnxruntime`` (CPU; the network
        exported once and cached by the checkpoint's hash), ``openvino`` or ``auto`` (``parsing.model.load_backend``:
        OpenVINO ``int8`` on a CPU with VNNI or AMX, else onnxruntime where installed, else torch); ``auto`` with
        ``embed`` is torch (search features come from the torch network). ``precision``: ``auto``, ``fp32`` (fp32
        whatever the CPU), ``int8`` (encoder fp32, decoder int8), ``mixed`` (decoder bf16) or ``bf16``."""
        parse_options = (options or ParseOptions()).replace(**changes)
        if parse_options.embed and backend == "auto":
            backend = "torch"
        path = checkpoint_path(checkpoint)
        network = load_backend(path, backend, resolve_device(device), precision)
        return cls(network, parse_options, checkpoint=str(path))

    def replace(self, **options: Any) -> Parser:
        """A parser sharing this one's model, backend and network thread, with some ``ParseOptions`` changed."""
        new = self.options.replace(**options)
        return Parser(self.backend, new, checkpoint=self.checkpoint, _network=self._network)

    def __repr__(self) -> str:
        changed = {k: v for k, v in vars(self.options).items() if v != ParseOptions.__dataclass_fields__[k].default}
        shown = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"Parser({self.checkpoint or 'model'!r}, backend={self.backend.name}{', ' if shown else ''}{shown})"

    @property
    def model(self) -> ParsingModel:
        """The torch model (with onnxruntime: built from the checkpoint on first use)."""
        return self.backend.model

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
        own = (self.spec.class_names, self.spec.palette)
        names, colours = (view.names, view.palette) if view is not None else own
        return list(names), [tuple(int(c) for c in rgb) for rgb in colours]

    def garment_names(self, garments: Iterable[str]) -> list[str]:
        """User-typed garment names → the model's (case-insensitive; a ValueError with a did-you-mean)."""
        return resolve_garments(list(garments), self.spec.class_names)

    def view(self, garments: Sequence[str] | None) -> LabelView | None:
        """The label view for a photo known to hold only ``garments`` (model label names), cached; None when the
        parse is in the model's own labels."""
        key = None if garments is None else tuple(sorted(set(garments)))
        with self._views_lock:
            if key not in self._views:
                model, tags = self.spec, None if key is None else list(key)
                self._views[key] = (
                    None
                    if key is None and self.merge is None
                    else LabelView.build(model.class_names, model.palette, model.exclusive, self.merge, tags)
                )
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
        if isinstance(images, (str, Path, Image.Image, np.ndarray)):
            raise TypeError(
                f"parse_many takes many photos (a list, a generator…), not one {type(images).__name__}: "
                f"use parser(photo) for one photo, or parse_many([photo])"
            )
        tags = self._garments(garments)
        return self.parse_stream(((image, tags) for image in images), batch_size)

    def _plain(self, garments: Sequence[str] | None) -> bool:
        """Whether a photo with these garments is decoded in the model's own labels (no label view)."""
        try:
            view = self.view(garments)
        except (ValueError, RuntimeError):  # bad garments: that photo's ParseError, when it is finished
            return False
        return view is None or view.identity

    def _garments(self, garments: Sequence[str] | None) -> list[str] | None:
        return None if garments is None else self.garment_names(garments)

    def _prepared(self, image: Any) -> Photo | ParseError:
        try:
            return self.preprocess(image)
        except (DataError, TypeError) as err:
            return ParseError(describe_input(image), getattr(err, "problem", str(err)))

    def parse_inputs(self, images: Sequence[Any], garments: Sequence[Sequence[str] | None]) -> list[Parse | ParseError]:
        """Inputs (paths, PIL images, arrays) and, per input, the only garments it may hold (model label names)
        or None → their parses in order, a ``ParseError`` for each that cannot be read or parsed."""
        return list(self.parse_stream(zip(images, garments, strict=True), batch_size=max(1, len(images))))

    def parse_stream(
        self, items: Iterable[tuple[ImageInput | Photo | ParseError, Sequence[str] | None]], batch_size: int = 4
    ) -> Iterator[Parse | ParseError]:
        """(photo, garments) pairs → their parses in order, pairs read as they are needed. A photo: anything
        ``parse_many`` takes or a ``Photo`` from ``preprocess`` (e.g. made in your own loader workers); garments:
        the only ones it may hold (model label names) or None. A ``ParseError`` in place of a photo is passed
        through, and one for each photo that cannot be read or parsed. Network batches of ``batch_size`` (one photo
        on a CPU); with ``overlap`` the next batch's network runs while this one is finished."""
        step = self.network_batch or batch_size
        pending: deque[tuple[list[Any], Future | None]] = deque()  # batches in input order, their networks
        reads = ReadsPlacement()  # the first reads on the network thread, or on this one when it waits for it
        items = ((p if isinstance(p, (Photo, ParseError)) else self._prepared(p), tags) for p, tags in items)
        for batch in batches(items, step):
            photos = [photo for photo, _ in batch if isinstance(photo, Photo)]
            ahead = None
            if self.overlap and photos:  # and the first reads of the photos decoded without a label view
                plain = [reads.on_network and self._plain(t) for photo, t in batch if isinstance(photo, Photo)]
                ahead = self.network_executor.submit(self.forward, photos, self.backend.for_stream(), plain)
            pending.append((batch, ahead))
            while len(pending) > (1 if self.overlap else 0):  # with overlap one batch's network runs ahead
                yield from self._finish_pending(*pending.popleft(), reads)
        while pending:
            yield from self._finish_pending(*pending.popleft(), reads)

    def _finish_pending(self, batch: list[Any], ahead: Future | None, reads: ReadsPlacement) -> list[Any]:
        photos = [photo for photo, _ in batch]
        if isinstance(photos[0], ParseError):
            return photos  # one that could not be read: a batch of its own
        network = reads.result(ahead) if ahead is not None else self.forward(photos)
        return self.postprocess(photos, [tags for _, tags in batch], *network)

    @property
    def network_executor(self) -> ThreadPoolExecutor:
        """The one thread the network runs on when it overlaps (shared with ``replace``d variants)."""
        return self._network.executor()

    # --- the three stages -------------------------------------------------------------------------------------
    def preprocess(self, image: ImageInput, source: str | None = None) -> Photo:
        """Any input → a ``Photo`` fitted into the network box (what ``parsing-predict``'s loader workers do)."""
        return prepare(image, self.size, self.options.max_pixels, source)

    def forward(
        self, photos: Sequence[Photo], backend: Backend | None = None, first_reads: Sequence[bool] = ()
    ) -> tuple[Any, ...]:
        """One network batch, padded bottom/right to its largest photo → images (B, 3, H, W), logits (B, K, H, W),
        presence logits (B, K) or None, and with ``embed`` the search features (decoder features, outfit hidden
        layer) or None, and for the photos whose ``first_reads`` is true their argmax and sampled softmax (what
        decoding reads first: a stream computes them on its network thread, which waits less than the decoding
        thread, 96 → 89 ms a photo on 2 cores) or None — the inputs of ``postprocess``. ``backend``: another view
        of the parser's (a stream's)."""
        backend = backend or self.backend
        hh, ww = max(p.x.shape[1] for p in photos), max(p.x.shape[2] for p in photos)
        batch = torch.stack([F.pad(p.x, (0, ww - p.x.shape[2], 0, hh - p.x.shape[1])) for p in photos])
        with torch.inference_mode(), self._timed("network"):
            images = batch.to(backend.device)  # (B, 3, H, W), padded
            features = None
            if self.options.embed:
                logits, presence, *features = backend.embed(images, self.options.tta)
            else:
                logits, presence = backend.infer(images, self.options.tta)
            reads = None
            if any(first_reads):
                crops = [logits[i, :, : p.x.shape[1], : p.x.shape[2]] for i, p in enumerate(photos)]  # (K, h', w')
                wanted = zip(crops, first_reads, strict=True)
                reads = [(argmax(z, 0), sampled_probs(z)) if want else None for z, want in wanted]
            return images, logits, presence, None if features is None else tuple(features), reads

    def postprocess(
        self,
        photos: Sequence[Photo],
        garments: Sequence[Any],
        images: torch.Tensor,
        logits: torch.Tensor,
        presence: torch.Tensor | None,
        features: tuple[torch.Tensor | None, ...] | None = None,
        reads: list[tuple[torch.Tensor, torch.Tensor] | None] | None = None,
    ) -> list[Parse | ParseError]:
        """Each photo's own steps after the network (``forward``'s outputs), the padding cropped off."""
        out: list[Parse | ParseError] = []
        with torch.inference_mode():
            for i, photo in enumerate(photos):
                vh, vw = photo.x.shape[-2:]
                x, z = images[i, :, :vh, :vw], logits[i, :, :vh, :vw]  # (3, h', w'), (K, h', w'): no padding
                p = None if presence is None else presence[i]
                mine = None
                if features is not None:  # (C, h'/4, w'/4) decoder features, (D,) hidden layer or None
                    decoded, hidden = features
                    mine = (decoded[i, :, : -(-vh // 4), : -(-vw // 4)], None if hidden is None else hidden[i])
                try:
                    out.append(self._finish(photo, x, z, p, garments[i], mine, reads and reads[i]))
                except (ValueError, RuntimeError) as err:
                    out.append(ParseError(photo.source or "<photo>", f"{type(err).__name__}: {err}"))
        return out

    def _finish(
        self,
        photo: Photo,
        x: torch.Tensor,
        z: torch.Tensor,
        p: torch.Tensor | None,
        garments: Any,
        features: Any,
        reads: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Parse:
        """One photo after the network: widen, decode + CRF, refocus, specks, confidence, full size."""
        opts, backend, view = self.options, self.backend, self.view(garments)
        names, palette = self._labels(view)
        work = tuple(photo.image.shape[:2])  # the photo's size, or less above max_pixels
        with self._timed("widen"):
            z, wide = widened(backend, x, z, opts.widen, opts.tta)
            top, cells = reads if reads and not wide else (None, None)  # (h', w'), (h'/2, w'/2, K) of these logits
        with self._timed("decode + CRF"):
            plain = view is None or view.identity  # the view in hand: ``_plain`` would look it up again
            cells = (sampled_probs(z) if cells is None else cells) if plain else None  # shared with confidence
            labels, chosen = parse_photo(
                self.spec, z, p, work, photo.image, opts.crf, view, self.crf_params, cells, top
            )
        with self._timed("refocus"):
            labels, chosen, p, box, z_box = refocused(
                backend, self.size, photo.image, labels, chosen, p, opts.crf, view, opts.tta, opts.refocus,
                self.crf_params,
            )  # fmt: skip
        with self._timed("specks"):
            labels = remove_specks(labels, names, opts.min_share) if opts.min_share > 0 else labels
        with self._timed("confidence"):
            sure = label_confidence(labels, z, names, view, box, z_box, sampled=cells)
        with self._timed("full size"):
            work_labels = labels.to(torch.uint8).cpu().numpy()
            full_labels = to_size(work_labels, photo.size)
        counts = np.bincount(full_labels.ravel(), minlength=len(names))
        presence = None if p is None else torch.sigmoid(p).cpu()
        presence = view.presence_probs(presence) if view is not None else presence
        probs = photo_probs(z, z_box, box, work) if opts.probs else None
        hints = edit_hints(z, z_box, box, work, view, len(names)) if opts.editable else None
        embedding = None
        if features is not None:
            with self._timed("embed"):
                embedding = embed(work_labels, photo.image, features, presence, names, photo.size)
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
            edit=EditBase.of(photo.image, hints) if opts.editable else None,
            embedding=embedding,
            settings={
                "checkpoint": self.checkpoint,
                "crf": opts.crf,
                "tta": opts.tta,
                "garments": None if garments is None else list(garments),
                "merge": opts.merge if isinstance(opts.merge, (str, type(None))) else "custom",
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
