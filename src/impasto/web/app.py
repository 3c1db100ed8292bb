"""The studio's web application: the page, and the HTTP API it uses (docs/studio.md).

``create_app`` builds a FastAPI application over a :class:`~impasto.web.store.Store` under the
data folder and what runs the jobs: a :class:`~impasto.web.worker.Worker` process, or with
``settings.ray`` a :class:`~impasto.web.cluster.RayQueue` (several at once on a Ray cluster).
Requests are checked here before anything is stored: the body's size while it arrives, each
upload's bytes, its pixel count from the header before decoding (decompression bombs included),
its format (a few image formats only), and every setting (:mod:`impasto.web.forms`). Uploads are decoded
and re-encoded as PNG into a folder named by a server-drawn id. Every refusal is a 4xx JSON
answer ``{"error": "<field>: <what is wrong>", "field": "<field>"}``; an unexpected failure is a
500 with one line, its traceback going only to the server's log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from impasto import images
from impasto.config import KEEP, ApplyConfig, TransferConfig, to_dict
from impasto.errors import InputError
from impasto.web import forms, store
from impasto.web.catalogue import Catalogue
from impasto.web.forms import FieldError
from impasto.web.store import Job, QueueFull, Store

if TYPE_CHECKING:
    from impasto.web.cluster import RayOptions, RayQueue
    from impasto.web.worker import Worker

log = logging.getLogger("impasto.studio")
STATIC = Path(__file__).parent / "static"
# Decoders offered to uploads: the common photo formats, none that hands data to another program.
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF")
# Room for the text fields and multipart framing beside the files.
FORM_OVERHEAD = 64 * 1024
STREAM_POLL_SECONDS = 0.25
STREAM_HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class StudioSettings:
    """The server's limits and folders (``impasto serve``'s options)."""

    data: Path
    examples: Path | None = None
    max_queue: int = 8
    max_upload_bytes: int = 30_000_000
    max_pixels: int = 50_000_000
    max_size: int = 1024
    preview_seconds: float = 0.5
    worker_niceness: int = 10
    # On a Ray cluster (several jobs at once), or None: one local worker process.
    ray: RayOptions | None = None

    @property
    def stored_side(self) -> int:
        """Uploads are kept at most this long side: no output is larger, and a style scale of 2
        still finds the painting's detail."""
        return 2 * self.max_size


class ApiError(Exception):
    """A refusal: the HTTP status, the field at fault (or None) and a one-line message."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


class _BodyTooLarge(Exception):
    pass


def create_app(settings: StudioSettings, *, worker: bool = True) -> FastAPI:
    """The studio application; ``worker=False`` leaves jobs queued (for tests of the API alone)."""
    from contextlib import asynccontextmanager

    from impasto.fast.styles import arbitrary_installed, installed_styles, shipped_models

    jobs = Store(settings.data, settings.ray.journal if settings.ray is not None else store.WAL)
    catalogue = Catalogue(settings.examples, installed_styles(), settings.data / "thumbnails")
    runner = _runner(settings) if worker else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        marked = jobs.recover()
        if marked:
            log.warning("%d job(s) left running by a stopped server marked interrupted", marked)
        if runner is not None:
            runner.start()
        yield
        if runner is not None:
            await run_in_threadpool(runner.stop)

    app = FastAPI(title="impasto studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.store, app.state.catalogue, app.state.worker = settings, jobs, catalogue, runner
    app.state.any_painting = arbitrary_installed()
    # What fast mode's shipped networks may be used for (non-commercial research), shown beside it.
    app.state.licence = "; ".join(sorted({t for t in shipped_models().values() if t})) or None
    _add_error_handlers(app)
    # Every upload together (the photo, a painting, regions' masks and paintings): at most twice
    # the limit of one file.
    app.add_middleware(_BodyLimit, limit=2 * settings.max_upload_bytes + FORM_OVERHEAD)
    _add_job_routes(app)
    _add_page_routes(app)
    return app


def _runner(settings: StudioSettings) -> Worker | RayQueue:
    if settings.ray is not None:
        from impasto.web.cluster import RayQueue

        # No niceness to add: Ray runs its workers at a low priority itself (niceness 15 on Linux).
        return RayQueue(settings.data, settings.preview_seconds, settings.ray)
    from impasto.web.worker import Worker

    return Worker(settings.data, settings.preview_seconds, settings.worker_niceness)


# --- errors ----------------------------------------------------------------------------------


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "bad request"
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = str(first.get("loc", ["", "request"])[-1])
        return _error(400, f"{field}: {first.get('msg', 'invalid')}", field)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error; the server's log has the details")


class _BodyLimit:
    """Refuses a request body larger than ``limit`` bytes while it arrives, so that an endless
    upload is cut off rather than spooled to disk: at once from its Content-Length, else
    (chunked) when the count passes the limit."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            response = _error(413, f"request: larger than this server's limit of {self.limit} bytes", "request")
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge
            return message

        await self.app(scope, counted, send)


