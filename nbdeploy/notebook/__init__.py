"""The notebook front of nbdeploy: magics, rich display, widgets.

This is the only package that imports IPython and ipywidgets, and it imports them
lazily: ``import nbdeploy.notebook`` is cheap, and the check process that runs a
scoring script (:mod:`nbdeploy.workflows.check_runner`) never loads them.

- ``%load_ext nbdeploy`` → :func:`load_ipython_extension` registers the magics;
- what it shows is drawn by :mod:`nbdeploy.display` (MIME bundles: ``text/plain`` +
  escaped ``text/html``); the lists and :class:`SwaggerView` are re-exported here;
- :class:`Progress`, :func:`write_score`;
- widgets: :class:`DeployPanel`, :class:`RegistryBrowser`, :class:`TryIt`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbdeploy.display.views import ModelList as ModelList
    from nbdeploy.display.views import ServiceList as ServiceList
    from nbdeploy.display.views import ServiceLogs as ServiceLogs
    from nbdeploy.display.views import SwaggerView as SwaggerView

    from .progress import Progress as Progress
    from .scriptcheck import RunCheck as RunCheck
    from .scriptcheck import ScriptCheck as ScriptCheck
    from .scriptcheck import write_score as write_score
    from .widgets import DeployPanel as DeployPanel
    from .widgets import LiveLogs as LiveLogs
    from .widgets import RegistryBrowser as RegistryBrowser
    from .widgets import TryIt as TryIt

__all__ = [
    "DeployPanel",
    "LiveLogs",
    "ModelList",
    "Progress",
    "RegistryBrowser",
    "RunCheck",
    "ScriptCheck",
    "ServiceList",
    "ServiceLogs",
    "SwaggerView",
    "TryIt",
    "load_ipython_extension",
    "write_score",
]

_LAZY = {
    "Progress": f"{__name__}.progress",
    "RunCheck": f"{__name__}.scriptcheck",
    "ScriptCheck": f"{__name__}.scriptcheck",
    "write_score": f"{__name__}.scriptcheck",
    "ModelList": "nbdeploy.display.views",
    "ServiceList": "nbdeploy.display.views",
    "ServiceLogs": "nbdeploy.display.views",
    "SwaggerView": "nbdeploy.display.views",
    "DeployPanel": f"{__name__}.widgets",
    "LiveLogs": f"{__name__}.widgets",
    "RegistryBrowser": f"{__name__}.widgets",
    "TryIt": f"{__name__}.widgets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbdeploy.notebook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """Register nbdeploy's magics (``%load_ext nbdeploy`` calls this).

    Examples
    --------
    >>> import nbdeploy.notebook
    >>> callable(nbdeploy.notebook.load_ipython_extension)
    True
    """
    from .magics import load_ipython_extension as load

    load(ipython)
