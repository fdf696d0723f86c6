"""The scoring server's application: :class:`ScoringApp`, a plain ASGI app.

No web framework: one small table maps each path to the plain ASGI callables of
:mod:`nbdeploy.server.routes` and the methods they take; Starlette supplies only
types, the file and redirect answers and the request view of ``@rawhttp`` scripts.
``/score`` has one implementation (:class:`~nbdeploy.server.routes.Score`), and the
API documents are built from the service's schemas
(:mod:`nbdeploy.server.documents`), so the documentation tells the truth.

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
    :mod:`nbdeploy.server.serialization`). Other top-level keys of the body (such as
    ``"method"``) reach ``run`` as keyword arguments when its signature takes them
    (``def run(data, method=None)`` or ``def run(data, **kwargs)``; inspected once at
    load, see :mod:`nbdeploy.server.runtime`); others are ignored.
``GET /score`` and ``POST /score`` of a raw script
    A script whose ``run`` is decorated with ``@rawhttp`` receives the whole request
    (:class:`nbdeploy.core.rawhttp.Request`) and answers with any status, headers,
    content type and body (:class:`nbdeploy.core.rawhttp.Response`). Ordinary scripts
    answer ``GET /score`` with 405.
``GET /swagger.json``, ``GET /openapi.json``
    Swagger 2.0 (the reference's shape) and OpenAPI 3.1 documents generated from the
    schemas.
``GET /docs``, ``GET /docs/static/<file>``
    Swagger UI from bundled assets (no internet needed).

``GET`` routes also answer ``HEAD``. Errors, for every route (unknown routes and
methods included), are JSON ``{"status_code": ..., "message": ...}``
(:mod:`nbdeploy.server.errors`); a path with a trailing slash is redirected (307) to
the route without it.

Before any route, the ``Host`` header is checked against the allowed names (one scan
of the headers; :mod:`nbdeploy.server.guard`). With key or token auth on,
``/score`` needs ``Authorization: Bearer <key or token>``, checked against the
service's auth file, which is re-read when it changes; ``GET /``, the API documents
and ``/docs`` stay open. With a CORS policy,
:class:`~nbdeploy.server.cors.CorsMiddleware` wraps the routes: it answers browser
preflights before routing and auth, and marks answers to allowed origins.

Speed: a ``POST /score`` costs one dict lookup and one set membership test before
:class:`~nbdeploy.server.routes.Score` runs; request ids are a per-process random
prefix and a counter, and the access log is off (``--log-level debug`` logs one line
per scored request; Authorization headers are never logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nbdeploy.server.errors import send_error
from nbdeploy.server.guard import auth_checker, host_refusal, unauthorized_headers
from nbdeploy.server.options import ServerOptions
from nbdeploy.server.routes import (
    STATIC_PREFIX,
    DocsPage,
    Document,
    Score,
    health,
    static_asset,
)
from nbdeploy.server.runtime import ScoringRuntime

if TYPE_CHECKING:
    from nbdeploy.core.auth import CorsPolicy
    from nbdeploy.core.bundle import Bundle

__all__ = ["Route", "ScoringApp", "app_for_bundle", "create_app", "load_bundle"]

_GET = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Route:
    """One path of the app: the methods it takes and the ASGI callable answering them."""

    methods: frozenset[str]
    handler: ASGIApp

    @property
    def allow(self) -> str:
        """The ``Allow`` header of a 405 on this path."""
        return ", ".join(sorted(self.methods))


class ScoringApp:
    """The scoring server for one bundle, as a plain ASGI application.

    Build it with :func:`create_app`. ``lifespan`` starts the scoring script's
    ``init()`` (unless the launcher ran it already) and stops the scoring thread.

    Attributes
    ----------
    runtime:
        The :class:`~nbdeploy.server.runtime.ScoringRuntime` running the script (the
        launcher and Ray's replicas use it to learn when ``init()`` finished).
    """

    def __init__(
        self,
        runtime: ScoringRuntime,
        routes: Mapping[str, Route],
        static: Route,
        *,
        hosts: frozenset[str] | None,
        cors: CorsPolicy | None,
    ) -> None:
        self.runtime = runtime
        self._routes = dict(routes)
        self._static = static
        self._hosts = hosts
        self._handle: ASGIApp = self._route
        if cors is not None:
            from nbdeploy.server.cors import CorsMiddleware

            self._handle = CorsMiddleware(self._route, cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            hosts = self._hosts
            if hosts is not None:
                refused = host_refusal(scope["headers"], hosts)
                if refused is not None:
                    await send_error(send, refused.status_code, str(refused), [])
                    return
            await self._handle(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # a websocket: no route takes one
            await send({"type": "websocket.close", "code": 1000, "reason": ""})

    def _match(self, path: str) -> Route | None:
        route = self._routes.get(path)
        if route is None and path.startswith(STATIC_PREFIX):
            name = path[len(STATIC_PREFIX) :]
            if name and "/" not in name:
                return self._static
        return route

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        route = self._match(path)
        if route is None:
            await self._no_route(scope, receive, send, path)
        elif scope["method"] in route.methods:
            await route.handler(scope, receive, send)
        else:
            shown = URL(scope=scope).path
            message = (
                f"method {scope['method']} is not allowed on {shown!r}; allowed: {route.allow}"
            )
            await send_error(send, 405, message, [(b"allow", route.allow.encode())])

    async def _no_route(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """404, or a 307 to the route that ``path`` names with a trailing slash."""
        if path != "/" and path.endswith("/") and self._match(path.rstrip("/")) is not None:
            target = URL(scope={**scope, "path": str(scope["path"]).rstrip("/")})
            await RedirectResponse(url=str(target))(scope, receive, send)
            return
        shown = URL(scope=scope).path
        message = f"no route {shown!r}; the service answers GET /, POST /score, " + (
            "GET /swagger.json, GET /openapi.json and GET /docs"
        )
        await send_error(send, 404, message, [])

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan: ``init()`` starts (on the scoring thread) as the server
        starts, unless the launcher already ran it; the scoring thread stops with it."""
        await receive()  # lifespan.startup
        runtime = self.runtime
        init_task = None
        if not runtime.init_started:
            init_task = asyncio.create_task(runtime.initialize(), name="nbdeploy-init")
        await send({"type": "lifespan.startup.complete"})
        try:
            await receive()  # lifespan.shutdown
        finally:
            if init_task is not None and not init_task.done():
                init_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):  # cancelled right here
                    await init_task
            runtime.close()
        await send({"type": "lifespan.shutdown.complete"})


