"""The scoring server's routes, each a plain ASGI callable.

``/score``
    :class:`Score`, the one implementation of scoring, for every method the route
    takes. ``POST`` of an ordinary script: one pass over the header list (body size,
    content type, credentials, request id), the body read straight from ``receive``
    (:func:`~nbdeploy.server.body.receive_body`), then the runtime's ``score`` (orjson
    decoding, the schema conversion and ``run()`` on the scoring thread within the
    replica's limits, see :mod:`nbdeploy.server.runtime`), and two ``send`` calls. A
    ``@rawhttp`` script gets the whole request (``GET`` too) and answers with any
    status, headers and body; ordinary scripts answer ``GET /score`` with 405.
``/``
    :func:`health`: ``Healthy`` (text) once ``init()`` succeeded, else 503 with the
    reason.
``/swagger.json``, ``/openapi.json``
    :class:`Document`: built from the schemas on first request, then cached
    (:mod:`nbdeploy.server.documents`).
``/docs``, ``/docs/static/<file>``
    :class:`DocsPage` and :func:`static_asset`: Swagger UI from bundled assets.

Every answer of ``/score`` carries ``x-request-id`` (the caller's ``x-request-id`` /
``x-ms-request-id`` when it is safe, else a new one). Errors are the JSON of
:mod:`nbdeploy.server.errors`: 400 body not JSON / no ``"data"``, 401 missing or
wrong credentials (with ``WWW-Authenticate: Bearer``), 405 ``GET`` of an ordinary
script, 413 body too large, 415 body not declared as JSON, 422 data does not match the
schema, 500 ``run()`` raised (the message names the request id; the traceback goes to
the logs only), 503 not ready or busy, 504 ``run()`` too slow.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

from nbdeploy.exceptions import (
    AuthenticationError,
    NbdeployError,
    ScoringTimeoutError,
    ServiceBusyError,
)
from nbdeploy.server.body import receive_body
from nbdeploy.server.documents import ASSETS_DIR, STATIC_FILES, build_document, render_docs_html
from nbdeploy.server.errors import JSON, TEXT, Headers, send_answer, send_error
from nbdeploy.server.guard import AuthChecker, check_json_type
from nbdeploy.server.runtime import ScoringRuntime

__all__ = [
    "STATIC_PREFIX",
    "DocsPage",
    "Document",
    "RequestIds",
    "Score",
    "health",
    "not_ready_message",
    "static_asset",
]

logger = logging.getLogger("nbdeploy.server")

#: Where the Swagger UI files are served (``/docs/static/<file>``).
STATIC_PREFIX = "/docs/static/"

_REQUEST_ID_OK = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
_HEALTHY = b"Healthy"
_NO_ANSWER_STATUSES = frozenset({204, 304})


class RequestIds:
    """New request ids: 32 hex digits, a random per-process prefix and a counter.

    Unique within the process and, by the random prefix, across processes (a forked
    warm-start child draws its own prefix: the generator is made per app). Cheaper
    than ``uuid4()`` (no system call per request).

    Examples
    --------
    >>> ids = RequestIds()
    >>> a, b = ids.new(), ids.new()
    >>> len(a) == 32 and a != b and a[:16] == b[:16]
    True
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


def not_ready_message(runtime: ScoringRuntime) -> str:
    """Why the service cannot score (the message of its 503 answers)."""
    if runtime.state == "starting":
        return "Initializing: the scoring script's init() has not finished yet"
    if runtime.state == "failed":
        return f"init() failed: {runtime.failure_reason}; the traceback is in the service logs"
    return "the service is shutting down"


def error_message(exc: NbdeployError, request_id: str) -> str:
    """The message of an error answer; a 5xx is logged with its cause and traceback and
    its message names the request id instead of carrying the traceback."""
    if isinstance(exc, (ServiceBusyError, ScoringTimeoutError)):
        logger.warning("request %s: %s", request_id, exc.message)
        return str(exc)
    if exc.status_code >= 500:
        cause = exc.__cause__ or exc
        logger.error("request %s failed: %s", request_id, exc.message, exc_info=cause)
        message = f"{exc.message} (request id {request_id}; the traceback is in the service logs)"
        if exc.hint:
            message += f"\nHint: {exc.hint}"
        return message
    return str(exc)


