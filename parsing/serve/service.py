"""The service's state: the parser and its variants, the dataset folder, edit sessions, the labelling queue, the
catalogue, the limits and the threads work runs on; and reading uploads (``HTTPError`` for what is not a photo)."""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request
from PIL import Image, UnidentifiedImageError

from parsing.data.io import photo_array
from parsing.inference.parser import Parser
from parsing.inference.photo import Photo, fitted
from parsing.labels import MERGES, NON_GARMENTS
from parsing.outputs.edit import resize_nearest
from parsing.outputs.parse import Parse
from parsing.serve.dataset import DuplicateError, TrainingFolder, digest, safe_stem
from parsing.serve.edits import EditSessions, read_mask
from parsing.serve.queue import PhotoQueue

MAX_IMAGE_PIXELS = 60_000_000  # larger uploads are refused before decoding (a 100-MP PNG would need 300 MB)


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def flag(name: str, value: Any) -> bool:
    """A form field's yes/no; anything else is a 422 naming the field."""
    text = str(value).strip().lower()
    if text not in TRUE + FALSE:
        raise HTTPError(422, f"{name} {value!r}: give true or false")
    return text in TRUE


def read_upload(data: bytes, max_pixels: int, max_image_pixels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """An uploaded photo → RGB (h, w, 3) at most ``max_pixels`` and its size; HTTPError for what is not one."""
    if not data:
        raise HTTPError(400, "empty upload: send a photo in the multipart field 'file'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > max_image_pixels:
                    raise HTTPError(413, f"photo of {w}×{h} pixels is over the limit of {max_image_pixels:,}")
                return photo_array(im, max_pixels)
    except UnidentifiedImageError:
        raise HTTPError(415, "not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise HTTPError(413, f"photo too large ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise HTTPError(400, f"unreadable image ({err})") from None


def thumbnail(photo: str, size: int = 240) -> str | None:
    """A catalogue photo as a small base64 JPEG, or None when it is gone."""
    try:
        with Image.open(photo) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            return b64(im, "JPEG")
    except (OSError, ValueError):
        return None


def b64(picture: Image.Image, fmt: str) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Service:
    """The parser and its variants (merge, CRF), the dataset folder and the limits, shared by the routes."""

    def __init__(
        self,
        parser: Parser,
        dataset: Path | None = None,
        max_upload_mb: float = 20.0,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
        token: str | None = None,
        save_needs_token: bool = False,
        photos: Path | None = None,
        catalogue: Path | None = None,
    ) -> None:
        self.parser, self.max_upload = parser, int(max_upload_mb * 1024 * 1024)
        self.max_image_pixels, self.token, self.save_needs_token = max_image_pixels, token, save_needs_token
        self.folder = TrainingFolder(dataset, parser.names, parser.palette) if dataset is not None else None
        self._variants: dict[tuple[str | None, str, bool], Parser] = {}
        self.edits = EditSessions()
        self.queue = PhotoQueue(photos, self.folder) if photos is not None else None
        self.catalogue = None
        if catalogue is not None:
            from parsing.search import Catalogue

            self.catalogue = Catalogue.open(catalogue)  # its own torch parser (search vectors), made on first use
        # One thread parses, one photo at a time (few threads keep the big buffers in few malloc arenas: parses on
        # the web server's many threads grew the process by ~0.8 GB in 200 requests; bench/serve.py). The network
        # runs on the parser's own network thread where it overlaps (onnxruntime), else on this one.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
        self.editor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edit")  # clicks never wait for parses
        self.searcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        if self.queue is not None:  # score the folder's photos on the parse thread whenever the server is idle
            self.queue.start(self.variant(None, None, editable=True), self.worker.submit)

    def variant(self, merge: str | None, crf: str | None, editable: bool = False) -> Parser:
        """The parser with a request's ``merge`` (a preset: files are not read), ``crf`` and ``editable``, made
        once."""
        if merge is not None and merge not in MERGES:
            raise HTTPError(422, f"merge {merge!r}: choose one of {', '.join(MERGES)} (files are not read)")
        if editable and merge is not None:
            raise HTTPError(422, "edit=true edits the model's own labels (what a dataset holds): drop merge")
        key = (merge, crf or self.parser.options.crf, editable)
        if key not in self._variants:
            try:
                merged = merge or (None if editable else self.parser.options.merge)
                self._variants[key] = self.parser.replace(merge=merged, crf=key[1], editable=editable)
            except (ValueError, ImportError) as err:
                raise HTTPError(422, str(err)) from None
        return self._variants[key]

    def prepare(self, data: bytes, filename: str | None, form: dict[str, Any]) -> tuple[Parser, Photo, Any]:
        """An upload and its form → the parser variant, the photo read and fitted, and its garments (or None)."""
        editable = flag("edit", form.get("edit", "false"))
        parser = self.variant(form.get("merge") or None, form.get("crf") or None, editable)
        garments = [g for g in str(form.get("garments") or "").split(",") if g.strip()] or None
        try:
            garments = None if garments is None else parser.garment_names(garments)
        except ValueError as err:
            raise HTTPError(422, str(err)) from None
        image, size = read_upload(data, parser.options.max_pixels, self.max_image_pixels)
        return parser, fitted(image, size, parser.size, safe_stem(filename, "upload")), garments  # one decode

    async def parse(self, data: bytes, filename: str | None, form: dict[str, Any]) -> Parse:
        """Read on the parse thread, the network on the network thread, the rest on the parse thread again: one
        request's network runs while the one before is finished (with onnxruntime, which has its own threads)."""
        parser, photo, garments = await in_thread(self.worker, self.prepare, data, filename, form)
        network = await in_thread(parser.network_executor if parser.overlap else self.worker, parser.forward, [photo])
        result = (await in_thread(self.worker, parser.postprocess, [photo], [garments], *network))[0]
        if not result.ok:
            raise HTTPError(400, result.problem)
        return result

    def save(self, data: bytes, mask: bytes, name: str | None, replace: bool = False) -> dict[str, Any]:
        """A photo and the mask sent with it → the pair in the dataset folder, exactly that mask; 409 for a photo
        saved before unless ``replace``."""
        image, size = read_upload(data, self.parser.options.max_pixels, self.max_image_pixels)
        labels = read_mask(mask, size)
        names = self.parser.spec.class_names
        if int(labels.max(initial=0)) >= len(names):
            raise HTTPError(422, f"mask holds label id {int(labels.max())}: the model has {len(names)} labels")
        work = labels if image.shape[:2] == labels.shape else resize_nearest(labels, image.shape[:2])
        try:
            paths = self.folder.save(image, work, name, digest(data), replace)
        except DuplicateError as err:
            raise HTTPError(409, str(err)) from None
        present = np.bincount(labels.ravel(), minlength=len(names))
        return {**paths, "garments": [n for i, n in enumerate(names) if present[i] and n not in NON_GARMENTS]}

    def search(self, query: Any, garment: str | None, colour: str | None, k: int, thumbnails: bool) -> dict[str, Any]:
        """A catalogue search → its JSON answer (HTTPError 422 for a garment or colour it does not know)."""
        try:
            hits = self.catalogue.search(query, garment=garment, colour=colour, k=k)
        except ValueError as err:
            raise HTTPError(422, str(err)) from None
        out = []
        for hit in hits:
            row = hit.to_dict()
            if thumbnails:
                row["thumbnail_jpeg"] = thumbnail(hit.photo)
            out.append(row)
        return {"hits": out, "catalogue": len(self.catalogue)}

    def check_token(self, request: Request, form: dict[str, Any]) -> None:
        if not self.save_needs_token and self.token is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or str(form.get("token", ""))
        if self.token is None or not hmac.compare_digest(given, self.token):
            raise HTTPError(401, "saving needs the server's token (Authorization: Bearer TOKEN)")


async def in_thread(pool: ThreadPoolExecutor, function: Any, *args: Any) -> Any:
    """Run ``function`` on one of the service's threads without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
