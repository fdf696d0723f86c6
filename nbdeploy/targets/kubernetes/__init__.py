"""The Kubernetes target (``target="kubernetes"``, ``AksWebservice``).

A small package of parts with one job each:

- :mod:`.config` — :class:`KubernetesConfig`, the settings (the reference's
  ``AksWebservice.deploy_configuration`` parameters plus cluster, image, exposure).
- :mod:`.manifests` — configuration + facts → the objects (pure; YAML export).
- :mod:`.images` — the image, built by the Docker target's packaging, pushed or loaded.
- :mod:`.cluster` — the only module that imports the ``kubernetes`` client.
- :mod:`.status` — API objects → ``ServiceState`` and the reason (pure).
- :mod:`.target` — :class:`KubernetesTarget`, which converges the cluster to what a
  service record describes.

Importing this package imports neither the Kubernetes client nor the Docker SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import KubernetesConfig as KubernetesConfig
    from .manifests import Manifests as Manifests
    from .target import KubernetesTarget as KubernetesTarget

__all__ = ["KubernetesConfig", "KubernetesTarget", "Manifests"]


def __getattr__(name: str) -> Any:
    if name == "KubernetesConfig":
        from .config import KubernetesConfig

        return KubernetesConfig
    if name == "Manifests":
        from .manifests import Manifests

        return Manifests
    if name == "KubernetesTarget":
        from .target import KubernetesTarget

        return KubernetesTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
