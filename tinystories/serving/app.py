"""The FastAPI application (``build_app``): the OpenAI routes, error handlers that answer in OpenAI's shape, the
API-key middleware and the generation worker's lifespan; ``ServerThread`` runs an app in a background thread."""

import asyncio
import hmac
import logging
import socket
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import ServeError
from .api_errors import APIError, from_validation_errors
from .jobs import build_job
from .protocol import ModelCard, ModelList
from .responses import completion_body, stream_events
from .scheduler import BatchScheduler
from .served_model import ServedModel
from .settings import ServeSettings

logger = logging.getLogger("tinystories.serve")
router = APIRouter()


def _json(model) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def _model_card(served: ServedModel) -> ModelCard:
    # `root` is the served name, never the folder's path
    return ModelCard(id=served.name, created=served.created, root=served.name, max_model_len=served.context)


@router.get("/v1/models")
async def list_models(request: Request):
    return _json(ModelList(data=[_model_card(request.app.state.served)]))


@router.get("/v1/models/{name:path}")
async def retrieve_model(request: Request, name: str):
    served = request.app.state.served
    if not served.serves(name):
        raise APIError(404, f"The model `{name}` does not exist.", "model", "model_not_found")
    return _json(_model_card(served))


@router.get("/health")
@router.get("/v1/health")
async def health(request: Request):
    served, scheduler, settings = request.app.state.served, request.app.state.scheduler, request.app.state.settings
    alive = scheduler.alive
    body = {
        "status": "ok" if alive else "unhealthy",
        "model": served.name,
        "context": served.context,
        "max_batch_size": settings.max_batch_size,
        "max_queue": settings.max_queue,
        "stats": scheduler.snapshot(),
    }
    return JSONResponse(body, status_code=200 if alive else 503)


async def _disconnected(receive) -> None:
    """Returns when the client of a request whose body was read closes its connection."""
    while True:
        message = await receive()  # (uvicorn: blocks until the client disconnects or the response is sent)
        if message["type"] == "http.disconnect":
            return
        await asyncio.sleep(0.05)  # (a server that answers at once: poll)


async def _generate(request: Request, kind: str):
    served, scheduler = request.app.state.served, request.app.state.scheduler
    raw = await request.body()
    job = await run_in_threadpool(build_job, raw, kind, served)  # JSON, checks, tokenization: off the loop
    job.attach(asyncio.get_running_loop())
    request_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
    created = int(time.time())
    scheduler.submit(job)
    if job.stream:
        return StreamingResponse(
            stream_events(job, served, request_id, created, on_close=scheduler.cancel),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    # Starlette does not cancel a handler whose client left: watch the connection while waiting
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        scheduler.cancel(job)
        raise
    finally:
        watcher.cancel()
    if not job.future.done():  # the client is gone: nobody reads the reply
        scheduler.cancel(job)
        logger.info("%s: the client disconnected, request cancelled", request_id)
        return Response(status_code=499)
    job.future.result()  # raises the request's APIError
    return _json(completion_body(job, served, request_id, created))


@router.post("/v1/completions")
async def create_completion(request: Request):
    return await _generate(request, "completion")


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request):
    return await _generate(request, "chat")


class RequireAPIKey:
    """ASGI middleware: a ``/v1/...`` request without ``Authorization: Bearer <key>`` gets a 401 (OpenAI's shape)."""

    def __init__(self, app, key: str):
        self.app, self.key = app, key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (scope["path"] == "/v1" or scope["path"].startswith("/v1/")):
            authorization = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = authorization.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
                error = APIError(
                    401,
                    "Incorrect or missing API key: send the header 'Authorization: Bearer <key>' with the key the "
                    "server was started with.",
                    code="invalid_api_key",
                )
                response = JSONResponse(error.body(), status_code=401, headers={"www-authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _api_error(request: Request, error: APIError):
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _request_validation_error(request: Request, error: RequestValidationError):
    """FastAPI's own validation (path and query parameters): a 400 in OpenAI's shape, not FastAPI's 422."""
    api_error = from_validation_errors(list(error.errors()))
    return JSONResponse(api_error.body(), status_code=400)


async def _http_error(request: Request, error: HTTPException):
    status = error.status_code
    message = {404: f"Unknown endpoint {request.method} {request.url.path}"}.get(status, str(error.detail))
    return JSONResponse(APIError(status, message).body(), status_code=status, headers=error.headers)


async def _unexpected_error(request: Request, error: Exception):  # the traceback is logged by the server
    return JSONResponse(APIError(500, "The server had an internal error.").body(), status_code=500)


def build_app(model: str | None = None, *, settings: ServeSettings | None = None, **kwargs: Any) -> FastAPI:
    """The FastAPI application serving ``model`` (a folder or a Hub id); ``kwargs`` are ``ServeSettings`` fields.

    The model loads here; the generation worker starts and stops with the application's lifespan. A model that
    cannot load, or bad settings, raise ``ServeError``.
    """
    if settings is None:
        if model is None:
            raise ServeError("build_app needs a model path or settings")
        settings = ServeSettings.from_kwargs(model, **kwargs)
    served = ServedModel(settings)
    scheduler = BatchScheduler(served, settings)

    @asynccontextmanager
    async def lifespan(app):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.close()

    app = FastAPI(title="tinystories serve", description="OpenAI-compatible API", lifespan=lifespan)
    app.state.served, app.state.scheduler, app.state.settings = served, scheduler, settings
    app.include_router(router)
    if settings.api_key:
        app.add_middleware(RequireAPIKey, key=settings.api_key)
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free port, read back with ``getsockname``), for uvicorn."""
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # (uvicorn's backlog) clients that come before the server starts wait, not fail
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/v1" if sock.family == socket.AF_INET6 else f"http://{host}:{port}/v1"


class ServerThread:
    """Run an app with uvicorn in a background thread of this process: ``with ServerThread(app) as url: ...``.

    ``port=0`` (the default) binds a free port at once; the context value is the base URL (``http://host:port/v1``).
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.socket = bind_socket(host, port)
        self.base_url = base_url(self.socket)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="tinystories-serve", daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:  # (uvicorn offers no event to wait on)
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.socket.close()
                raise ServeError("the server did not start (see the log)")
            time.sleep(0.01)
        return self.base_url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()
