"""The HTTP face of the service: a FastAPI application over a :class:`Batcher`.

Routes
------
``POST /v1/score``  judge documents (``{"texts": [...], "names": [...], "details": false}``)
``GET /v1/info``    detector, weights hashes, calibration, limits, version
``GET /healthz``    alive (never needs a token)
``GET /readyz``     models loaded and the batch worker running
``GET /``           the page: paste text or drop files, see verdicts and coloured tokens
``GET /docs``       interactive API docs (Swagger UI served from the package, no CDN);
                    ``/openapi.json`` the schema

Every error is a JSON body ``{"error": "one clear message"}`` with its status: 400 malformed
JSON, 401 no or wrong token, 413 too many documents, a body or document too large, 422 wrong
types, unknown fields or an empty list, 503 queue full (with ``Retry-After``) or not ready,
504 past the request timeout.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpt2guard.errors import GuardError
from gpt2guard.serve.batcher import Batcher, QueueFull
from gpt2guard.serve.service import TooLarge

OPEN_PATHS = ("/healthz",)


class ScoreRequest(BaseModel):
    """Documents to judge."""

    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(description="The documents, as strings.", examples=[["A paragraph to judge."]])
    names: list[str] | None = Field(None, description="A name per document, echoed back (default: none).")
    details: bool = Field(False, description="Also return the per-token view, the most machine-like spans and "
                                             "per-sentence scores.")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """The one error body every failure uses."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """Status and one line for a request body that did not validate."""
    errors = exc.errors()
    if not errors:
        return 422, "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return 400, f"malformed JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    if first.get("type") == "extra_forbidden":
        return 422, f"unknown field {loc!r}: the fields are texts, names and details"
    if first.get("type") == "missing":
        return 422, f"missing field {loc!r}"
    return 422, f"{loc}: {first.get('msg', 'invalid')}"


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413, without reading it all."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = f"request body over this server's limit of {self.max_bytes} bytes (--max-body-mb)"
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await error(413, too_big)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await error(413, too_big)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _authorised(header: str | None, token: str) -> bool:
    """``Bearer TOKEN``, or HTTP Basic with TOKEN as the password (what a browser sends for the page)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), token.encode())
    return False


def page_html() -> str:
    """The page at ``/`` (self-contained: inline style and script, no external resources)."""
    return resources.files("gpt2guard.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(service, *, token: str | None = None, batching: bool = True, max_wait: float = 0.002,
               max_batch_tokens: int = 4096, queue_docs: int = 1024, timeout: float = 60.0,
               max_body_bytes: int = 64 << 20) -> FastAPI:
    """The service's ASGI application.

    Parameters
    ----------
    service : Service
        A loaded :class:`~gpt2guard.serve.service.Service`.
    token : str, optional
        When set, every route but ``/healthz`` needs ``Authorization: Bearer TOKEN`` (or HTTP
        Basic with the token as password, which is how a browser opens the page).
    batching, max_wait, max_batch_tokens, queue_docs : see :class:`~gpt2guard.serve.batcher.Batcher`
    timeout : float
        Seconds a request may wait for its answer before a 504.
    max_body_bytes : int
        Largest request body.
    """
    batcher = Batcher(service, batching=batching, max_wait=max_wait, max_batch_tokens=max_batch_tokens,
                      queue_docs=queue_docs)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await batcher.stop()  # requests still queued are answered first

    from gpt2guard import __version__

    app = FastAPI(title="gpt2guard", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Machine-text detection for the GPT-2 family: verdicts, probabilities, calibrated "
                              "thresholds and per-token explanations.")
    app.state.ready = False
    app.state.batcher = batcher
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, message = _validation_message(exc)
        return error(status, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if exc.status_code == 400:  # FastAPI could not decode the body at all (not UTF-8, say)
            message = f"malformed JSON: {message.lower()} (send UTF-8 JSON)"
        return error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug: still one JSON line, never a traceback
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    if token:
        @app.middleware("http")
        async def _auth(request: Request, call_next):
            if request.url.path in OPEN_PATHS or _authorised(request.headers.get("authorization"), token):
                return await call_next(request)
            browser = request.url.path == "/" or request.url.path.startswith(("/docs", "/openapi"))
            challenge = 'Basic realm="gpt2guard"' if browser else 'Bearer realm="gpt2guard"'
            return error(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'",
                         {"WWW-Authenticate": challenge})

    @app.post("/v1/score", summary="Judge documents")
    async def score(req: ScoreRequest):
        """Per document what ``gpt2guard score --format json`` gives (decision, probability,
        score, threshold, token and window counts, method, scorer, hygiene flags, reason), and
        with ``details`` the per-token view, the most machine-like spans and per-sentence
        scores. The threshold's calibration comes once, beside the results."""
        if not app.state.ready:
            return error(503, "not ready: the models are still loading", {"Retry-After": "1"})
        if not req.texts:
            return error(422, "texts is empty: send at least one document")
        limit = service.limits.max_docs
        if len(req.texts) > limit:
            return error(413, f"{len(req.texts)} documents, over this server's limit of {limit} per request "
                              "(--max-docs)")
        if req.names is not None and len(req.names) != len(req.texts):
            return error(422, f"names has {len(req.names)} entries for {len(req.texts)} texts")
        try:
            future = batcher.submit(req.texts, [req.details] * len(req.texts), req.names)
            rows = await asyncio.wait_for(future, timeout)
        except QueueFull as exc:
            return error(503, str(exc), {"Retry-After": "1"})
        except TimeoutError:
            return error(504, f"no answer within this server's timeout of {timeout:g} s (--timeout)")
        except TooLarge as exc:
            return error(413, str(exc))
        except GuardError as exc:
            return error(422, str(exc))
        return {"results": rows, "calibration": service.calibration}

    @app.get("/v1/info", summary="What this server runs")
    async def info():
        """Detector kind, method, family, sizes, weights hashes, calibration, limits and version."""
        return service.info()

    @app.get("/healthz", summary="Alive")
    async def healthz():
        """Always 200 while the process serves."""
        return {"status": "alive"}

    @app.get("/readyz", summary="Ready to score")
    async def readyz():
        """200 once the models are loaded and the batch worker runs, 503 before and while stopping."""
        if app.state.ready:
            return {"status": "ready"}
        return error(503, "not ready", {"Retry-After": "1"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(page_html(), headers={"Content-Security-Policy": CSP})

    _mount_docs(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


# The page runs only its own inline script and style, and talks only to this server.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'")


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the ``swagger-ui-bundle`` package's files (works offline)."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="gpt2guard API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
