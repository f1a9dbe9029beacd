"""The HTTP service: ``POST /parse``, ``POST /edit``, ``POST /save``, ``GET /labels``, ``GET /healthz`` and the
studio at ``/``.

One ``Parser`` per process (``parsing serve --workers N`` starts N processes), parses one photo at a time (the
network already uses every core it is given), the next request's network pass beside it where the network runs on
onnxruntime; edits run on a thread of their own, so a click never waits for another user's parse.

Every error is JSON ``{"error": …}`` with a 4xx status: 400 for an empty or unreadable upload, 415 for something
that is not an image, 413 for a body over ``max_upload_mb`` or a photo over ``max_image_pixels`` (checked before it
is decoded), 422 for unknown garment names or options, 401 for a save without the token the server asks for, 404
for an edit session no longer open, 409 for a photo saved before.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import html
import io
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException

from parsing.data.io import photo_array
from parsing.inference.parser import Parser
from parsing.inference.photo import Photo, fitted
from parsing.labels import MERGES, NON_GARMENTS
from parsing.outputs.edit import resize_nearest
from parsing.outputs.parse import Parse
from parsing.serve.dataset import DuplicateError, TrainingFolder, digest, safe_stem
from parsing.serve.edits import EditError, EditSessions, read_mask
from parsing.serve.queue import PhotoQueue

MAX_IMAGE_PIXELS = 60_000_000  # larger uploads are refused before decoding (a 100-MP PNG would need 300 MB)
STUDIO = resources.files("parsing.serve") / "studio"


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _flag(name: str, value: Any) -> bool:
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


def parse_response(parse: Parse, overlay: bool, cutouts: bool) -> dict[str, Any]:
    """The ``summary.jsonl`` record plus ``mask_png`` (base64 palette PNG at the photo's size), and when asked
    ``overlay_jpeg`` and ``cutouts`` (garment → base64 RGBA PNG)."""
    out = parse.to_dict(pieces=True)
    out["names"] = parse.names
    out["palette"] = [list(c) for c in parse.palette]
    out["mask_png"] = _b64(parse.mask_image(), "PNG")
    if overlay:
        out["overlay_jpeg"] = _b64(parse.overlay(), "JPEG")
    if cutouts:
        out["cutouts"] = {name: _b64(picture, "PNG") for name, picture in parse.cutouts().items()}
    return out


def edit_response(key: str, parse: Parse, region: np.ndarray | None) -> dict[str, Any]:
    """``/edit``'s answer: the new mask and the labels' shares, or a preview's region."""
    if region is not None:
        return {"id": key, "region_png": _b64(Image.fromarray(region), "PNG"), "pixels": int(region.sum())}
    record = parse.to_dict()
    return {
        "id": key,
        "mask_png": _b64(parse.mask_image(), "PNG"),
        "labels": record["labels"],
        "outfit": record["outfit"],
        "edits": parse.settings.get("edits", 0),
    }


def _b64(picture: Image.Image, fmt: str) -> str:
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
    ) -> None:
        self.parser, self.max_upload = parser, int(max_upload_mb * 1024 * 1024)
        self.max_image_pixels, self.token, self.save_needs_token = max_image_pixels, token, save_needs_token
        self.folder = TrainingFolder(dataset, parser.names, parser.palette) if dataset is not None else None
        self._variants: dict[tuple[str | None, str, bool], Parser] = {}
        self.edits = EditSessions()
        self.queue = PhotoQueue(photos, self.folder) if photos is not None else None
        # One thread parses, one photo at a time (few threads keep the big buffers in few malloc arenas: parses on
        # the web server's many threads grew the process by ~0.8 GB in 200 requests; bench/serve.py). The network
        # runs on the parser's own network thread where it overlaps (onnxruntime), else on this one.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
        self.editor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edit")  # clicks never wait for parses
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
        editable = _flag("edit", form.get("edit", "false"))
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
        parser, photo, garments = await _in_thread(self.worker, self.prepare, data, filename, form)
        network = await _in_thread(parser.network_executor if parser.overlap else self.worker, parser.forward, [photo])
        result = (await _in_thread(self.worker, parser.postprocess, [photo], [garments], *network))[0]
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

    def check_token(self, request: Request, form: dict[str, Any]) -> None:
        if not self.save_needs_token and self.token is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or str(form.get("token", ""))
        if self.token is None or not hmac.compare_digest(given, self.token):
            raise HTTPError(401, "saving needs the server's token (Authorization: Bearer TOKEN)")


