"""Deployment targets: where a bundle runs.

One module per target behind :class:`~nbdeploy.targets.base.Target` (deploy, update,
get, list, logs, delete, wait). The local, Docker, Kubernetes and Ray targets ship
here; others plug in with :func:`register_target`.

Importing this package is cheap: targets and their configs are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Target as Target
from .base import default_config as default_config
from .base import get_target as get_target
from .base import get_target_name as get_target_name
from .base import register_target as register_target
from .base import target_names as target_names

# The Docker SDK is imported only when the docker target is used.
register_target(
    "docker",
    "nbdeploy.targets.docker.target:DockerTarget",
    "nbdeploy.targets.docker.config:DockerConfig",
)
# The Kubernetes client is imported only when the target talks to a cluster.
register_target(
    "kubernetes",
    "nbdeploy.targets.kubernetes.target:KubernetesTarget",
    "nbdeploy.targets.kubernetes.config:KubernetesConfig",
)
# Ray is imported only when the target talks to a cluster.
register_target(
    "ray", "nbdeploy.targets.ray.target:RayTarget", "nbdeploy.targets.ray.config:RayConfig"
)

if TYPE_CHECKING:
    from .docker import DockerConfig as DockerConfig
    from .docker import DockerTarget as DockerTarget
    from .local import LocalConfig as LocalConfig
    from .local import LocalTarget as LocalTarget

__all__ = [
    "DockerConfig",
    "DockerTarget",
    "LocalConfig",
    "LocalTarget",
    "Target",
    "default_config",
    "ensure_warm_server",
    "get_target",
    "get_target_name",
    "register_target",
    "shutdown_warm_server",
    "target_names",
]


def ensure_warm_server(workspace: Any, *, wait: bool = False, **kwargs: Any) -> Any:
    """Start the local target's warm-start server early (see
    :func:`nbdeploy.targets.process.warm.ensure_warm_server`).

    Examples
    --------
    >>> ensure_warm_server("/tmp/ws")  # doctest: +SKIP
    """
    from .process.warm import ensure_warm_server as _ensure

    return _ensure(workspace, wait=wait, **kwargs)


def shutdown_warm_server(workspace: Any, **kwargs: Any) -> bool:
    """Stop the warm-start server of ``workspace`` by PID (see
    :func:`nbdeploy.targets.process.warm.shutdown_warm_server`).

    Examples
    --------
    >>> import tempfile
    >>> shutdown_warm_server(tempfile.mkdtemp())
    False
    """
    from .process.warm import shutdown_warm_server as _shutdown

    return _shutdown(workspace, **kwargs)


def __getattr__(name: str) -> Any:
    if name in {"DockerConfig", "DockerTarget"}:
        from . import docker

        return getattr(docker, name)
    if name in {"LocalConfig", "LocalTarget"}:
        from . import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
