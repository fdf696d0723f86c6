"""What runs inside the Ray Serve replicas: the bundle's own scoring server, and the
router in front of the versions of an endpoint.

Plain classes, no Ray import: :mod:`.session` turns them into Serve deployments
(``serve.deployment`` / ``serve.ingress``), and the unit tests drive them without a
cluster.

:class:`ScoringReplica`
    One replica of one version: the app of :func:`nbdeploy.server.create_app` for the
    bundle — the same routes, schema validation, auth, CORS, ``@rawhttp`` and limits
    as every other target — with ``init()`` run once in the constructor, so Serve
    counts the replica as started only once ``init()`` succeeded, and a raising
    ``init()`` fails the replica with ``NBDEPLOY-INIT-FAILED: <Type>: <message>``
    (what :mod:`.status` reads back). Its ASGI app is the application's ingress when
    the service has one version; with several, :meth:`ScoringReplica.http` answers
    the router's calls.
:class:`TrafficRouter`
    The ingress of an endpoint with versions: picks a version per request by weight
    (or the one a request names in ``x-nbdeploy-version`` / ``azureml-model-
    deployment``), hands the request to it through a deployment handle and adds the
    header naming it — the local router's contract. New weights arrive as the
    router's ``user_config`` (Serve's ``reconfigure``): no replica restarts.

The auth file: the workspace's ``auth.json`` travels as data (constructor argument
and ``user_config``), and each replica writes it to a private file it serves from; a
``regen_key`` re-sends it through ``user_config``, which Serve applies in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import tempfile
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from nbdeploy.exceptions import NbdeployError

__all__ = [
    "INIT_FAILED",
    "ReplicaInitError",
    "ScoringBackend",
    "ScoringReplica",
    "TrafficRouter",
    "call_asgi",
]

logger = logging.getLogger("nbdeploy.server")

#: The headers that pin a request to a version and name the version that answered
#: (the local router's contract, and Azure ML's name for it).
VERSION_HEADER = "x-nbdeploy-version"
AZURE_VERSION_HEADER = "azureml-model-deployment"

#: The marker of a replica whose bundle or ``init()`` failed (read by :mod:`.status`).
INIT_FAILED = "NBDEPLOY-INIT-FAILED"

#: A forwarded request: method, path, query string, headers; and the answer.
Forwarded = tuple[str, str, bytes, list[tuple[bytes, bytes]]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class ReplicaInitError(RuntimeError):
    """The bundle could not be loaded or its ``init()`` raised (the message starts with
    :data:`INIT_FAILED`)."""


def _write_auth(folder: Path, auth: Mapping[str, Any] | None) -> Path | None:
    """The replica's private copy of the service's auth file (``None`` without auth)."""
    if auth is None:
        return None
    from nbdeploy.core.auth import ServiceAuth, write_auth_file

    return write_auth_file(folder / "auth.json", ServiceAuth.from_dict(auth))


async def call_asgi(app: ASGIApp, request: Forwarded, body: bytes) -> Answer:
    """Run one HTTP request through an ASGI app in this process; its answer.

    Examples
    --------
    >>> import asyncio
    >>> async def hello(scope, receive, send):
    ...     await send({"type": "http.response.start", "status": 200, "headers": []})
    ...     await send({"type": "http.response.body", "body": b"hi"})
    >>> asyncio.run(call_asgi(hello, ("GET", "/", b"", []), b""))
    (200, [], b'hi')
    """
    method, path, query, headers = request
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": None,
        "server": None,
    }
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    answer_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, answer_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            answer_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, answer_headers, b"".join(chunks)


class ScoringReplica:
    """One replica of a version: the bundle's scoring app, ``init()`` done.

    Parameters
    ----------
    bundle_dir:
        The bundle folder; ``None`` when it was shipped as the replica's working
        directory (runtime environment ``working_dir``).
    host:
        The address the Serve proxy binds: the server answers the ``Host`` names a
        server bound there would (loopback names for a loopback proxy).
    auth:
        The service's auth file as a dict (``None`` without auth).
    log_level:
        The server's log level.
    """

    def __init__(
        self,
        bundle_dir: str | None,
        host: str = "127.0.0.1",
        auth: Mapping[str, Any] | None = None,
        log_level: str = "info",
    ) -> None:
        from nbdeploy.server.logs import configure

        # print() in init()/run() and the server's logs in one ordered stream, as in
        # a server process's log (the worker's stderr file, which get_logs() reads).
        sys.stdout = sys.stderr
        configure(log_level, "nbdeploy-ray-replica")
        self._private = Path(tempfile.mkdtemp(prefix="nbdeploy-replica-"))
        self._auth = dict(auth) if auth is not None else None
        auth_path = _write_auth(self._private, self._auth)
        self._bundle_dir = bundle_dir or os.getcwd()
        self._host = host
        self._auth_path = auth_path
        self._app: Any = None
        self._runtime: Any = None

    async def initialize(self) -> None:
        """Build the app and run ``init()`` once (Serve awaits this in the
        constructor); raise :class:`ReplicaInitError` if either fails."""
        from nbdeploy.server import app_for_bundle
        from nbdeploy.server.runtime import describe_exception

        try:
            auth_file = None if self._auth_path is None else str(self._auth_path)
            self._app = app_for_bundle(
                self._bundle_dir, host=self._host, port=0, auth_file=auth_file
            )
        except Exception as exc:
            logger.error("cannot load bundle %s", self._bundle_dir, exc_info=exc)
            raise ReplicaInitError(f"{INIT_FAILED}: {describe_exception(exc)}") from None
        self._runtime = self._app.runtime
        await self._runtime.initialize()
        if self._runtime.state != "ready":
            raise ReplicaInitError(f"{INIT_FAILED}: {self._runtime.failure_reason}")

    def reconfigure(self, user_config: Mapping[str, Any] | None) -> None:
        """New keys (``regen_key``), applied in place: the server re-reads the file."""
        auth = (user_config or {}).get("auth")
        if auth is not None and auth != self._auth and self._auth_path is not None:
            self._auth = dict(auth)
            _write_auth(self._private, self._auth)

    def check_health(self) -> None:
        """Serve's periodic health check: the scoring runtime still serves."""
        if self._runtime is None or self._runtime.state != "ready":
            raise RuntimeError("the scoring runtime is not ready")

    def asgi_app(self) -> Any:
        """The ingress app: the scoring app with the server's one-line-per-request
        log. Serve mounts it at the route prefix as ASGI says (``root_path`` is the
        prefix, ``path`` the whole path), which the scoring app routes on."""
        from nbdeploy.server.logs import AccessLog

        return AccessLog(self._app)

    async def http(self, request: Forwarded, body: bytes) -> Answer:
        """Answer a request the router forwards (path below the route prefix)."""
        from nbdeploy.server.logs import AccessLog

        return await call_asgi(AccessLog(self._app), request, body)

    async def __serve_build_asgi_app__(self) -> Any:
        """Serve's hook for a late-bound ingress app: ``init()``, then the app."""
        await self.initialize()
        return self.asgi_app()

    def close(self) -> None:
        """Stop the scoring thread; forget the private auth copy."""
        if self._runtime is not None:
            self._runtime.close()
        import shutil

        shutil.rmtree(self._private, ignore_errors=True)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing to tell
            self.close()


