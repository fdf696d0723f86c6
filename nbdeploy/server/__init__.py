"""The scoring server: one plain ASGI app per bundle, run by ``python -m nbdeploy.server``.

Every target runs the same bundle with the same entrypoint. This package depends on
:mod:`nbdeploy.core` and on starlette (types, file and redirect answers), uvicorn and
orjson only — never on IPython or the notebook fronts — so container images and pods
stay small.

- :func:`create_app` builds the :class:`ScoringApp` (routes, errors, start-up) for a
  bundle; :func:`app_for_bundle` does so from a bundle folder for a host that runs it
  on its own event loop (Ray Serve's replicas);
- :func:`serve` runs it with uvicorn (optionally on an already bound socket);
- :func:`main` is the command line (see :mod:`nbdeploy.server.launcher` for the
  machine-readable lines and exit codes targets rely on).
"""

from __future__ import annotations

from nbdeploy.server.app import ScoringApp as ScoringApp
from nbdeploy.server.app import app_for_bundle as app_for_bundle
from nbdeploy.server.app import create_app as create_app
from nbdeploy.server.launcher import EXIT_BIND_FAILED as EXIT_BIND_FAILED
from nbdeploy.server.launcher import EXIT_INIT_FAILED as EXIT_INIT_FAILED
from nbdeploy.server.launcher import main as main
from nbdeploy.server.launcher import serve as serve
from nbdeploy.server.options import ServerOptions as ServerOptions

__all__ = [
    "EXIT_BIND_FAILED",
    "EXIT_INIT_FAILED",
    "ScoringApp",
    "ServerOptions",
    "app_for_bundle",
    "create_app",
    "main",
    "serve",
]
