"""The Ray target (``target="ray"``, ``RayWebservice``): services as Ray Serve
applications running nbdeploy's own scoring server in every replica.

A small package of parts with one job each:

- :mod:`.config` — :class:`RayConfig`, the settings (cluster, replicas, autoscaling,
  reservations, route, access).
- :mod:`.application` — a service record → its Serve application (pure).
- :mod:`.replica` — what runs in the replicas: the scoring app, the version router.
- :mod:`.cluster` — the workspace's embedded cluster: started detached, found again,
  stopped by its own PIDs (:func:`stop_cluster`).
- :mod:`.session` — the only module that imports ``ray``.
- :mod:`.status` — Serve's view of an application → ``ServiceState`` and why (pure).
- :mod:`.target` — :class:`RayTarget`, which converges the cluster to what a service
  record describes.

Importing this package does not import Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cluster import cluster_status as cluster_status
    from .cluster import stop_cluster as stop_cluster
    from .config import RayConfig as RayConfig
    from .target import RayTarget as RayTarget

__all__ = ["RayConfig", "RayTarget", "cluster_status", "stop_cluster"]


def __getattr__(name: str) -> Any:
    if name == "RayConfig":
        from .config import RayConfig

        return RayConfig
    if name == "RayTarget":
        from .target import RayTarget

        return RayTarget
    if name in {"stop_cluster", "cluster_status"}:
        from . import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
