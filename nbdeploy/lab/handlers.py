"""The Jupyter server routes the Deployments panel calls.

===========================================  =================================
``GET    /nbdeploy/api/models``               registered models (latest versions)
``GET    /nbdeploy/api/services``             services with their live state
``GET    /nbdeploy/api/targets``              deployment targets, usable or why not
``GET    /nbdeploy/api/services/<name>``      one service
``GET    /nbdeploy/api/services/<name>/logs`` its log (``?tail=N``, default 200)
``DELETE /nbdeploy/api/services/<name>``      stop and forget it
``*      /nbdeploy/proxy/<port>/<path>``      a service, through the Jupyter server
===========================================  =================================

The API routes take ``?kernel=<id>``: they then read the workspace that kernel uses
(:mod:`nbdeploy.lab.kernels`), so the panel shows — and deletes in — the notebook's
workspace, not the server's default one. Answers with a ``workspace`` say where it
came from in ``source`` (``"kernel"`` or ``"server"``).

Every route needs the server's authentication (``403`` without a token). Errors answer
``{"message": ...}`` with the status of the nbdeploy exception (``404`` for an unknown
service). Workspace reads and target calls block, so they run in a thread pool, off the
server's event loop. The proxy is :mod:`nbdeploy.lab.proxy`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from nbdeploy.exceptions import NbdeployError

from . import views
from .settings import HOME_SETTING

__all__ = [
    "LogsHandler",
    "ModelsHandler",
    "ServiceHandler",
    "ServicesHandler",
    "TargetsHandler",
    "setup_handlers",
]

#: The most log lines one request may ask for.
MAX_TAIL = 100_000


class _NbdeployHandler(APIHandler):
    """Shared plumbing: the workspace, off-loop calls and JSON errors."""

    def home(self) -> tuple[Path, str]:
        """The workspace folder to read and where that choice came from: the one the
        kernel of ``?kernel=<id>`` noted, else the server's."""
        from .kernels import kernel_home

        kernel = self.get_query_argument("kernel", None)
        if kernel and kernel in self.kernel_manager.list_kernel_ids():
            noted = kernel_home(self.kernel_manager.connection_dir, kernel)
            if noted is not None:
                return noted, "kernel"
        return Path(self.settings[HOME_SETTING]), "server"

    def workspace(self) -> Any:
        from nbdeploy.sdk.workspace import get_workspace

        return get_workspace(self.home()[0])

    async def call(self, func: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        """Run ``func(workspace, *args, **kwargs)`` in a thread and send its result."""
        loop = asyncio.get_running_loop()
        try:
            workspace = self.workspace()
            result = await loop.run_in_executor(
                None, functools.partial(func, workspace, *args, **kwargs)
            )
        except NbdeployError as exc:
            self.fail(exc.status_code, str(exc))
            return
        if "workspace" in result:
            result["source"] = self.home()[1]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(result))

    def fail(self, status: int, message: str) -> None:
        """Answer ``{"message": message}`` with HTTP ``status``."""
        if status >= 500:
            self.log.error("nbdeploy: %s", message)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def flag(self, name: str, default: bool) -> bool:
        """A boolean query argument (``1/0``, ``true/false``)."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        return raw.strip().lower() not in {"0", "false", "no", "off"}


class ModelsHandler(_NbdeployHandler):
    """``GET /nbdeploy/api/models``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.call(views.list_models)


class ServicesHandler(_NbdeployHandler):
    """``GET /nbdeploy/api/services`` (``?refresh=0`` skips the live probe)."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.call(views.list_services, refresh=self.flag("refresh", True))


class ServiceHandler(_NbdeployHandler):
    """``GET`` / ``DELETE /nbdeploy/api/services/<name>``."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self.call(views.service_detail, name, refresh=self.flag("refresh", True))

    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        await self.call(views.delete_service, name)


class TargetsHandler(_NbdeployHandler):
    """``GET /nbdeploy/api/targets``: the same for every workspace (no ``?kernel=``)."""

    @tornado.web.authenticated
    async def get(self) -> None:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, views.list_targets)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(result))


class LogsHandler(_NbdeployHandler):
    """``GET /nbdeploy/api/services/<name>/logs?tail=N``."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        raw = self.get_query_argument("tail", str(views.DEFAULT_TAIL))
        try:
            tail = int(raw)
        except ValueError:
            tail = 0
        if not 1 <= tail <= MAX_TAIL:
            self.fail(400, f"tail={raw!r} is not a line count: use an integer from 1 to {MAX_TAIL}")
            return
        await self.call(views.service_logs, name, tail)


def setup_handlers(web_app: tornado.web.Application, home: Path) -> list[str]:
    """Add the routes to ``web_app``, reading the workspace at ``home``.

    Returns the route patterns (for the server log).

    Examples
    --------
    >>> setup_handlers(server_app.web_app, Path("~/.nbdeploy").expanduser())  # doctest: +SKIP
    ['/nbdeploy/api/models', ...]
    """
    web_app.settings[HOME_SETTING] = str(home)
    base = url_path_join(web_app.settings.get("base_url", "/"), "nbdeploy", "api")
    name = r"(?P<name>[^/]+)"
    routes: list[tuple[str, type[Any]]] = [
        (url_path_join(base, "models"), ModelsHandler),
        (url_path_join(base, "services"), ServicesHandler),
        (url_path_join(base, "targets"), TargetsHandler),
        (url_path_join(base, "services", name, "logs"), LogsHandler),
        (url_path_join(base, "services", name), ServiceHandler),
    ]
    from .proxy import ProxyHandler

    proxy = url_path_join(web_app.settings.get("base_url", "/"), "nbdeploy", "proxy")
    routes.append((proxy + r"/(?P<port>\d+)(?P<path>/.*)?", ProxyHandler))
    web_app.add_handlers(".*$", routes)
    return [pattern for pattern, _ in routes]