def create_app(service: Service) -> FastAPI:
    from parsing import __version__

    app = FastAPI(
        title="parsing",
        description="Clothing parsing: masks, garments, corrections as training data",
        version=__version__,
        docs_url=None,  # Swagger UI loads from a CDN: /docs is a page of our own, offline
        redoc_url=None,
    )

    @app.exception_handler(HTTPError)
    async def http_error(_: Request, err: HTTPError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(EditError)
    async def edit_error(_: Request, err: EditError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def route_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        """404, 405 …: the same ``{"error": …}`` as every other answer."""
        message = f"{request.method} {request.url.path}: {err.detail}"
        return JSONResponse({"error": message}, status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(api_page(app.openapi()))

    @app.middleware("http")
    async def body_limit(request: Request, call_next: Any) -> Any:
        if service.queue is not None and request.url.path not in ("/queue", "/healthz"):
            service.queue.last_request = time.monotonic()  # the queue scores photos only when nobody waits
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > service.max_upload:
            limit = service.max_upload / 1024 / 1024
            return JSONResponse({"error": f"upload over the limit of {limit:g} MB"}, status_code=413)
        return await call_next(request)

    async def multipart(request: Request) -> tuple[dict[str, tuple[bytes, str | None]], dict[str, Any]]:
        """A multipart form → its files (name → (bytes, filename)) and its text fields."""
        try:
            form = await request.form()
        except Exception as err:  # a malformed multipart body: the parser's own exceptions vary
            raise HTTPError(400, f"expected a multipart form ({err})") from None
        files = {}
        for name, value in form.items():
            if not isinstance(value, str):
                files[name] = (await value.read(service.max_upload + 1), value.filename)
                if len(files[name][0]) > service.max_upload:
                    raise HTTPError(413, f"upload over the limit of {service.max_upload / 1024 / 1024:g} MB")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        await form.close()  # its spooled upload files
        return files, fields

    async def upload(request: Request) -> tuple[bytes, str | None, dict[str, Any], dict[str, Any]]:
        """A form with a photo → its bytes, file name, text fields and every file."""
        files, fields = await multipart(request)
        if "file" not in files:
            raise HTTPError(400, "no photo: send it in the multipart field 'file'")
        return *files["file"], fields, files

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/labels")
    def labels() -> dict[str, Any]:
        names, palette = service.parser.names, service.parser.palette
        return {
            "labels": [{"id": i, "name": n, "colour": list(palette[i])} for i, n in enumerate(names)],
            "garments": [n for n in service.parser.spec.class_names if n not in NON_GARMENTS],
            "merges": list(MERGES),
            "dataset": service.folder is not None,
            "token_required": service.token is not None or service.save_needs_token,
            "queue": service.queue is not None,
        }

    @app.get("/queue")
    def queue() -> dict[str, Any]:
        """The labelling queue (``--photos DIR``): its photos, unsaved ones first, the network's most unsure first
        (``uncertainty``, scored in the background), with ``done`` / ``remaining`` counts."""
        if service.queue is None:
            raise HTTPError(404, "no labelling queue: start the server with --photos DIR --dataset OUT")
        return service.queue.listing()

    @app.get("/photos/{name:path}")
    def queue_photo(name: str) -> FileResponse:
        """One photo of the queue, by its name in ``/queue`` (no other file is served)."""
        if service.queue is not None:
            try:
                return FileResponse(str(service.queue.path(name)))
            except KeyError:
                pass
        raise HTTPError(404, f"{name!r} is not a photo of the labelling queue")

    @app.post("/parse")
    async def parse(request: Request) -> dict[str, Any]:
        """Multipart ``file`` (a photo); optional ``garments`` (comma list), ``merge``, ``crf``, ``overlay``,
        ``cutouts``. Answers the summary record, ``mask_png`` and, when asked, ``overlay_jpeg`` / ``cutouts``."""
        data, filename, form, _ = await upload(request)
        overlay, cutouts = (_flag(name, form.get(name, "false")) for name in ("overlay", "cutouts"))  # before parsing
        result = await service.parse(data, filename, form)
        answer = await _in_thread(service.worker, parse_response, result, overlay, cutouts)
        if result.edit is not None:
            answer["edit_id"] = service.edits.open(result)
            service.editor.submit(result.edit.prepare)  # the superpixels, before the first click needs them
        return answer

    @app.post("/edit")
    async def edit(request: Request) -> dict[str, Any]:
        """Multipart ``id`` (from ``/parse`` with ``edit=true``) and ``op``: ``click`` / ``preview`` (``x``, ``y``
        in the photo's pixels, ``label``), ``paint`` (``label`` + ``mask``: a PNG, non-zero = the stroke, resized
        to the photo) or ``set`` (``mask``: a PNG of label ids at the photo's size, e.g. an undo). Answers the new
        ``mask_png`` and the labels' shares; ``preview`` answers ``region_png`` (white = what the click takes)."""
        files, form = await multipart(request)
        mask = files.get("mask", (None, None))[0]
        op, key = str(form.get("op", "")), str(form.get("id", ""))
        parse, region = await _in_thread(service.editor, service.edits.apply, key, op, form, mask)
        return await _in_thread(service.editor, edit_response, key, parse, region)

    @app.post("/save")
    async def save(request: Request) -> dict[str, Any]:
        """Multipart ``file`` (the photo) + ``mask`` (a PNG of the model's label ids at the photo's size: what the
        studio shows) (+ ``name``): add exactly that pair to the dataset folder (``--dataset``); nothing is
        parsed. The same photo again is a 409 unless ``replace=true`` (then its pair is overwritten)."""
        if service.folder is None:
            raise HTTPError(404, "no dataset folder: start the server with --dataset DIR to save")
        data, filename, form, files = await upload(request)
        service.check_token(request, form)
        if "mask" not in files:
            raise HTTPError(422, "send the mask to save: a PNG of label ids in the field 'mask' (/save never parses)")
        name, replace = form.get("name") or filename, _flag("replace", form.get("replace", "false"))
        paths = await _in_thread(service.worker, service.save, data, files["mask"][0], name, replace)
        return {"saved": paths, "garments": paths.pop("garments"), "dataset": str(service.folder.root)}

    @app.get("/", include_in_schema=False)
    def studio() -> FileResponse:
        return FileResponse(str(STUDIO / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STUDIO)), name="static")
    return app


async def _in_thread(pool: ThreadPoolExecutor, function: Any, *args: Any) -> Any:
    """Run ``function`` on one of the service's threads without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(pool, function, *args)


def api_page(schema: dict[str, Any]) -> str:
    """The OpenAPI schema as one plain HTML page (no scripts, nothing fetched): each route, its summary and fields."""
    rows = []
    for path, methods in schema.get("paths", {}).items():
        for method, spec in methods.items():
            text = html.escape(spec.get("description") or spec.get("summary") or "")
            rows.append(f"<h3><code>{method.upper()} {html.escape(path)}</code></h3><p>{text}</p>")
    title = f"{html.escape(schema['info']['title'])} {html.escape(schema['info']['version'])}"
    return (
        f"<!doctype html><meta charset=utf-8><title>{title} API</title><h1>{title} API</h1>"
        f"<p>The machine-readable schema: <a href=/openapi.json>/openapi.json</a>. Errors are JSON "
        f'<code>{{"error": …}}</code> with a 4xx status.</p>{"".join(rows)}'
    )
