"""Every error the scoring server answers with, in one JSON shape.

The body is always ``{"status_code": <int>, "message": <str>}`` (``ErrorResponse`` in
the OpenAPI documents) with ``Content-Type: application/json`` — for the server's own
errors (:mod:`nbdeploy.exceptions` carries their status codes), for unknown routes
(404) and methods (405), and for anything unexpected (500). Never an HTML page, and
never a 500 for a client's mistake.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from nbdeploy.exceptions import NbdeployError

__all__ = ["error_response", "install_error_handlers"]

_REASONS = {
    404: "not found",
    405: "method not allowed",
}


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON error response ``{"status_code": ..., "message": ...}``.

    Examples
    --------
    >>> error_response(400, "request body is not valid JSON").body
    b'{"status_code":400,"message":"request body is not valid JSON"}'
    """
    body = orjson.dumps({"status_code": status_code, "message": message})
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    method, path = request.method, request.url.path
    if status == 404:
        message = f"no route {path!r}; the service answers GET /, POST /score, " + (
            "GET /swagger.json, GET /openapi.json and GET /docs"
        )
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow") or "?"
        message = f"method {method} is not allowed on {path!r}; allowed: {allowed}"
    else:
        message = str(exc.detail) if exc.detail else _REASONS.get(status, "error")
    return error_response(status, message, headers=exc.headers)


async def _nbdeploy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NbdeployError)
    return error_response(exc.status_code, str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this handler answered, so uvicorn logs the traceback.
    return error_response(
        500, f"internal server error ({type(exc).__name__}); the details are in the service logs"
    )


def install_error_handlers(app: Starlette) -> None:
    """Register the JSON error handlers on a FastAPI/Starlette ``app``."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(NbdeployError, _nbdeploy_error)
    app.add_exception_handler(Exception, _unexpected)
