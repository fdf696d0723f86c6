"""The deployment configuration of the Docker target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nbdeploy.core.auth import CorsPolicy
from nbdeploy.core.services import ServiceRecord
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.targets.config import TargetConfig, check_host, check_port

from .engine import engine_url

__all__ = ["DockerConfig"]

_NETWORKS = ("host", "bridge")


def _number(value: Any, what: str, hint: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(f"invalid {what} {value!r} for a Docker service", hint=hint)
    return float(value)


@dataclass(frozen=True)
class DockerConfig(TargetConfig):
    """Deployment configuration of the Docker target.

    Parameters
    ----------
    port:
        The port the service answers on (host networking: the port the server binds;
        bridge: the published host port). ``0`` picks a free one (kept across updates).
    host:
        The address to bind (host networking) or publish on (bridge): ``127.0.0.1`` by
        default, loopback only. Use ``0.0.0.0`` to serve other machines (e.g. on a
        remote engine — the URIs then name the engine's host).
    cpu_cores, memory_gb:
        Limits of the container (``NanoCpus``, ``Memory``); ``None`` = no limit.
    base_image:
        The image to build on (needs Python and ``venv``); default ``python:<the
        bundle's Python>-slim``. It must already be in the engine: nbdeploy never pulls.
    engine:
        A Docker engine URL (``unix:///var/run/docker.sock``, ``tcp://host:2376``,
        ``ssh://user@host``); ``None`` means ``$DOCKER_HOST`` (else the default socket).
    network:
        ``"host"`` (the container uses the engine's network) or ``"bridge"`` (port
        mapping to the server's port 5001 in the container).
    offline:
        Download the wheels on this machine and build with ``--network none``; with
        ``False`` pip installs from the package index inside the build.
    auth_enabled, token_auth_enabled:
        Key auth (the default, as for every remote target) or token auth; both
        ``False`` serves without auth.
    cors:
        The browser origins allowed to call the service (a list, or a dict of
        :class:`~nbdeploy.core.auth.CorsPolicy` settings); ``None``: no CORS.
    timeout:
        Seconds to wait for the image build plus the service to become ``Healthy``.

    Examples
    --------
    >>> DockerConfig(cpu_cores=0.5, memory_gb=1).to_dict()["cpu_cores"]
    0.5
    >>> DockerConfig.from_dict(DockerConfig(port=8890).to_dict()) == DockerConfig(port=8890)
    True
    >>> DockerConfig(network="overlay")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid network 'overlay' for a Docker service
    Hint: use network='host' or network='bridge'
    """

    port: int = 0
    host: str = "127.0.0.1"
    cpu_cores: float | None = None
    memory_gb: float | None = None
    base_image: str | None = None
    engine: str | None = None
    network: str = "host"
    offline: bool = True
    auth_enabled: bool = True
    token_auth_enabled: bool = False
    timeout: float = 600.0
    cors: Any = None

    target: ClassVar[str] = "docker"
    label: ClassVar[str] = "Docker"
    coerce_hint: ClassVar[str] = (
        "use DockerWebservice.deploy_configuration(...) or DockerConfig(...)"
    )

    def __post_init__(self) -> None:
        check_port(self.port, self.label)
        check_host(
            self.host, self.label, "use '127.0.0.1' (loopback) or '0.0.0.0' (every interface)"
        )
        self._set(
            "cpu_cores",
            _number(self.cpu_cores, "cpu_cores", "give a positive number of cores, e.g. 0.5"),
        )
        self._set(
            "memory_gb",
            _number(self.memory_gb, "memory_gb", "give a positive number of GB, e.g. 0.5"),
        )
        if self.base_image is not None and (
            not isinstance(self.base_image, str) or not self.base_image.strip()
        ):
            raise InvalidArgumentError(
                f"invalid base image {self.base_image!r}",
                hint="name an image with Python, e.g. 'python:3.11-slim'",
            )
        if self.engine is not None:
            engine_url(self.engine)  # validates
        if self.network not in _NETWORKS:
            raise InvalidArgumentError(
                f"invalid network {self.network!r} for a Docker service",
                hint="use network='host' or network='bridge'",
            )
        for flag in ("offline", "auth_enabled", "token_auth_enabled"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidArgumentError(
                    f"{flag} must be True or False, got {getattr(self, flag)!r}"
                )
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidArgumentError(
                "auth_enabled and token_auth_enabled cannot both be True",
                hint="choose key auth (auth_enabled=True) or token auth "
                "(auth_enabled=False, token_auth_enabled=True)",
            )
        timeout = _number(self.timeout, "timeout", "give the seconds to wait, e.g. 600")
        self._set("timeout", timeout)
        self._set("cors", CorsPolicy.from_value(self.cors))

    @property
    def bind_host(self) -> str:
        return "127.0.0.1" if self.host == "localhost" else self.host

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with ``"target": "docker"``); :meth:`from_dict` reverses it."""
        return {
            "target": self.target,
            "port": self.port,
            "host": self.host,
            "cpu_cores": self.cpu_cores,
            "memory_gb": self.memory_gb,
            "base_image": self.base_image,
            "engine": self.engine,
            "network": self.network,
            "offline": self.offline,
            "auth_enabled": self.auth_enabled,
            "token_auth_enabled": self.token_auth_enabled,
            "timeout": self.timeout,
            "cors": None if self.cors is None else self.cors.to_dict(),
        }

    @classmethod
    def from_record(cls, record: ServiceRecord) -> DockerConfig:
        known = set(cls().to_dict()) - {"target"}
        return cls.from_dict({k: v for k, v in record.config.items() if k in known})
