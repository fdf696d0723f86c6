"""Which deployment targets exist, and which can be used from this Python.

Every front that lets a user choose a target (the lab panel's selector, the deploy
widget, the CLI) asks here rather than keeping its own list:
:func:`target_availability` gives each known target with whether it can be used and,
if not, one line saying why and how to get it.

The checks are cheap and import nothing heavy: an optional client library is looked
for with :func:`importlib.util.find_spec` (Ray, the Docker SDK and the Kubernetes
client are never imported here); a local Docker engine socket is connected to, a
remote engine is not probed; a Kubernetes configuration is a file that exists (or the
service account of a pod). A target registered by a plugin has no check: it is
reported usable, and its own errors say what is missing when it is used.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from nbdeploy.exceptions import NbdeployError
from nbdeploy.targets import target_names

__all__ = ["TargetAvailability", "check_target", "target_availability"]

#: The targets nbdeploy ships, in the order fronts show them (the default first).
SHIPPED = ("local", "docker", "kubernetes", "ray")

#: Seconds to wait for a local Docker engine socket to accept a connection.
SOCKET_TIMEOUT = 0.5


@dataclass(frozen=True)
class TargetAvailability:
    """One deployment target as a front offers it.

    Attributes
    ----------
    name:
        The target's name (``target=`` of :func:`nbdeploy.deploy`).
    usable:
        Whether a deploy to it can work from this Python.
    description:
        One line saying where the target runs a service.
    reason:
        When not usable: why, and how to get it (``None`` when usable).
    """

    name: str
    usable: bool
    description: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"name", "usable", "description", "reason"}``."""
        return {
            "name": self.name,
            "usable": self.usable,
            "description": self.description,
            "reason": self.reason,
        }


def _installed(module: str) -> bool:
    """Whether the top-level package ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _local() -> TargetAvailability:
    return TargetAvailability("local", True, "a process on this machine")


def _socket_answers(path: str) -> str | None:
    """``None`` when the Unix socket at ``path`` accepts a connection, else why not."""
    if not Path(path).exists():
        return f"no Docker engine socket at {path}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(SOCKET_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            return f"the Docker engine at unix://{path} does not answer ({exc.strerror or exc})"
    return None


def _docker() -> TargetAvailability:
    description = "a container on a Docker engine"
    if not _installed("docker"):
        return TargetAvailability(
            "docker",
            False,
            description,
            'the Docker SDK for Python is not installed: pip install "nbdeploy[docker]"',
        )
    from nbdeploy.targets.docker.engine import engine_url

    try:
        url = engine_url()
    except NbdeployError as exc:
        reason = f"{exc.message}: {exc.hint}" if exc.hint else exc.message
        return TargetAvailability("docker", False, description, reason)
    parsed = urlparse(url)
    description = f"a container on the Docker engine at {url}"
    if parsed.scheme == "unix":
        problem = _socket_answers(parsed.path)
        if problem is not None:
            return TargetAvailability(
                "docker",
                False,
                description,
                f"{problem}: start a Docker engine and set DOCKER_HOST to its URL",
            )
    return TargetAvailability("docker", True, description)


def _kubeconfig() -> Path:
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path("~/.kube/config").expanduser()


def _kubernetes() -> TargetAvailability:
    description = "pods on a Kubernetes cluster"
    if not _installed("kubernetes"):
        return TargetAvailability(
            "kubernetes",
            False,
            description,
            'the Kubernetes Python client is not installed: pip install "nbdeploy[kubernetes]"',
        )
    config = _kubeconfig()
    if not config.is_file() and "KUBERNETES_SERVICE_HOST" not in os.environ:
        return TargetAvailability(
            "kubernetes",
            False,
            description,
            f"no Kubernetes configuration at {config}: set KUBECONFIG to a kubeconfig file "
            "(or pass kubeconfig= in the deployment configuration)",
        )
    return TargetAvailability("kubernetes", True, description)


def _ray() -> TargetAvailability:
    description = "a Ray Serve application (an embedded cluster, or address=)"
    if not _installed("ray"):
        return TargetAvailability(
            "ray", False, description, 'Ray is not installed: pip install "nbdeploy[ray]"'
        )
    return TargetAvailability("ray", True, description)


_CHECKS: dict[str, Callable[[], TargetAvailability]] = {
    "local": _local,
    "docker": _docker,
    "kubernetes": _kubernetes,
    "ray": _ray,
}


def check_target(name: str) -> TargetAvailability:
    """Whether target ``name`` can be used from this Python, and if not why.

    Examples
    --------
    >>> check_target("local").usable
    True
    >>> check_target("ray").reason is None or "nbdeploy[ray]" in check_target("ray").reason
    True
    """
    check = _CHECKS.get(name)
    if check is None:
        return TargetAvailability(name, True, "a target added with register_target")
    return check()


def _order(name: str) -> tuple[int, str]:
    return (SHIPPED.index(name) if name in SHIPPED else len(SHIPPED), name)


def target_availability() -> list[TargetAvailability]:
    """Every known target (``local`` first, then ``docker``, ``kubernetes``, ``ray``,
    then any registered by a plugin), each with whether it can be used.

    Examples
    --------
    >>> [t.name for t in target_availability()][:4]
    ['local', 'docker', 'kubernetes', 'ray']
    """
    return [check_target(name) for name in sorted(target_names(), key=_order)]
