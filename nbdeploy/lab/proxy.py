"""``/nbdeploy/proxy/<port>/<path>``: a service, reached through the Jupyter server.

A service listens on ``127.0.0.1:<port>`` of the machine that runs the kernel. When
JupyterLab runs elsewhere (JupyterHub, Binder, an SSH tunnel), a browser cannot open
``http://127.0.0.1:<port>/docs``; it can always reach the Jupyter server, which
forwards the request here — as jupyter-server-proxy does, but only to the ports of
nbdeploy services (in the server's workspace or one a running kernel uses), never an
open proxy to whatever else listens on loopback.

The Swagger UI page uses relative URLs, so ``<base>/nbdeploy/proxy/5001/docs`` loads
its assets and ``openapi.json`` through the proxy too, and "Try it out" posts to
``<base>/nbdeploy/proxy/5001/score``. Requests need Jupyter's login like every other
route; Jupyter's XSRF token (which Swagger UI cannot send) is replaced by a same-origin
check. Jupyter's cookies are not forwarded to the service.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tornado.web
from jupyter_server.base.handlers import JupyterHandler
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

__all__ = ["ProxyHandler", "service_ports"]

#: Request headers not forwarded: hop-by-hop ones, and Jupyter's own credentials.
_DROP_REQUEST = {
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "cookie",
    "x-xsrftoken",
    "content-length",
}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "server"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: Seconds the set of known service ports is reused before the workspaces are read again.
_PORTS_TTL = 2.0


def service_ports(homes: list[Path]) -> set[int]:
    """The loopback ports of the services recorded in the workspaces at ``homes``.

    Examples
    --------
    >>> import tempfile
    >>> service_ports([Path(tempfile.mkdtemp())])
    set()
    """
    from nbdeploy.core.workspace import Workspace

    ports: set[int] = set()
    for home in homes:
        if not (home / "nbdeploy.db").is_file():
            continue  # never create a workspace just to look into it
        for record in Workspace(home).services.list():
            uri = urlsplit(record.scoring_uri or "")
            if uri.hostname in _LOOPBACK and uri.port:
                ports.add(uri.port)
            for version in record.config.get("versions") or ():
                if isinstance(version, dict) and isinstance(version.get("port"), int):
                    ports.add(version["port"])
    return ports


class ProxyHandler(JupyterHandler):
    """Forward any request to ``http://127.0.0.1:<port><path>`` and send back its answer."""

    _ports: tuple[float, set[int]] = (0.0, set())

    def check_xsrf_cookie(self) -> None:
        """Swagger UI cannot send Jupyter's XSRF token; a request from another site
        (its ``Origin`` is not this server) is refused instead."""
        if not hasattr(self, "_jupyter_current_user"):
            return  # called again by prepare() once the user is known
        if not self.check_origin():
            raise tornado.web.HTTPError(403, "nbdeploy proxy: cross-origin request refused")

    async def _known_ports(self) -> set[int]:
        from .kernels import noted_homes
        from .settings import HOME_SETTING

        stamp, ports = ProxyHandler._ports
        if time.monotonic() - stamp < _PORTS_TTL:
            return ports
        manager = self.kernel_manager
        homes = [Path(self.settings[HOME_SETTING])]
        homes += noted_homes(manager.connection_dir, list(manager.list_kernel_ids()))
        ports = await asyncio.get_running_loop().run_in_executor(None, service_ports, homes)
        ProxyHandler._ports = (time.monotonic(), ports)
        return ports

    async def _forward(self, port: str, path: str | None) -> None:
        if not path:  # /nbdeploy/proxy/5001 -> /nbdeploy/proxy/5001/
            self.redirect(self.request.path + "/")
            return
        number = int(port)
        if number not in await self._known_ports():
            ProxyHandler._ports = (0.0, set())  # a service deployed a moment ago
            if number not in await self._known_ports():
                raise tornado.web.HTTPError(
                    404, f"no nbdeploy service listens on port {number} (see %services)"
                )
        query = f"?{self.request.query}" if self.request.query else ""
        headers = {
            k: v for k, v in self.request.headers.get_all() if k.lower() not in _DROP_REQUEST
        }
        body = self.request.body if self.request.method not in ("GET", "HEAD") else None
        request = HTTPRequest(
            f"http://127.0.0.1:{number}{path}{query}",
            method=self.request.method or "GET",
            headers=headers,
            body=body if body or self.request.method in ("POST", "PUT", "PATCH") else None,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            request_timeout=300,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise tornado.web.HTTPError(
                502, f"service on port {number} does not answer: {exc}"
            ) from None
        if response.code == 599:  # tornado's "no HTTP answer at all"
            raise tornado.web.HTTPError(
                502, f"service on port {number} does not answer: {response.error}"
            )
        self.set_status(response.code, response.reason)
        self.clear_header("Content-Type")
        for name, value in response.headers.get_all():
            if name.lower() not in _DROP_RESPONSE:
                self.add_header(name, value)
        if response.body:
            self.write(response.body)
        await self.finish()

    @tornado.web.authenticated
    async def get(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    @tornado.web.authenticated
    async def post(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    @tornado.web.authenticated
    async def put(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    @tornado.web.authenticated
    async def delete(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    @tornado.web.authenticated
    async def patch(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    @tornado.web.authenticated
    async def head(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    @tornado.web.authenticated
    async def options(self, port: str, path: str | None = None) -> None:
        await self._forward(port, path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as the services send them: ``{"status_code", "message"}``."""
        import json

        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status_code": status_code, "message": message}))
