"""CORS for the scoring server: an ASGI middleware answering browser preflights.

Installed only when a service has a :class:`~nbdeploy.core.auth.CorsPolicy`, outermost,
so it also decorates error answers (a browser can then read a 401's message). What it
does per request:

- no ``Origin`` header (curl, Python clients, health probes): nothing but one scan of
  the header list; the request goes straight through;
- a **preflight** (``OPTIONS`` with ``Access-Control-Request-Method``): answered here,
  before routing and before auth — ``204`` with ``Access-Control-Allow-Origin``,
  ``-Methods``, ``-Headers`` and ``-Max-Age`` when origin, method and requested headers
  are allowed; otherwise ``403`` with a JSON message saying which one is not, and no
  ``Access-Control-*`` header (the browser then refuses the real request);
- an actual cross-origin request: passed on; an allowed origin gets
  ``Access-Control-Allow-Origin`` (and ``-Expose-Headers``, ``-Allow-Credentials``)
  on the answer, replacing any a raw scoring script set; a disallowed one gets none,
  so the browser hides the answer from the page.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nbdeploy.core.auth import CorsPolicy

__all__ = ["CorsMiddleware"]

_REPLACED = frozenset(
    {
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-expose-headers",
    }
)


class CorsMiddleware:
    """ASGI middleware applying a :class:`~nbdeploy.core.auth.CorsPolicy`.

    Examples
    --------
    >>> from starlette.applications import Starlette
    >>> app = CorsMiddleware(Starlette(), CorsPolicy(("http://localhost:3000",)))
    """

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy
        self._methods = frozenset(policy.allow_methods)
        self._any_method = "*" in self._methods
        self._headers = frozenset(h.lower() for h in policy.allow_headers)
        self._any_header = "*" in self._headers
        self._methods_value = ", ".join(sorted(self._methods - {"*"}) or ["GET", "POST"])
        self._headers_value = ", ".join(h for h in policy.allow_headers if h != "*")
        self._expose_value = ", ".join(policy.expose_headers).encode("latin-1")
        self._max_age = str(policy.max_age).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = request_headers = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
            elif key == b"access-control-request-method":
                request_method = value
            elif key == b"access-control-request-headers":
                request_headers = value
        if origin is None:
            await self.app(scope, receive, send)
            return
        text = origin.decode("latin-1")
        if scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(text, request_method, request_headers, send)
            return
        if not self.policy.allows_origin(text):
            await self.app(scope, receive, send)
            return
        added = self._origin_headers(origin)
        if self._expose_value:
            added.append((b"access-control-expose-headers", self._expose_value))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k.lower() not in _REPLACED]
                message = {**message, "headers": _merge_vary(headers + added)}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _origin_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        policy = self.policy
        if policy.any_origin and not policy.allow_credentials:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if policy.allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def _preflight(
        self, origin: str, method: bytes, requested: bytes | None, send: Send
    ) -> None:
        wanted_method = method.decode("latin-1").strip().upper()
        wanted_headers = [
            h.strip().lower() for h in (requested or b"").decode("latin-1").split(",") if h.strip()
        ]
        problem = None
        if not self.policy.allows_origin(origin):
            problem = (
                f"CORS preflight refused: origin {origin!r} is not allowed to call this "
                "service\nHint: add it to the service's CORS allow_origins "
                "(nbdeploy.deploy(..., cors={'allow_origins': [...]}))"
            )
        elif not (self._any_method or wanted_method in self._methods):
            problem = (
                f"CORS preflight refused: method {wanted_method!r} is not allowed "
                f"(allowed: {self._methods_value})"
            )
        elif not self._any_header:
            refused = [h for h in wanted_headers if h not in self._headers]
            if refused:
                problem = (
                    f"CORS preflight refused: request header(s) {', '.join(refused)} not "
                    f"allowed (allowed: {self._headers_value})\nHint: add them to the "
                    "service's CORS allow_headers"
                )
        vary = (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        if problem is not None:
            body = orjson.dumps({"status_code": 403, "message": problem})
            await _answer(send, 403, [(b"content-type", b"application/json"), vary], body=body)
            return
        allowed_headers = (
            ", ".join(wanted_headers) if (self._any_header and wanted_headers) else None
        ) or self._headers_value
        headers = [
            *(h for h in self._origin_headers(origin.encode("latin-1")) if h[0] != b"vary"),
            (b"access-control-allow-methods", self._methods_value.encode("latin-1")),
            (b"access-control-allow-headers", allowed_headers.encode("latin-1")),
            (b"access-control-max-age", self._max_age),
            vary,
        ]
        await _answer(send, 204, headers)


def _merge_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """One ``Vary`` header: the app's values and ours together."""
    varies = [v for k, v in headers if k.lower() == b"vary"]
    if len(varies) < 2:
        return headers
    merged = b", ".join(dict.fromkeys(p.strip() for v in varies for p in v.split(b",")))
    return [(k, v) for k, v in headers if k.lower() != b"vary"] + [(b"vary", merged)]


async def _answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
