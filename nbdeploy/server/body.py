"""Reading a request body from ASGI ``receive`` within a size limit.

Used by the scoring route and by the Ray target's router, which reads the bodies it
forwards the same way.
"""

from __future__ import annotations

from starlette.types import Receive

from nbdeploy.exceptions import BadRequestError, PayloadTooLargeError

__all__ = ["receive_body"]

_DISCONNECTED = "the client disconnected before sending the whole body"


def _too_large(size: int, limit: int, *, at_least: bool = False) -> PayloadTooLargeError:
    amount = f"at least {size}" if at_least else str(size)
    return PayloadTooLargeError(
        f"request body of {amount} bytes is over this service's limit of {limit} bytes",
        hint="send fewer rows per request, or raise the service's max_request_bytes",
    )


async def receive_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes.

    ``declared`` (the ``Content-Length`` header's value) is checked first, so an
    honest client is refused before sending anything; the bytes are also counted as
    they arrive, which catches chunked bodies (no ``Content-Length``).

    Raises
    ------
    BadRequestError
        ``Content-Length`` is not a number, or the client went away mid-body.
    PayloadTooLargeError
        The body is over ``limit`` (413).
    """
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            text = declared.decode("latin-1")
            raise BadRequestError(f"Content-Length header {text!r} is not a number") from None
        if size > limit:
            raise _too_large(size, limit)
    message = await receive()
    if message["type"] != "http.request":
        raise BadRequestError(_DISCONNECTED)
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(len(body), limit, at_least=True)
        return body
    chunks = [body]
    received = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BadRequestError(_DISCONNECTED)
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise _too_large(received, limit, at_least=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
