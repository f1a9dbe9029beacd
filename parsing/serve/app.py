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

import html
import time
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from parsing.labels import MERGES, NON_GARMENTS
from parsing.outputs.parse import Parse
from parsing.serve.edits import EditError
from parsing.serve.service import HTTPError, Service, b64, flag, in_thread, read_upload

__all__ = ["HTTPError", "Service", "create_app", "read_upload"]
STUDIO = resources.files("parsing.serve") / "studio"


def parse_response(parse: Parse, overlay: bool, cutouts: bool) -> dict[str, Any]:
    """The ``summary.jsonl`` record plus ``mask_png`` (base64 palette PNG at the photo's size), and when asked
    ``overlay_jpeg`` and ``cutouts`` (garment → base64 RGBA PNG)."""
    out = parse.to_dict(pieces=True)
    out["names"] = parse.names
    out["palette"] = [list(c) for c in parse.palette]
    out["mask_png"] = b64(parse.mask_image(), "PNG")
    if overlay:
        out["overlay_jpeg"] = b64(parse.overlay(), "JPEG")
    if cutouts:
        out["cutouts"] = {name: b64(picture, "PNG") for name, picture in parse.cutouts().items()}
    return out


def edit_response(key: str, parse: Parse, region: np.ndarray | None) -> dict[str, Any]:
    """``/edit``'s answer: the new mask and the labels' shares, or a preview's region."""
    if region is not None:
        return {"id": key, "region_png": b64(Image.fromarray(region), "PNG"), "pixels": int(region.sum())}
    record = parse.to_dict()
    return {
        "id": key,
        "mask_png": b64(parse.mask_image(), "PNG"),
        "labels": record["labels"],
        "outfit": record["outfit"],
        "edits": parse.settings.get("edits", 0),
    }


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
        """Up, and what answers: the package version and the network (backend and precision ``auto`` chose)."""
        return {"status": "ok", "version": __version__, "network": repr(service.parser.backend)}

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
            "catalogue": None if service.catalogue is None else len(service.catalogue),
        }

    @app.post("/search")
    async def search(request: Request) -> dict[str, Any]:
        """The catalogue (``--catalogue DIR``): multipart ``file`` (a query photo; optional), ``garment`` (a garment
        of it to find, or without a photo: photos with it), ``colour`` (a name or #hex), ``k`` (10),
        ``thumbnails`` (true: each hit with a ``thumbnail_jpeg``). Answers ``hits`` (rank, photo, garment, score,
        box)."""
        if service.catalogue is None:
            raise HTTPError(404, "no catalogue: start the server with --catalogue DIR (made by parsing index)")
        files, form = await multipart(request)
        thumbnails = flag("thumbnails", form.get("thumbnails", "false"))
        try:
            k = int(form.get("k", 10))
        except ValueError:
            raise HTTPError(422, f"k {form.get('k')!r}: give a whole number") from None
        if not 1 <= k <= 100:
            raise HTTPError(422, f"k {k}: give 1 to 100")
        query = None
        if "file" in files:
            query, _ = read_upload(files["file"][0], service.parser.options.max_pixels, service.max_image_pixels)
        garment, colour = form.get("garment") or None, form.get("colour") or None
        if query is None and garment is None and colour is None:
            raise HTTPError(400, "search needs a photo (multipart 'file'), a garment or a colour")
        return await in_thread(service.searcher, service.search, query, garment, colour, k, thumbnails)

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
        overlay, cutouts = (flag(name, form.get(name, "false")) for name in ("overlay", "cutouts"))  # before parsing
        result = await service.parse(data, filename, form)
        answer = await in_thread(service.worker, parse_response, result, overlay, cutouts)
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
        parse, region = await in_thread(service.editor, service.edits.apply, key, op, form, mask)
        return await in_thread(service.editor, edit_response, key, parse, region)

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
        name, replace = form.get("name") or filename, flag("replace", form.get("replace", "false"))
        paths = await in_thread(service.worker, service.save, data, files["mask"][0], name, replace)
        return {"saved": paths, "garments": paths.pop("garments"), "dataset": str(service.folder.root)}

    @app.get("/", include_in_schema=False)
    def studio() -> FileResponse:
        return FileResponse(str(STUDIO / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STUDIO)), name="static")
    return app


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
