"""Reaching a Docker engine: its URL, a client, what it can place.

Any Docker engine URL works (``unix://``, ``tcp://``, ``ssh://``; default
``$DOCKER_HOST``). The Docker SDK (``pip install nbdeploy[docker]``) is imported on
first use.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from nbdeploy.exceptions import InvalidArgumentError, TargetUnavailableError

__all__ = [
    "Container",
    "DockerClient",
    "check_resources",
    "connect",
    "docker_module",
    "engine_host",
    "engine_url",
    "find_container",
    "free_port",
]

# The Docker SDK has no type information; its objects are typed loosely here.
DockerClient = Any
Container = Any

_UNAVAILABLE_HINT = (
    "start a Docker engine and point DOCKER_HOST (or engine=) at it; on this project's "
    'machines run `eval "$(bash scripts/docker-env.sh up)"`'
)


def engine_url(engine: str | None = None) -> str:
    """The Docker engine URL to use: ``engine``, else ``$DOCKER_HOST``, else the
    default socket.

    Examples
    --------
    >>> engine_url("tcp://10.0.0.5:2376")
    'tcp://10.0.0.5:2376'
    >>> engine_url("http://x")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid Docker engine URL 'http://x'
    Hint: use unix:///path/docker.sock, tcp://host:port or ssh://user@host
    """
    url = engine or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    parsed = urlparse(url)
    if parsed.scheme not in {"unix", "tcp", "ssh", "npipe"} or not (parsed.netloc or parsed.path):
        raise InvalidArgumentError(
            f"invalid Docker engine URL {url!r}",
            hint="use unix:///path/docker.sock, tcp://host:port or ssh://user@host",
        )
    return url


def engine_host(url: str) -> str | None:
    """The host name of a remote engine (``None`` for a local socket)."""
    parsed = urlparse(url)
    if parsed.scheme in {"tcp", "ssh"} and parsed.hostname:
        return parsed.hostname
    return None


def docker_module() -> Any:
    try:
        return importlib.import_module("docker")
    except ImportError:
        raise TargetUnavailableError(
            "the docker target needs the Docker SDK for Python, which is not installed",
            hint="pip install 'nbdeploy[docker]'",
        ) from None


def _unavailable(url: str, exc: BaseException) -> TargetUnavailableError:
    return TargetUnavailableError(
        f"cannot reach the Docker engine at {url}: {exc}", hint=_UNAVAILABLE_HINT
    )


@contextlib.contextmanager
def connect(engine: str | None = None, *, timeout: float = 120.0) -> Iterator[DockerClient]:
    """A client of the Docker engine ``engine`` (API version negotiated), closed after.

    Raises
    ------
    TargetUnavailableError
        The SDK is missing or the engine does not answer (with a hint how to start one).

    Examples
    --------
    >>> with connect("unix:///var/run/nbdeploy-docker.sock") as client:  # doctest: +SKIP
    ...     client.version()["ApiVersion"]
    '1.41'
    """
    docker = docker_module()
    url = engine_url(engine)
    if url.startswith("unix://"):
        # The SDK leaks its socket when a unix socket refuses the connection: try first.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe_sock:
            probe_sock.settimeout(5.0)
            try:
                probe_sock.connect(urlparse(url).path)
            except OSError as exc:
                raise _unavailable(url, exc) from None
    try:
        # A fixed version first (no request), so a failed negotiation below can close
        # the client instead of leaking its socket; then the engine's API version.
        client = docker.DockerClient(
            base_url=url,
            version="1.24",
            timeout=int(timeout),
            use_ssh_client=url.startswith("ssh://"),
        )
    except docker.errors.DockerException as exc:
        raise _unavailable(url, exc) from None
    try:
        client.api._version = str(client.api.version(api_version=False)["ApiVersion"])
    except (docker.errors.DockerException, OSError) as exc:
        client.close()
        raise _unavailable(url, exc) from None
    try:
        yield client
    except docker.errors.DockerException as exc:
        if is_connection_error(exc):
            raise _unavailable(url, exc) from None
        raise
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise _unavailable(url, exc) from None
    finally:
        client.close()


def is_connection_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Connection aborted" in text or "Connection refused" in text


def find_container(client: DockerClient, ident: Any) -> Container | None:
    """The container ``ident`` (an ID or name) in the engine; ``None`` when gone."""
    if not ident:
        return None
    docker = docker_module()
    try:
        return client.containers.get(str(ident))
    except docker.errors.NotFound:
        return None


def check_resources(
    client: DockerClient, cpu_cores: float | None, memory_gb: float | None
) -> str | None:
    """Why the engine cannot place a container with these limits (``None`` when it can)."""
    info = client.info()
    cpus = int(info.get("NCPU") or 0)
    memory = int(info.get("MemTotal") or 0)
    if cpu_cores is not None and cpus and cpu_cores > cpus:
        return f"cpu_cores={cpu_cores:g} but the Docker engine has {cpus} CPUs"
    if memory_gb is not None and memory and memory_gb * 1024**3 > memory:
        return (
            f"memory_gb={memory_gb:g} but the Docker engine has {memory / 1024**3:.1f} GB of memory"
        )
    return None


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind = "127.0.0.1" if host in {"0.0.0.0", "localhost"} else host
    bind = "::1" if bind == "::" else bind
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((bind, 0))
        return int(sock.getsockname()[1])