class Score:
    """``/score``: scoring, the one implementation (see the module doc).

    Parameters
    ----------
    runtime:
        The scoring script's runtime.
    checker:
        The ``Authorization`` checker, or None without auth.
    challenge:
        The ``WWW-Authenticate`` header(s) of a 401.
    limit:
        The largest body accepted, in bytes.
    """

    def __init__(
        self,
        runtime: ScoringRuntime,
        checker: AuthChecker | None,
        challenge: Mapping[str, str],
        limit: int,
    ) -> None:
        self._runtime = runtime
        self._checker = checker
        self._challenge = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in challenge.items()
        ]
        self._limit = limit
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = authorization = given_id = given_ms_id = content_type = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                if declared is None:
                    declared = value
            elif key == b"content-type":
                if content_type is None:
                    content_type = value
            elif key == b"authorization":
                if authorization is None:
                    authorization = value
            elif key == b"x-request-id":
                if given_id is None:
                    given_id = value
            elif key == b"x-ms-request-id" and given_ms_id is None:
                given_ms_id = value
        if given_id is not None and _REQUEST_ID_OK.fullmatch(given_id):
            request_id = given_id
        elif given_ms_id is not None and _REQUEST_ID_OK.fullmatch(given_ms_id):
            request_id = given_ms_id
        else:
            request_id = self._ids.new().encode()
        id_header = (b"x-request-id", request_id)
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        try:
            status = await self._answer(
                scope, receive, send, id_header, declared, content_type, authorization
            )
        except Exception as exc:
            status = await self._answer_error(send, exc, scope["method"], id_header)
        if debug:
            logger.debug(
                "%s /score %s -> %d in %.2f ms",
                scope["method"],
                request_id.decode("latin-1"),
                status,
                (time.perf_counter() - started) * 1000,
            )

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        declared: bytes | None,
        content_type: bytes | None,
        authorization: bytes | None,
    ) -> int:
        """Score the request and send the answer; its status."""
        runtime = self._runtime
        if runtime.state != "ready":
            await send_error(send, 503, not_ready_message(runtime), [id_header])
            return 503
        method = scope["method"]
        if method != "POST" and not runtime.raw:
            message = (
                f"method {method} is not allowed on '/score' of this service; send POST "
                '/score with {"data": ...} (GET reaches only @rawhttp scoring scripts)'
            )
            await send_error(send, 405, message, [id_header, (b"allow", b"POST")])
            return 405
        if self._checker is not None:
            self._checker.check(None if authorization is None else authorization.decode("latin-1"))
        if runtime.raw:
            return await self._answer_raw(scope, receive, send, id_header, declared)
        check_json_type(content_type)
        body = await receive_body(receive, declared, self._limit)
        result = await runtime.score(body)
        await send_answer(send, 200, [JSON, id_header], result)
        return 200

    async def _answer_raw(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        declared: bytes | None,
    ) -> int:
        """Hand the whole request to a ``@rawhttp`` ``run`` and send what it answers."""
        from nbdeploy.core.rawhttp import Request as RawRequest

        body = await receive_body(receive, declared, self._limit)
        request = Request(scope)
        client = request.client
        raw = RawRequest(
            request.method,
            request.url.path,
            query_string=scope.get("query_string", b""),
            headers=request.headers.items(),
            body=body,
            url_root=str(request.base_url),
            remote_addr=client.host if client else None,
        )
        status, pairs, content = await self._runtime.score_raw(raw)
        # As Starlette's Response: no Content-Length on 1xx, 204 and 304 answers.
        headers: Headers = []
        if status >= 200 and status not in _NO_ANSWER_STATUSES:
            headers.append((b"content-length", b"%d" % len(content)))
        names = set()
        for key, value in pairs:
            name = key.lower().encode("latin-1", "replace")
            names.add(name)
            headers.append((name, value.encode("latin-1", "replace")))
        if id_header[0] not in names:
            headers.append(id_header)
        await send_answer(send, status, headers, content, length=False)
        return status

    async def _answer_error(
        self, send: Send, exc: Exception, method: str, id_header: tuple[bytes, bytes]
    ) -> int:
        """Send the JSON answer of a failed request; its status."""
        request_id = id_header[1].decode("latin-1")
        if isinstance(exc, AuthenticationError):
            await send_error(send, exc.status_code, str(exc), [id_header, *self._challenge])
            return exc.status_code
        if isinstance(exc, NbdeployError):
            message = error_message(exc, request_id)
            await send_error(send, exc.status_code, message, [id_header])
            return exc.status_code
        # A bug of the server's: still a JSON 500, and logged.
        logger.error("%s /score %s failed", method, request_id, exc_info=exc)
        message = (
            f"internal server error ({type(exc).__name__}); the details are in the service logs"
        )
        await send_error(send, 500, message, [id_header])
        return 500


async def health(scope: Scope, receive: Receive, send: Send, *, runtime: ScoringRuntime) -> None:
    """``GET /``: ``Healthy`` once ``init()`` succeeded, else 503 with the reason."""
    if runtime.state == "ready":
        await send_answer(send, 200, [TEXT], _HEALTHY)
    else:
        await send_error(send, 503, not_ready_message(runtime), [])


class Document:
    """``GET /swagger.json`` or ``GET /openapi.json``: the document ``build`` makes,
    built once ``init()`` has loaded the script (503 before), then cached."""

    def __init__(
        self,
        build: Callable[..., dict[str, Any]],
        runtime: ScoringRuntime,
        title: str,
        auth: bool,
    ) -> None:
        self._build = build
        self._runtime = runtime
        self._title = title
        self._auth = auth
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self._runtime
        if runtime.state == "starting":
            await send_error(send, 503, not_ready_message(runtime), [])
            return
        if self._body is None:
            self._body = build_document(self._build, runtime, self._title, self._auth)
        await send_answer(send, 200, [JSON], self._body)


class DocsPage:
    """``GET /docs``: the Swagger UI page of a service called ``title``."""

    def __init__(self, title: str) -> None:
        self._body = render_docs_html(title).encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_answer(send, 200, [(b"content-type", b"text/html; charset=utf-8")], self._body)


async def static_asset(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /docs/static/<name>``: one of
    :data:`~nbdeploy.server.documents.STATIC_FILES`, nothing else."""
    name = str(scope["path"]).rsplit("/", 1)[-1]
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        message = f"no such Swagger UI asset {name!r}; known: {', '.join(STATIC_FILES)}"
        await send_error(send, 404, message, [])
        return
    response = FileResponse(
        ASSETS_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
    await response(scope, receive, send)
