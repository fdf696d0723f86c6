"""Sending answers as plain ASGI messages, and every error in one JSON shape.

An error body is always ``{"status_code": <int>, "message": <str>}`` (``ErrorResponse``
in the OpenAPI documents) with ``Content-Type: application/json`` — for the server's
own errors (:mod:`nbdeploy.exceptions` carries their status codes), for unknown routes
(404) and methods (405), and for anything unexpected (500). Never an HTML page, and
never a 500 for a client's mistake.
"""

from __future__ import annotations

import orjson
from starlette.types import Send

__all__ = ["JSON", "TEXT", "Headers", "error_body", "send_answer", "send_error"]

#: ASGI header pairs (lower-case names).
Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
TEXT = (b"content-type", b"text/plain; charset=utf-8")


def error_body(status_code: int, message: str) -> bytes:
    """The JSON body of an error answer.

    Examples
    --------
    >>> error_body(400, "request body is not valid JSON")
    b'{"status_code":400,"message":"request body is not valid JSON"}'
    """
    return orjson.dumps({"status_code": status_code, "message": message})


async def send_answer(
    send: Send, status: int, headers: Headers, body: bytes, *, length: bool = True
) -> None:
    """Send a whole answer: ``headers`` (a ``Content-Length`` is appended unless
    ``length`` is False), then ``body``."""
    if length:
        headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, status: int, message: str, headers: Headers) -> None:
    """Send the JSON error answer ``status`` with ``message`` and extra ``headers``."""
    await send_answer(send, status, [JSON, *headers], error_body(status, message))