class ScoringBackend(ScoringReplica):
    """A version behind the router: the same replica, called through
    :meth:`ScoringReplica.http` (Serve awaits an ``async`` constructor)."""

    async def __init__(  # type: ignore[misc]
        self,
        bundle_dir: str | None,
        host: str = "127.0.0.1",
        auth: Mapping[str, Any] | None = None,
        log_level: str = "info",
    ) -> None:
        ScoringReplica.__init__(self, bundle_dir, host, auth, log_level)
        await self.initialize()


def _json_error(status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> Answer:
    import orjson

    body = orjson.dumps({"status_code": status, "message": message})
    return status, [(b"content-type", b"application/json"), *headers], body


class TrafficRouter:
    """The ingress of an endpoint with versions (see the module docstring).

    Parameters
    ----------
    versions:
        ``{version: handle}``: Serve passes a deployment handle for each bound version.
    max_request_bytes:
        The endpoint's body limit (413 beyond it, before any version sees it).
    """

    def __init__(self, versions: Mapping[str, Any], max_request_bytes: int) -> None:
        self._handles = dict(versions)
        self._limit = max_request_bytes
        self._weights: dict[str, int] = {}
        self._random = random.Random()

    def reconfigure(self, user_config: Mapping[str, Any] | None) -> None:
        """New weights ``{"weights": {version: percent}}``."""
        weights = (user_config or {}).get("weights") or {}
        self._weights = {str(k): int(v) for k, v in weights.items() if str(k) in self._handles}

    def pick(self, pinned: str | None) -> str | None:
        """The version of the next request: ``pinned`` if it exists, else one drawn by
        weight; ``None`` for an unknown pinned name.

        Examples
        --------
        >>> router = TrafficRouter({"v1": None, "v2": None}, 10)
        >>> router.reconfigure({"weights": {"v1": 0, "v2": 100}})
        >>> router.pick(None), router.pick("v1"), router.pick("v9")
        ('v2', 'v1', None)
        """
        from nbdeploy.targets.weights import pick_weighted

        if pinned is not None:
            return pinned if pinned in self._handles else None
        return pick_weighted(self._weights, self._random.random())

    async def answer(self, request: Forwarded, body: bytes) -> Answer:
        """Route one request to a version; its answer with the version's headers."""
        headers = request[3]
        pin_names = (VERSION_HEADER.encode(), AZURE_VERSION_HEADER.encode())
        pinned = next((v.decode("latin-1") for k, v in headers if k in pin_names), None)
        version = self.pick(pinned)
        if version is None:
            return _json_error(
                404,
                f"this endpoint has no version {pinned!r}; its versions: "
                f"{', '.join(sorted(self._handles))}",
            )
        try:
            status, answer_headers, content = (
                await self._handles[version].options(method_name="http").remote(request, body)
            )
        except Exception as exc:  # the version's replicas are gone or failing
            logger.warning("version %s could not answer: %s", version, exc)
            return _json_error(503, f"version {version!r} could not answer; try again")
        tag = version.encode()
        answer_headers = [
            *answer_headers,
            (VERSION_HEADER.encode(), tag),
            (AZURE_VERSION_HEADER.encode(), tag),
        ]
        return status, answer_headers, content

    def __serve_build_asgi_app__(self) -> ASGIApp:
        """Serve's hook for a late-bound ingress app."""
        return self.asgi_app()

    def asgi_app(self) -> ASGIApp:
        """The router's ASGI app: reads the body (within the limit), answers it."""
        router = self

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            root = scope.get("root_path") or ""
            path = scope.get("path", "")
            rest = (path[len(root) :] if root and path.startswith(root) else path) or "/"
            request: Forwarded = (
                scope["method"],
                rest,
                scope.get("query_string", b""),
                list(scope.get("headers", [])),
            )
            try:
                body = await _read_limited(receive, request[3], router._limit)
                status, headers, content = await router.answer(request, body)
            except NbdeployError as exc:
                status, headers, content = _json_error(exc.status_code, str(exc))
            headers = [h for h in headers if h[0].lower() != b"content-length"]
            headers.append((b"content-length", str(len(content)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

        return app


async def _read_limited(
    receive: Receive, headers: Sequence[tuple[bytes, bytes]], limit: int
) -> bytes:
    """The request body, refused (413) past ``limit`` bytes."""
    from nbdeploy.server.body import receive_body

    declared = next((v for k, v in headers if k.lower() == b"content-length"), None)
    return await receive_body(receive, declared, limit)
