"""The HTTP service of `lomit-fast serve`: FastAPI on uvicorn, one Batcher owning the model.

    POST /v1/translate   multipart: image, exemplar (files), optional mask_in, mask_ex (files)
                         -> JSON {"image", "mask_in", "mask_ex": base64 PNGs at the model's image
                            size; "backend", "size", "batch_size": how many requests ran together}
    GET  /v1/health      -> {"status": "ok", "pending", "served", "failed", "cancelled", "batches",
                             "largest_batch", "submitted"}: counts since start
    GET  /v1/model       -> image size, backend, precision, version, limits, model config
    GET  /               the page: upload, see and paint the masks, translate again
    GET  /docs           OpenAPI docs (FastAPI's)

Uploads are decoded by the same code as `lomit-fast translate` (read_rgb / read_mask, resized
to the model's size like --fit resize), so the service takes exactly the files the CLI takes.
Errors: 400 an upload that is not a readable image, 413 an upload or image over the limits,
422 a missing field, 503 a full queue or a shutdown; every message names the field.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import io
import ipaddress
import os
import signal
import socket
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool

from ..data.images import from_uint8, read_mask, read_rgb, to_uint8
from ..version import __version__
from .batch import fit_image, mask_tensor
from .batcher import Batcher, Closed, Item, QueueFull, Result

STATIC = Path(__file__).parent / "static"
GRACE_S = 30  # on shutdown, requests still running after this long are cut off
UPLOADS = "/dev/shm" if os.path.isdir("/dev/shm") else None  # tmpfs: no disk for a decode
INLINE_PIXELS = 256 * 256  # images up to this size are decoded and encoded on the event loop
REUSED = 16  # decoded exemplars (and exemplar masks) kept: clients often send the same one


@dataclasses.dataclass
class Limits:
    max_upload_bytes: int = 20 * 1024 * 1024  # a whole request body
    max_pixels: int = 4096 * 4096              # each uploaded image


# --- decoding and encoding ----------------------------------------------------------------
def pixels(name: str, data: bytes, max_pixels: int) -> int:
    """The pixel count an upload's header states (0 if it has none); 413 over the limit."""
    if not data:
        raise HTTPException(400, f"{name}: the upload is empty")
    width = height = 0
    with contextlib.suppress(Exception):  # only a size check: read_rgb reports unreadable files
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    if width * height > max_pixels:
        raise HTTPException(413, f"{name}: image is {width}x{height}, more than the "
                                 f"{max_pixels} pixel limit")
    return width * height


def decode_upload(name: str, data: bytes, size: int, mask: bool) -> torch.Tensor:
    """One uploaded file -> (1, 3, S, S) image in [-1, 1] or (1, 1, S, S) mask in [0, 1], through
    the CLI's decoders; HTTPException naming the field otherwise."""
    # The CLI's decoders read files: the upload becomes one (in memory where /dev/shm is), and
    # their messages name the field instead of it.
    with tempfile.NamedTemporaryFile(dir=UPLOADS, prefix=f"{name}-", suffix=".upload") as file:
        file.write(data)
        file.flush()
        try:
            if mask:
                return mask_tensor(read_mask(file.name), size, "resize")
            return from_uint8(fit_image(read_rgb(file.name), size, "resize"))
        except ValueError as e:
            raise HTTPException(400, str(e).replace(file.name, name)) from None


