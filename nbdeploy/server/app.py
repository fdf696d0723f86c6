"""The scoring server's app factory: :func:`create_app`.

Routes
------
``GET /``
    ``Healthy`` (text) once ``init()`` succeeded; 503 with a JSON message while it
    runs (``Initializing``) or after it failed (the reason).
``POST /score``
    ``{"data": ...}`` → the input schema converts ``data`` (DataFrame, ndarray or the
    plain value) → ``run(data)`` → its result as JSON (numpy and pandas values
    included; a ``str`` result is sent as a JSON string, so scripts that ``return
    json.dumps(...)`` keep working for clients that ``json.loads`` the answer; see
    :mod:`nbdeploy.server.serialization`). Other top-level keys of the body are
    accepted and kept for options such as ``"method"``. Answers carry
    ``x-request-id`` (the caller's ``x-request-id`` / ``x-ms-request-id`` when sent).
``GET /swagger.json``, ``GET /openapi.json``
    Swagger 2.0 (the reference's shape) and OpenAPI 3.1 documents generated from the
    schemas, so the documentation tells the truth. FastAPI's own schema, ``/docs`` and
    ``/redoc`` routes are switched off.
``GET /docs``
    Swagger UI from bundled assets (no internet needed).

Errors, for every route (unknown routes and methods included), are JSON
``{"status_code": ..., "message": ...}``: 400 body not JSON / no ``"data"``, 413 body
too large, 422 data does not match the schema, 500 ``run()`` raised (the message
names the request id; the traceback goes to the logs only), 503 not ready.

Speed: the request body is read as bytes and decoded by orjson on the scoring thread
(no pydantic models per request), routes are plain Starlette routes, there is no
middleware on the hot path, and the access log is off (``--log-level debug`` logs one
line per scored request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from nbdeploy.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    NbdeployError,
    PayloadTooLargeError,
)
from nbdeploy.server.docs import docs_page, static_asset
from nbdeploy.server.errors import error_response, install_error_handlers
from nbdeploy.server.runtime import ScoringRuntime
from nbdeploy.server.settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nbdeploy.core.bundle import Bundle

__all__ = ["create_app", "get_runtime"]

logger = logging.getLogger("nbdeploy.server")

_REQUEST_ID_HEADERS = ("x-request-id", "x-ms-request-id")
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def _load_bundle(bundle: Bundle | str | Path) -> Bundle:
    from nbdeploy.core.bundle import Bundle

    if isinstance(bundle, Bundle):
        return bundle
    return Bundle.load(Path(bundle))


def _service_title(bundle: Bundle, settings: ServerSettings) -> str:
    if settings.service_name:
        return settings.service_name
    name = (bundle.settings or {}).get("service_name")
    if isinstance(name, str) and name.strip():
        return name
    if bundle.models:
        return bundle.models[0].name
    return bundle.path.name


def _request_id(request: Request) -> str:
    headers = request.headers
    for key in _REQUEST_ID_HEADERS:
        value = headers.get(key)
        if value is not None and _REQUEST_ID_OK.fullmatch(value):
            return value
    return uuid.uuid4().hex


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes.

    ``Content-Length`` is checked first so an honest client is refused before sending
    anything; the bytes are also counted as they arrive, which catches chunked bodies
    (no ``Content-Length``).
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequestError(f"Content-Length header {declared!r} is not a number") from None
        if size > limit:
            raise _too_large(size, limit)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(received, limit, at_least=True)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequestError("the client disconnected before sending the whole body") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> PayloadTooLargeError:
    amount = f"at least {size}" if at_least else str(size)
    return PayloadTooLargeError(
        f"request body of {amount} bytes is over this service's limit of {limit} bytes",
        hint="send fewer rows per request, or raise the service's max_request_bytes",
    )


def _not_ready_message(runtime: ScoringRuntime) -> str:
    if runtime.state == "starting":
        return "Initializing: the scoring script's init() has not finished yet"
    if runtime.state == "failed":
        return f"init() failed: {runtime.failure_reason}; the traceback is in the service logs"
    return "the service is shutting down"


def _install_middleware(app: FastAPI, settings: ServerSettings) -> None:
    """The one place request middleware is added (outermost first: CORS, then auth).

    Nothing is installed yet, so the scoring path pays for no middleware. Key/token
    auth and CORS arrive with their own issue; until then a service asked for auth
    refuses to start rather than run unprotected while its OpenAPI documents claim a
    ``Bearer`` scheme.
    """
    if settings.auth_enabled:
        raise InvalidArgumentError(
            "auth_enabled=True, but this scoring server cannot check keys yet",
            hint="deploy with auth disabled (local services default to it)",
        )


def get_runtime(app: FastAPI) -> ScoringRuntime:
    """The :class:`~nbdeploy.server.runtime.ScoringRuntime` behind an app from
    :func:`create_app` (the launcher uses it to learn when ``init()`` finished)."""
    runtime = app.state.nbdeploy_runtime
    assert isinstance(runtime, ScoringRuntime)
    return runtime


def create_app(bundle: Bundle | str | Path, settings: ServerSettings | None = None) -> FastAPI:
    """Build the scoring server for a bundle.

    The bundle's manifest is read now; the scoring script is imported and its
    ``init()`` run once when the app starts (its lifespan), on the scoring thread, so
    the server answers health checks (503 ``Initializing``) meanwhile. Before the
    import, ``NBDEPLOY_MODEL_DIR`` and ``AZUREML_MODEL_DIR`` are set to the bundle's
    model folder, ``NBDEPLOY_BUNDLE_DIR`` to the bundle, and the bundle's source
    folder goes first on ``sys.path``.

    Parameters
    ----------
    bundle:
        A :class:`~nbdeploy.core.bundle.Bundle` or the path of a bundle folder.
    settings:
        Server settings; by default those in the bundle's ``settings``, else the
        defaults of :class:`ServerSettings`.

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> app = create_app("path/to/bundle")  # doctest: +SKIP
    >>> with TestClient(app) as client:  # doctest: +SKIP
    ...     client.post("/score", json={"data": [[1, 2, 3]]}).json()
    [42.0]
    """
    from fastapi import FastAPI

    loaded = _load_bundle(bundle)
    if settings is None:
        settings = ServerSettings.from_bundle_settings(loaded.settings)
    runtime = ScoringRuntime(loaded, settings)
    title = _service_title(loaded, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The launcher may already have run init() before listening (hand-over).
        init_task = None
        if not runtime.init_started:
            init_task = asyncio.create_task(runtime.initialize(), name="nbdeploy-init")
        try:
            yield
        finally:
            if init_task is not None and not init_task.done():
                init_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await init_task
            runtime.close()

    app = FastAPI(
        title=title,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.nbdeploy_runtime = runtime
    install_error_handlers(app)
    _install_middleware(app, settings)

    limit = settings.max_request_bytes

    async def health(request: Request) -> Response:
        if runtime.state == "ready":
            return PlainTextResponse("Healthy")
        return error_response(503, _not_ready_message(runtime))

    async def score(request: Request) -> Response:
        request_id = _request_id(request)
        headers = {"x-request-id": request_id}
        started = time.perf_counter()
        try:
            if runtime.state != "ready":
                return error_response(503, _not_ready_message(runtime), headers)
            body = await _read_body(request, limit)
            result = await runtime.score(body)
        except NbdeployError as exc:
            response = _error_for(exc, request_id, headers)
        else:
            response = Response(result, media_type="application/json", headers=headers)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "POST /score %s -> %d in %.2f ms",
                request_id,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        return response

    documents: dict[str, bytes] = {}

    def document_route(
        name: str, build: Callable[..., dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if runtime.state == "starting":
                return error_response(503, _not_ready_message(runtime))
            if name not in documents:
                documents[name] = _build_document(build, runtime, title, settings)
            return Response(documents[name], media_type="application/json")

        return endpoint

    async def docs(request: Request) -> Response:
        return docs_page(title)

    from nbdeploy.core import openapi

    app.add_route("/", health, methods=["GET"], include_in_schema=False)
    app.add_route("/score", score, methods=["POST"], include_in_schema=False)
    app.add_route(
        "/swagger.json",
        document_route("swagger", openapi.swagger2),
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_route(
        "/openapi.json",
        document_route("openapi", openapi.openapi31),
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_route("/docs/static/{name}", static_asset, methods=["GET"], include_in_schema=False)
    return app


def _build_document(
    build: Callable[..., dict[str, Any]],
    runtime: ScoringRuntime,
    title: str,
    settings: ServerSettings,
) -> bytes:
    import orjson

    from nbdeploy.server.serialization import json_default

    inputs, outputs = runtime.input_schema, runtime.output_schema
    document = build(
        title=title,
        input_schema=inputs,
        output_schema=outputs,
        auth=settings.auth_enabled,
        input_example=None if inputs is None else inputs.example,
        output_example=None if outputs is None else outputs.example,
    )
    # Examples come from samples and may hold numpy or pandas values.
    options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    return orjson.dumps(document, default=json_default, option=options)


def _error_for(exc: NbdeployError, request_id: str, headers: Mapping[str, str]) -> Response:
    status = exc.status_code
    if status >= 500:
        cause = exc.__cause__ or exc
        logger.error("request %s failed: %s", request_id, exc.message, exc_info=cause)
        message = f"{exc.message} (request id {request_id}; the traceback is in the service logs)"
        if exc.hint:
            message += f"\nHint: {exc.hint}"
        return error_response(status, message, headers)
    return error_response(status, str(exc), headers)
