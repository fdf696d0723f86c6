"""The JupyterLab side of nbdeploy: server routes for the Deployments panel.

The server extension module is ``nbdeploy.lab`` (enabled by
``jupyter-config/server-config/nbdeploy.json``, which the wheel installs into
``etc/jupyter/jupyter_server_config.d``). It reads the same workspace as the kernel:
the ``home`` setting (``$NBDEPLOY_HOME``, else ``~/.nbdeploy``), unless the server is
started with ``--NbdeployLab.home=PATH`` (or ``c.NbdeployLab.home`` in a config file).

The TypeScript half lives in ``labextension/`` and is built into
``nbdeploy/labextension``; :func:`_jupyter_labextension_paths` tells Jupyter where.

Importing this module is cheap (no Jupyter or traitlets imports), so the top-level
package can re-export the entry points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "_jupyter_labextension_paths",
    "_jupyter_server_extension_points",
    "_load_jupyter_server_extension",
    "workspace_home",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built JupyterLab extension is, relative to the ``nbdeploy`` package.

    ``jupyter labextension develop`` imports the *top-level* package and calls this,
    so ``nbdeploy/__init__.py`` re-exports it.

    Examples
    --------
    >>> _jupyter_labextension_paths()
    [{'src': 'labextension', 'dest': 'nbdeploy'}]
    """
    return [{"src": "labextension", "dest": "nbdeploy"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension: this module.

    Examples
    --------
    >>> _jupyter_server_extension_points()
    [{'module': 'nbdeploy.lab'}]
    """
    return [{"module": "nbdeploy.lab"}]


def workspace_home(server_app: Any) -> Path:
    """The workspace folder the routes read: the trait, else the ``home`` setting.

    Examples
    --------
    >>> workspace_home(server_app)  # doctest: +SKIP
    PosixPath('/root/.nbdeploy')
    """
    from nbdeploy import config

    from .settings import NbdeployLab

    settings = NbdeployLab(parent=server_app)
    return Path(config.resolve("home", settings.home)).expanduser().absolute()


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the ``/nbdeploy/api/...`` routes on the running server."""
    from .handlers import setup_handlers

    home = workspace_home(server_app)
    setup_handlers(server_app.web_app, home)
    server_app.log.info("nbdeploy: Deployments panel routes registered (workspace %s)", home)
