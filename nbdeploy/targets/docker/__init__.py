"""The Docker target: a service is a container running the bundle's image.

Where things live: :mod:`.config` (:class:`DockerConfig`), :mod:`.engine` (reaching
the engine), :mod:`.images` (building or reusing the image), :mod:`.containers`
(running, waiting for, removing containers), :mod:`.access` (auth and CORS),
:mod:`.generations` (the update primitives), :mod:`.target` (:class:`DockerTarget`).

States come from the container and a probe of ``GET /``: running and answering →
``Healthy``; running and silent → ``Unhealthy``; exited → ``Failed`` with the reason
(``NBDEPLOY-INIT-FAILED`` from the logs for exit code 3, the kernel's OOM killer for
``State.OOMKilled``); more CPUs or memory than the engine has → ``Unschedulable``.
Any Docker engine URL works, so a remote Docker host is a remote target.
"""

from __future__ import annotations

from .config import DockerConfig as DockerConfig
from .engine import connect as connect
from .engine import engine_url as engine_url
from .images import BuiltImage as BuiltImage
from .images import build_image as build_image
from .images import ensure_image as ensure_image
from .target import DockerTarget as DockerTarget

__all__ = [
    "BuiltImage",
    "DockerConfig",
    "DockerTarget",
    "build_image",
    "connect",
    "engine_url",
    "ensure_image",
]