def png_base64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def mask_uint8(mask: torch.Tensor) -> np.ndarray:
    """(1, 1, S, S) in [0, 1] -> (S, S) uint8."""
    return (mask[0, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def encode_result(result: Result) -> dict:
    return {"image": png_base64(to_uint8(result.image)[0]),
            "mask_in": png_base64(mask_uint8(result.mask_in)),
            "mask_ex": png_base64(mask_uint8(result.mask_ex)),
            "backend": result.backend, "size": int(result.image.shape[-1]),
            "batch_size": result.batch_size}


# --- waiting for the worker without trusting the client ---------------------------------------
async def wait_or_disconnect(future, request: Request) -> Result | None:
    """The worker's result, or None when the client hung up first (its queued item is then
    cancelled and never runs)."""
    result = asyncio.wrap_future(future)

    async def hang_up() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(hang_up())
    try:
        await asyncio.wait({result, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not result.done():
        future.cancel()
        result.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved
        return None
    return result.result()


class BodyLimit:
    """ASGI wrapper: a request body over `limit` bytes gets 413 before the app parses it (by its
    Content-Length), or as soon as it grows past the limit (chunked uploads)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            return await self._reject(send)
        received, over = 0, False

        async def counted():
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                over = True
                raise HTTPException(413)
            return message

        async def guarded(message):
            if not over:  # the app's answer to a body it never got whole is dropped
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over:
            await self._reject(send)

    async def _reject(self, send):
        body = (b'{"detail": "upload too large: the request body is limited to %d bytes"}'
                % self.limit)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


# --- the app ----------------------------------------------------------------------------
def create_app(translator, max_batch: int = 32, max_wait_ms: float = 5.0,
               limits: Limits | None = None, checkpoint: str | None = None):
    """The ASGI app (FastAPI wrapped in the upload limit); the Batcher starts with it and, on
    shutdown, finishes every queued request before it stops."""
    limits = limits or Limits()
    batcher = Batcher(translator, max_batch, max_wait_ms)
    size = translator.cfg.image_size
    decoded: OrderedDict[tuple[str, bytes], torch.Tensor] = OrderedDict()  # event loop only

    @contextlib.asynccontextmanager
    async def lifespan(app):
        warm = torch.zeros(1, 3, size, size)
        await run_in_threadpool(translator.translate, warm, warm)  # first-call set-up, not a user's
        batcher.start()
        yield
        await run_in_threadpool(batcher.close)

    app = FastAPI(title="lomit-fast", version=__version__, lifespan=lifespan,
                  description="LOMIT local mask-based image-to-image translation")
    app.state.batcher = batcher

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return (STATIC / "index.html").read_text()

    @app.get("/v1/health")
    async def health():
        return {"status": "ok", "pending": batcher.pending, **dataclasses.asdict(batcher.stats)}

    @app.get("/v1/model")
    async def model():
        cfg = translator.cfg
        return {"version": __version__, "image_size": size,
                "content_size": size // 2 ** cfg.content_downsample,
                "backend": translator.backend, "precision": translator.precision,
                "device": str(translator.device), "checkpoint": checkpoint or "shipped",
                "max_batch": max_batch, "max_wait_ms": max_wait_ms,
                **dataclasses.asdict(limits), "config": dataclasses.asdict(cfg)}

    @app.post("/v1/translate")
    async def translate(request: Request,
                        image: UploadFile = File(description="the input image"),
                        exemplar: UploadFile = File(description="the exemplar (style) image"),
                        mask_in: UploadFile | None = File(None, description="where to translate "
                                                          "(replaces the predicted input mask)"),
                        mask_ex: UploadFile | None = File(None, description="what to take from "
                                                          "the exemplar")):
        uploads = {"image": image, "exemplar": exemplar, "mask_in": mask_in, "mask_ex": mask_ex}
        tensors, key = {}, b""
        for name, upload in uploads.items():
            if upload is None:
                continue
            data = await upload.read()
            digest = (name, hashlib.blake2b(data, digest_size=16).digest())
            if digest in decoded:  # an exemplar (or its mask) sent again: decoded already
                decoded.move_to_end(digest)
                tensors[name] = decoded[digest]
                key += digest[1]
                continue
            args = (name, data, size, name.startswith("mask"))
            # Small images decode in well under a millisecond: a thread hop would cost more.
            tensors[name] = (decode_upload(*args) if pixels(name, data, limits.max_pixels)
                             <= INLINE_PIXELS else await run_in_threadpool(decode_upload, *args))
            if name in ("exemplar", "mask_ex"):
                key += digest[1]
                decoded[digest] = tensors[name]
                while len(decoded) > REUSED:
                    decoded.popitem(last=False)
        item = Item(tensors["image"], tensors["exemplar"], tensors.get("mask_in"),
                    tensors.get("mask_ex"), exemplar_key=key)
        try:
            future = batcher.submit(item)
        except (QueueFull, Closed) as e:
            raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from None
        try:
            result = await wait_or_disconnect(future, request)
        except Exception as e:  # noqa: BLE001  (this request's own failure; the worker goes on)
            raise HTTPException(500, f"translation failed: {e}") from None
        if result is None:
            return JSONResponse({"detail": "client disconnected"}, status_code=499)
        small = size * size <= INLINE_PIXELS
        return JSONResponse(encode_result(result) if small else
                            await run_in_threadpool(encode_result, result))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return BodyLimit(app, limits.max_upload_bytes)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that a port in use is a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: uvicorn writes a response's head and body separately,
    # and with Nagle's algorithm the body waits ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, finish what is queued, return."""
    import uvicorn
    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("info", "debug"),
                            timeout_graceful_shutdown=GRACE_S)
    # uvicorn re-raises the signal that stopped it once it has shut down; a stop asked for is a
    # clean exit here (status 0, no KeyboardInterrupt), so the re-raised signal is only noted.
    ignore = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in ignore.items():
            signal.signal(sig, handler)