# --- jobs ------------------------------------------------------------------------------------


def _add_job_routes(app: FastAPI) -> None:
    settings: StudioSettings = app.state.settings
    jobs: Store = app.state.store

    @app.post("/api/jobs", status_code=201)
    async def submit(request: Request) -> JSONResponse:
        _check_queue(jobs.waiting(), settings.max_queue)
        fields, files, names = await _read_form(request, settings.max_upload_bytes)
        try:
            wanted = forms.parse(fields, list(files), max_size=settings.max_size,
                                 any_painting=app.state.any_painting)
        except FieldError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        job = await run_in_threadpool(_create_job, app, wanted, files, names)
        if app.state.worker is not None:
            app.state.worker.wake()
        return JSONResponse(_public(jobs, job), status_code=201, headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs")
    def list_jobs(limit: int = 100) -> dict[str, Any]:
        if not 1 <= limit <= 1000:
            raise ApiError(400, f"limit: must lie in [1, 1000], got {limit}", "limit")
        return {"jobs": [_public(jobs, j) for j in jobs.recent(limit)], "waiting": jobs.waiting(),
                "max_queue": settings.max_queue}

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return _public(jobs, _find(jobs, job_id))

    @app.get("/api/jobs/{job_id}/history")
    def history(job_id: str) -> dict[str, Any]:
        return {"rows": jobs.iterations(_find(jobs, job_id).id)}

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        job = _find(jobs, job_id)
        if job.finished_state:
            raise ApiError(409, f"id: job {job.id} has already ended ({job.status})", "id")
        updated = jobs.request_cancel(job.id)
        assert updated is not None
        return _public(jobs, updated)

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        job = _find(jobs, job_id)
        last = request.headers.get("last-event-id", "0")
        after = int(last) if last.isdigit() else 0
        return StreamingResponse(_stream(jobs, job.id, after, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    for name, filename in (("preview", store.PREVIEW), ("content", store.CONTENT), ("style", store.STYLE)):
        app.add_api_route(f"/api/jobs/{{job_id}}/{name}", _image_route(jobs, name, filename), methods=["GET"])

    @app.get("/api/jobs/{job_id}/result")
    async def result(job_id: str, format: str = "png", download: bool = False) -> FileResponse:
        job = _find(jobs, job_id)
        if format not in ("png", "jpeg"):
            raise ApiError(400, f"format: {format!r} is not one of png, jpeg", "format")
        path = jobs.folder(job.id) / store.RESULT
        if not job.result or not path.is_file():
            raise ApiError(404, f"id: job {job.id} has no result yet ({job.status})", "id")
        if format == "jpeg":
            quality = job.settings.get("config", {}).get("quality", TransferConfig().quality)
            path = await run_in_threadpool(_as_jpeg, path, quality)
        headers = {"Cache-Control": "no-store"}
        name = f"impasto-{job.id}.{'jpg' if format == 'jpeg' else 'png'}"
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return FileResponse(path, media_type=f"image/{format}", headers=headers)


def _check_queue(waiting: int, limit: int) -> None:
    if waiting >= limit:
        raise _queue_full(waiting, limit)


def _queue_full(waiting: int, limit: int) -> ApiError:
    return ApiError(429, f"queue: full ({waiting} jobs waiting, at most {limit}); try again when one has run", "queue")


def _find(jobs: Store, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"id: no job {job_id!r}", "id")
    return job


def _image_route(jobs: Store, name: str, filename: str) -> Callable[[str], FileResponse]:
    def image(job_id: str) -> FileResponse:
        job = _find(jobs, job_id)
        path = jobs.folder(job.id) / filename
        if not path.is_file():
            raise ApiError(404, f"id: job {job.id} has no {name} image", "id")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    image.__name__ = f"job_{name}"
    return image


def _as_jpeg(png: Path, quality: int) -> Path:
    """The result as a JPEG at the job's quality, in its colour profile, with its metadata."""
    jpeg = png.with_suffix(".jpg")
    if not jpeg.is_file() or jpeg.stat().st_mtime < png.stat().st_mtime:
        pixels, info = images.load_photo(png)
        images.save_image(pixels, jpeg, quality=quality, icc_profile=info.icc_profile, info=info)
    return jpeg


async def _read_form(request: Request, max_bytes: int) -> tuple[dict[str, str], dict[str, bytes], dict[str, str]]:
    """The text fields, the uploaded files' bytes, and their file names (for display only)."""
    try:
        form = await request.form(max_files=4 + 2 * forms.MAX_REGIONS, max_fields=40 + forms.MAX_REGIONS,
                                  max_part_size=FORM_OVERHEAD)
    except _BodyTooLarge:
        raise ApiError(413, "request: larger than this server's limit", "request") from None
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if name in fields or name in files:
                raise ApiError(400, f"{name}: given more than once", name)
            if isinstance(value, UploadFile):
                data = await value.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise ApiError(413, f"{name}: file is larger than this server's limit of {max_bytes} bytes",
                                   name)
                files[name] = data
                names[name] = _display_name(value.filename)
            else:
                fields[name] = value
    finally:
        await form.close()
    return fields, files, names


def _display_name(filename: str | None) -> str:
    """The client's file name, for display only: its last component, printable, short."""
    name = re.split(r"[\\/]", filename or "")[-1]
    return "".join(c for c in name if c.isprintable())[:80]


def _create_job(app: FastAPI, wanted: forms.JobRequest, files: dict[str, bytes], names: dict[str, str]) -> Job:
    """Decode and store the inputs in a new job folder, then queue the job."""
    settings: StudioSettings = app.state.settings
    jobs: Store = app.state.store
    catalogue: Catalogue = app.state.catalogue
    try:
        painting = catalogue.find(wanted.style_name, wanted.mode) if wanted.style_name else None
        content, photo = _decode_photo(files["content"], settings)
        style = None
        if "style" in files:
            style = _decode(files["style"], "style", settings)
        elif wanted.mode == "optimise" and painting is not None:
            assert painting.example is not None
            style = images.resize_long_side(images.load_image(painting.example), settings.stored_side)
        regions = _decode_regions(wanted.regions, files, content, catalogue, settings)
    except FieldError as exc:
        raise ApiError(400, str(exc), exc.field) from None
    except InputError as exc:
        known = ("content", "style", "style_name", *(f for f in files if f.startswith("region_")))
        raise ApiError(400, str(exc), exc.field if exc.field in known else None) from None
    job_id = jobs.new_id()
    folder = jobs.folder(job_id)
    folder.mkdir()
    try:
        # As uploaded but for its size: its colour profile, bit depth and metadata go to the result.
        images.save_image(content, folder / store.CONTENT, bits=photo.bits, icc_profile=photo.icc_profile, info=photo)
        if style is not None:
            images.save_image(style, folder / store.STYLE)
        record = {"config": to_dict(wanted.config), "content_size": [content.shape[-1], content.shape[-2]],
                  **_store_regions(regions, folder)}
        style_label = wanted.style_name or (f"uploaded: {names.get('style') or 'painting'}" if style is not None
                                            else "the photo")
        if regions:
            style_label += f" + {len(regions)} region{'s' if len(regions) > 1 else ''}"
        return jobs.create(job_id, wanted.mode, record, content_name=names.get("content", ""),
                           style_label=style_label, max_queue=settings.max_queue)
    except QueueFull as full:
        # Checked again as the job is inserted: another request may have taken the last place.
        shutil.rmtree(folder, ignore_errors=True)
        raise _queue_full(full.args[0], settings.max_queue) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _decode_regions(wanted: tuple[forms.RegionRequest, ...], files: dict[str, bytes], content: Any,
                    catalogue: Catalogue, settings: StudioSettings) -> list[tuple[Any, Any]]:
    """Each region's mask (checked against the photo, resized to it) and painting (None: kept)."""
    from impasto.gatys.regions import as_mask, check_mask

    out = []
    for region in wanted:
        mask = check_mask(as_mask(_decode(files[region.mask_field], region.mask_field, settings)),
                          region.mask_field, tuple(content.shape[-2:]))
        style = None
        if region.style_field in files:
            style = _decode(files[region.style_field], region.style_field, settings)
        elif not region.keep:
            assert region.style_name is not None
            try:
                painting = catalogue.find(region.style_name, "optimise")
            except InputError as exc:
                raise FieldError(f"{region.style_field}_name", exc.problem) from None
            assert painting.example is not None
            style = images.resize_long_side(images.load_image(painting.example), settings.stored_side)
        out.append((mask, style))
    return out


def _store_regions(regions: list[tuple[Any, Any]], folder: Path) -> dict[str, Any]:
    """Write the regions' masks and paintings into the job's folder; what its record says of them."""
    if not regions:
        return {}
    recorded = []
    for k, (mask, style) in enumerate(regions, 1):
        mask_name, style_name = store.REGION_MASK.format(k), store.REGION_STYLE.format(k)
        images.save_image(mask.expand(-1, 3, -1, -1), folder / mask_name)
        if style is not None:
            images.save_image(style, folder / style_name)
        recorded.append({"mask": mask_name, "style": style_name if style is not None else KEEP})
    return {"regions": recorded}


def _decode_photo(data: bytes, settings: StudioSettings) -> tuple[Any, images.PhotoInfo]:
    """The uploaded photo in its own colours, with what else it holds, at most the stored size."""
    image, info = images.load_photo(data, settings.max_pixels, label="content", formats=UPLOAD_FORMATS)
    if max(image.shape[-2:]) > settings.stored_side:
        image = images.resize_long_side(image, settings.stored_side)
    return image, info


def _decode(data: bytes, field: str, settings: StudioSettings) -> Any:
    image = images.load_image(data, settings.max_pixels, label=field, formats=UPLOAD_FORMATS)
    if max(image.shape[-2:]) > settings.stored_side:
        image = images.resize_long_side(image, settings.stored_side)
    return image


def _public(jobs: Store, job: Job) -> dict[str, Any]:
    """A job as the API shows it."""
    base = f"/api/jobs/{job.id}"
    links = {"self": base, "events": f"{base}/events", "history": f"{base}/history", "content": f"{base}/content",
             "cancel": f"{base}/cancel"}
    if job.mode == "optimise":
        links["style"] = f"{base}/style"
    if job.preview:
        links["preview"] = f"{base}/preview?v={job.preview}"
    if job.result:
        links["result"] = f"{base}/result"
    config = job.settings.get("config", {})
    return {
        "id": job.id,
        "mode": job.mode,
        "status": job.status,
        "position": jobs.position(job),
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "content_name": job.content_name,
        "style": job.style_label,
        "settings": _changed(job.mode, config),
        "seed": config.get("seed"),
        "progress": {"step": job.step, "total": job.total, "seconds": round(job.seconds, 3), "losses": job.losses,
                     "eta": None if job.eta is None else round(job.eta, 1)},
        "message": job.message,
        "preview": job.preview,
        "result": job.result,
        "links": links,
    }


def _changed(mode: str, config: dict[str, Any]) -> dict[str, Any]:
    """The settings a job changed from the config's defaults."""
    defaults = to_dict(TransferConfig()) if mode == "optimise" else to_dict(ApplyConfig(style="x"))
    return {k: v for k, v in config.items() if k in defaults and defaults[k] != v and k != "seed"}


async def _stream(jobs: Store, job_id: str, after: int, request: Request) -> AsyncIterator[str]:
    """Server-sent events of a job: ``iteration`` (one per iteration, ``id`` its step, data its
    event row), ``job`` (the job as GET /api/jobs/{id} shows it, whenever that changes) and
    ``end`` once the job has ended."""
    state: dict[str, Any] | None = None
    quiet = 0.0
    while not await request.is_disconnected():
        job = await run_in_threadpool(jobs.get, job_id)
        rows = await run_in_threadpool(jobs.iterations, job_id, after)
        if job is None:
            return
        for row in rows:
            after = row["step"]
            yield f"id: {after}\nevent: iteration\ndata: {json.dumps(row)}\n\n"
        public = await run_in_threadpool(_public, jobs, job)
        if public != state:
            state = public
            yield f"event: job\ndata: {json.dumps(public)}\n\n"
        if job.finished_state:
            yield "event: end\ndata: {}\n\n"
            return
        quiet = 0.0 if rows else quiet + STREAM_POLL_SECONDS
        if quiet >= STREAM_HEARTBEAT_SECONDS:
            quiet = 0.0
            yield ": still here\n\n"
        await asyncio.sleep(STREAM_POLL_SECONDS)


# --- the page --------------------------------------------------------------------------------


def _add_page_routes(app: FastAPI) -> None:
    settings: StudioSettings = app.state.settings
    catalogue: Catalogue = app.state.catalogue

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        """What the page's form offers: defaults (the configs'), choices, limits, paintings."""
        from typing import get_args

        from impasto.config import Init, Optimizer, Pooling, PreserveColor, RegionGuides

        return {
            "defaults": {"optimise": {k: v for k, v in to_dict(TransferConfig()).items()
                                      if k in forms.OPTIMISE_FIELDS},
                         "fast": {"size": None, "preserve_color": "none", "strength": 1.0,
                                  **{k: v for k, v in to_dict(ApplyConfig(style="x")).items()
                                     if k in forms.OUTPUT_FIELDS}}},
            "choices": {"mode": list(forms.MODES), "init": list(get_args(Init)),
                        "optimizer": list(get_args(Optimizer)), "pooling": list(get_args(Pooling)),
                        "preserve_color": list(get_args(PreserveColor)),
                        "region_guides": list(get_args(RegionGuides)),
                        "fast_preserve_color": list(forms.FAST_COLOUR),
                        "output_profile": list(forms.WEB_PROFILES), "bit_depth": ["", 8, 16]},
            "limits": {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                       "max_size": settings.max_size, "max_queue": settings.max_queue,
                       "max_regions": forms.MAX_REGIONS},
            "styles": [p.public() for p in catalogue.paintings.values()],
            # Fast mode takes an uploaded painting when an arbitrary-style network is installed.
            "any_painting_fast": app.state.any_painting,
            "licence": app.state.licence,
        }

    @app.get("/api/styles")
    def styles() -> dict[str, Any]:
        return {"styles": [p.public() for p in catalogue.paintings.values()]}

    @app.get("/api/styles/{name}/thumbnail")
    async def thumbnail(name: str) -> FileResponse:
        if name not in catalogue.paintings:
            raise ApiError(404, f"name: no painting {name!r}", "name")
        path = await run_in_threadpool(catalogue.thumbnail, name)
        assert path is not None
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        worker = app.state.worker
        return {"worker": worker.status() if worker else {"alive": False, "pid": None},
                "waiting": app.state.store.waiting(), "max_queue": settings.max_queue}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