def route_path(scope: Scope) -> str:
    """The path below the app's mount point: ASGI's ``path`` includes ``root_path``
    (an app mounted below a prefix, e.g. on Ray Serve's route prefix)."""
    path = str(scope["path"])
    root = str(scope.get("root_path") or "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _answering_failures(handler: ASGIApp) -> ASGIApp:
    """``handler``, answering a JSON 500 if it raises before answering; the exception
    is raised on (the ASGI server logs it with its traceback)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await handler(scope, receive, sending)
        except Exception as exc:
            if not started:
                message = (
                    f"internal server error ({type(exc).__name__}); the details are in "
                    "the service logs"
                )
                await send_error(send, 500, message, [])
            raise

    return guarded


def load_bundle(bundle: Bundle | str | Path) -> Bundle:
    """``bundle`` itself, or the bundle loaded from that folder."""
    from nbdeploy.core.bundle import Bundle

    if isinstance(bundle, Bundle):
        return bundle
    return Bundle.load(Path(bundle))


def _service_title(bundle: Bundle, options: ServerOptions) -> str:
    if options.service_name:
        return options.service_name
    name = (bundle.settings or {}).get("service_name")
    if isinstance(name, str) and name.strip():
        return name
    if bundle.models:
        return bundle.models[0].name
    return bundle.path.name


def create_app(bundle: Bundle | str | Path, options: ServerOptions | None = None) -> ScoringApp:
    """Build the scoring server for a bundle.

    The bundle's manifest is read now; the scoring script is imported and its
    ``init()`` run once when the app starts (its lifespan), on the scoring thread, so
    the app answers health checks (503 ``Initializing``) meanwhile — unless the
    launcher already ran ``init()`` before serving
    (:meth:`~nbdeploy.server.runtime.ScoringRuntime.initialize_here`, what
    ``python -m nbdeploy.server`` does). Before the import, ``NBDEPLOY_MODEL_DIR`` and
    ``AZUREML_MODEL_DIR`` are set to the bundle's model folder, ``NBDEPLOY_BUNDLE_DIR``
    to the bundle, and the bundle's source folder goes first on ``sys.path``.

    Parameters
    ----------
    bundle:
        A :class:`~nbdeploy.core.bundle.Bundle` or the path of a bundle folder.
    options:
        Server options; by default those in the bundle's ``settings``, else the
        defaults of :class:`~nbdeploy.server.options.ServerOptions`.

    Raises
    ------
    InvalidArgumentError
        Auth is on and the auth file is missing (never an open service).

    Examples
    --------
    >>> from starlette.testclient import TestClient
    >>> app = create_app("path/to/bundle")  # doctest: +SKIP
    >>> with TestClient(app) as client:  # doctest: +SKIP
    ...     client.post("/score", json={"data": [[1, 2, 3]]}).json()
    [42.0]
    """
    from nbdeploy.core import openapi

    loaded = load_bundle(bundle)
    if options is None:
        options = ServerOptions.from_bundle_settings(loaded.settings)
    runtime = ScoringRuntime(loaded, options)
    title = _service_title(loaded, options)
    checker = auth_checker(loaded.path, options.auth_mode, options.auth_file)
    auth = options.auth_mode is not None
    score = Score(runtime, checker, unauthorized_headers(title), options.max_request_bytes)
    routes = {
        "/": Route(_GET, functools.partial(health, runtime=runtime)),
        # GET reaches @rawhttp scripts only (Score answers 405 for the others).
        "/score": Route(frozenset({"GET", "HEAD", "POST"}), score),
        "/swagger.json": Route(
            _GET, _answering_failures(Document(openapi.swagger2, runtime, title, auth))
        ),
        "/openapi.json": Route(
            _GET, _answering_failures(Document(openapi.openapi31, runtime, title, auth))
        ),
        "/docs": Route(_GET, DocsPage(title)),
    }
    static = Route(_GET, _answering_failures(static_asset))
    return ScoringApp(runtime, routes, static, hosts=options.host_names, cors=options.cors)


def app_for_bundle(bundle_dir: str | Path, **overrides: Any) -> ScoringApp:
    """The scoring app of a bundle folder with the bundle's own options and
    ``overrides`` on top (``None`` values skipped): how a host that runs the app on its
    own event loop, such as a Ray Serve replica, builds it. ``init()`` is the caller's
    to start (``await app.runtime.initialize()``) or the app's lifespan's.

    Raises
    ------
    NbdeployError
        The bundle or the options are invalid.
    """
    loaded = load_bundle(bundle_dir)
    options = ServerOptions.from_bundle_settings(loaded.settings, **overrides)
    return create_app(loaded, options)
