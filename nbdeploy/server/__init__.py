"""The scoring server: one FastAPI app per bundle, run by ``python -m nbdeploy.server``.

Every target runs the same bundle with the same entrypoint. This package depends on
:mod:`nbdeploy.core` and on fastapi/starlette, uvicorn and orjson only — never on
IPython or the notebook fronts — so container images and pods stay small.

- :func:`create_app` builds the app (routes, errors, start-up) for a bundle;
- :func:`serve` runs it with uvicorn (optionally on an already bound socket);
- :func:`main` is the command line (see :mod:`nbdeploy.server.launcher` for the
  machine-readable lines and exit codes targets rely on).
"""

from __future__ import annotations

from nbdeploy.server.app import create_app as create_app
from nbdeploy.server.launcher import EXIT_BIND_FAILED as EXIT_BIND_FAILED
from nbdeploy.server.launcher import EXIT_INIT_FAILED as EXIT_INIT_FAILED
from nbdeploy.server.launcher import main as main
from nbdeploy.server.launcher import serve as serve
from nbdeploy.server.settings import ServerSettings as ServerSettings

__all__ = [
    "EXIT_BIND_FAILED",
    "EXIT_INIT_FAILED",
    "ServerSettings",
    "create_app",
    "main",
    "serve",
]
