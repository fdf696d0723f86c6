"""The Docker target: a service is a container running the bundle's image.

The image comes from :mod:`nbdeploy.core.package`: a build context with a
multi-stage ``Dockerfile`` (a venv from wheels, then the models, then the scoring
script), named ``nbdeploy/<service>:<content digest>`` — a redeploy of the same bundle
reuses the image, and a new scoring script reuses the dependency layers. By default
the build is **offline**: the wheels are downloaded on this machine with its pip
configuration and the image builds with ``--network none``; the base image must
already be in the engine (nbdeploy never pulls).

The container runs ``python -m nbdeploy.server`` with the CPU (``NanoCpus``) and
memory limits of the configuration. Two network modes:

- ``network="host"`` (default): the container shares the engine's network and the
  server binds ``host:port`` itself (``127.0.0.1`` and a free port by default, so
  nothing is reachable from other machines). Updates start the new container on the
  same port with ``SO_REUSEPORT`` and ``init()`` before it listens, and stop the old
  one once the new one is ready: the scoring URI keeps answering.
- ``network="bridge"``: the usual ``docker run -p host:port:5001`` port mapping; an
  update stops the old container before starting the new one (brief downtime; the old
  one is started again when the new one fails).

States come from the container and a probe of ``GET /``: running and answering →
``Healthy``; running and silent → ``Unhealthy``; exited → ``Failed`` with the reason
(``NBDEPLOY-INIT-FAILED`` from the logs for exit code 3, the kernel's OOM killer for
``State.OOMKilled``); more CPUs or memory than the engine has → ``Unschedulable``.

Any Docker engine URL works (``unix://``, ``tcp://``, ``ssh://``; default
``$DOCKER_HOST``), so a remote Docker host is a remote target. The Docker SDK
(``pip install nbdeploy[docker]``) is imported on first use.

Key or token auth is on by default: the service's auth file
(``<workspace>/services/<name>/auth.json``, see :mod:`nbdeploy.core.auth`) is copied
into the container (``/run/nbdeploy/auth.json``, owned by the server's user, 0600) —
never into the image — and :meth:`DockerTarget.sync_auth` copies it again after a key
is regenerated.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import ipaddress
import os
import shutil
import socket
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from nbdeploy.core.auth import CorsPolicy
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.package import (
    DEFAULT_PORT,
    USER_ID,
    BuildContext,
    image_tag,
    write_build_context,
)
from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
    ServiceNotFoundError,
    TargetUnavailableError,
)

from ._common import (
    Outcome,
    TargetConfig,
    conclude_wait,
    existing_for_redeploy,
    logs_hint,
    settled,
    uri,
)
from .base import Target
from .local import BIND_FAILED, INIT_FAILED, READY, probe
from .process.processes import check_port_free

# The Docker SDK has no type information; its objects are typed loosely here.
DockerClient = Any
Container = Any

__all__ = [
    "BuiltImage",
    "DockerConfig",
    "DockerTarget",
    "build_image",
    "connect",
    "engine_url",
    "ensure_image",
]

#: Where the auth file is copied inside the container.
AUTH_DIR_IN_CONTAINER = "/run/nbdeploy"
AUTH_FILE_IN_CONTAINER = f"{AUTH_DIR_IN_CONTAINER}/auth.json"
#: Seconds a stopped container gets to finish its requests before SIGKILL.
STOP_TIMEOUT = 10
PROBE_TIMEOUT = 1.0
_POLL_MAX = 0.1
_NETWORKS = ("host", "bridge")
_UNAVAILABLE_HINT = (
    "start a Docker engine and point DOCKER_HOST (or engine=) at it; on this project's "
    'machines run `eval "$(bash scripts/docker-env.sh up)"`'
)


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
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not (0 <= self.port <= 65535)
        ):
            raise InvalidArgumentError(
                f"invalid port {self.port!r} for a Docker service",
                hint="use a port between 1 and 65535, or 0 to pick a free one",
            )
        if not isinstance(self.host, str) or not self.host:
            raise InvalidArgumentError(f"invalid host {self.host!r} for a Docker service")
        if self.host != "localhost":
            try:
                ipaddress.ip_address(self.host)
            except ValueError:
                raise InvalidArgumentError(
                    f"invalid host {self.host!r} for a Docker service: not an IP address",
                    hint="use '127.0.0.1' (loopback) or '0.0.0.0' (every interface)",
                ) from None
        object.__setattr__(
            self,
            "cpu_cores",
            _number(self.cpu_cores, "cpu_cores", "give a positive number of cores, e.g. 0.5"),
        )
        object.__setattr__(
            self,
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
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "cors", CorsPolicy.from_value(self.cors))

    @property
    def auth_mode(self) -> str | None:
        """``"key"``, ``"token"`` or ``None``."""
        if self.auth_enabled:
            return "key"
        return "token" if self.token_auth_enabled else None

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
    def _from_record(cls, record: ServiceRecord) -> DockerConfig:
        known = set(cls().to_dict()) - {"target"}
        return cls.from_dict({k: v for k, v in record.config.items() if k in known})


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


def _engine_host(url: str) -> str | None:
    """The host name of a remote engine (``None`` for a local socket)."""
    parsed = urlparse(url)
    if parsed.scheme in {"tcp", "ssh"} and parsed.hostname:
        return parsed.hostname
    return None


def _docker_module() -> Any:
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
    docker = _docker_module()
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
        if _is_connection_error(exc):
            raise _unavailable(url, exc) from None
        raise
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise _unavailable(url, exc) from None
    finally:
        client.close()


def _is_connection_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Connection aborted" in text or "Connection refused" in text


@dataclass(frozen=True)
class BuiltImage:
    """An image built (or found) in an engine.

    Examples
    --------
    >>> img = BuiltImage("nbdeploy/iris:0123", "sha256:ab", 123, True, "")
    >>> BuiltImage.from_dict(img.to_dict()) == img
    True
    """

    tag: str
    id: str
    size_bytes: int
    reused: bool
    log: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "id": self.id,
            "size_bytes": self.size_bytes,
            "reused": self.reused,
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuiltImage:
        return cls(
            tag=str(data["tag"]),
            id=str(data["id"]),
            size_bytes=int(data["size_bytes"]),
            reused=bool(data["reused"]),
            log=str(data.get("log", "")),
        )


def _find_image(client: DockerClient, reference: str) -> Any | None:
    docker = _docker_module()
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


#: The documented local base: ``scripts/docker-env.sh up`` builds it with debootstrap.
LOCAL_BASE_PREFIX = "local/"


def _available_base(client: DockerClient, base: str) -> str:
    """The base image to build on: ``base`` when the engine has it; else, for an
    official ``python:X.Y-slim``, the local base ``local/python:X.Y-slim`` that
    ``scripts/docker-env.sh up`` builds without any registry. Never pulls.

    Raises
    ------
    DeploymentError
        Neither is in the engine; the hint says how to get one.
    """
    if _find_image(client, base) is not None:
        return base
    local = LOCAL_BASE_PREFIX + base
    if base.startswith("python:") and _find_image(client, local) is not None:
        return local
    raise DeploymentError(
        f"the base image {base!r} is not in the Docker engine, and nbdeploy never pulls "
        "images from a registry",
        hint=f"build the local base once with `bash scripts/docker-env.sh up` (Debian's "
        f"debootstrap, no registry; it makes {local} and nbdeploy uses it instead of "
        f"{base}), or load an image with Python and venv into the engine "
        "(`docker load -i image.tar`) and pass "
        "DockerWebservice.deploy_configuration(base_image='that:tag')",
    )


def build_image(
    client: DockerClient,
    context: BuildContext,
    tag: str,
    *,
    base_image: str | None = None,
    offline: bool | None = None,
    show_output: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Build ``context`` into image ``tag`` in the engine, streaming the build output.

    Never pulls: the base image must already be in the engine (checked first, with
    a hint). Offline contexts build with ``network_mode="none"``.

    Raises
    ------
    DeploymentError
        The base image is missing or the build failed (the message ends with the
        build's last lines).

    Examples
    --------
    >>> with connect() as client:  # doctest: +SKIP
    ...     build_image(client, ctx, "nbdeploy/iris:1", base_image="local/python:3.11-slim")
    """
    docker = _docker_module()
    base = _available_base(client, base_image or context.spec.base_image)
    offline = context.spec.offline if offline is None else offline
    lines: list[str] = []

    def emit(text: str) -> None:
        for line in text.splitlines():
            lines.append(line)
            if show_output:
                print(line, flush=True)
            if on_line is not None:
                on_line(line)

    try:
        stream = client.api.build(
            path=str(context.path),
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            network_mode="none" if offline else None,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                emit(str(chunk["stream"]))
            elif "status" in chunk:
                emit(str(chunk["status"]))
            if "error" in chunk:
                emit(str(chunk["error"]))
                tail = "\n".join(lines[-15:])
                raise DeploymentError(
                    f"docker build of {tag} failed: {str(chunk['error']).strip()}\n{tail}",
                    hint="read the build output above; the Dockerfile is in the package folder",
                )
    except docker.errors.APIError as exc:
        raise DeploymentError(f"docker build of {tag} failed: {exc}") from None
    image = client.images.get(tag)
    return BuiltImage(
        tag, str(image.id), int(image.attrs.get("Size") or 0), False, "\n".join(lines)
    )


def ensure_image(
    client: DockerClient,
    service_dir: Path,
    name: str,
    bundle: Bundle,
    *,
    settings: Mapping[str, Any],
    base_image: str | None = None,
    offline: bool = True,
    show_output: bool = False,
) -> BuiltImage:
    """The image of ``bundle`` with server ``settings`` for service ``name``: built
    in the engine (offline: wheels downloaded here first), or reused when an image
    with the same content digest exists. The build output goes to
    ``<service_dir>/build.log``; the build context is removed after.

    The Docker target and the targets that run its images elsewhere (Kubernetes)
    build through here.

    Examples
    --------
    >>> with connect() as client:  # doctest: +SKIP
    ...     ensure_image(client, Path("ws/services/iris"), "iris", bundle, settings={})
    """
    service_dir.mkdir(parents=True, exist_ok=True)
    context_dir = service_dir / f"build-{uuid.uuid4().hex[:8]}"
    log = service_dir / "build.log"
    try:
        context = write_build_context(
            bundle, context_dir, base_image=base_image, offline=offline, settings=settings
        )
        tag = image_tag(name, context.digest)
        found = _find_image(client, tag)
        if found is not None:
            message = f"{name}: reusing image {tag} (same bundle, settings and base image)"
            log.write_text(message + "\n", encoding="utf-8")
            if show_output:
                print(message, flush=True)
            return BuiltImage(tag, str(found.id), int(found.attrs.get("Size") or 0), True, "")
        if show_output:
            print(f"{name}: building image {tag}", flush=True)
        if offline:
            if show_output:
                print(f"{name}: downloading wheels for Python {context.python_version}")
            context.download_wheels()
        with log.open("w", encoding="utf-8") as fh:
            return build_image(
                client,
                context,
                tag,
                base_image=base_image or context.spec.base_image,
                show_output=show_output,
                on_line=lambda line: print(line, file=fh),
            )
    finally:
        shutil.rmtree(context_dir, ignore_errors=True)


def _bundle_path(bundle: Any) -> Path:
    raw = getattr(bundle, "path", bundle)
    if not isinstance(raw, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"expected a bundle or a bundle folder, got {type(bundle).__name__}",
            hint="build one with nbdeploy.core.bundle.build_bundle(...)",
        )
    return Path(raw).expanduser().absolute()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind = "127.0.0.1" if host in {"0.0.0.0", "localhost"} else host
    bind = "::1" if bind == "::" else bind
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((bind, 0))
        return int(sock.getsockname()[1])


def _auth_tar(data: bytes) -> bytes:
    """A tar of ``nbdeploy/auth.json`` owned by the server's user, mode 0600."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo("nbdeploy")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o700
        folder.uid = folder.gid = USER_ID
        folder.mtime = int(time.time())
        tar.addfile(folder)
        info = tarfile.TarInfo("nbdeploy/auth.json")
        info.size = len(data)
        info.mode = 0o600
        info.uid = info.gid = USER_ID
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _exit_reason(container: Container, memory_gb: float | None) -> str:
    state = container.attrs.get("State", {})
    if state.get("OOMKilled"):
        limit = f" of {memory_gb:g} GB" if memory_gb else ""
        return (
            f"the container was killed by the kernel's OOM killer (out of memory): it "
            f"needed more than its memory limit{limit}"
        )
    code = state.get("ExitCode")
    logs = str(container.logs(tail=300).decode("utf-8", "replace"))
    for line in reversed(logs.splitlines()):
        if line.startswith((INIT_FAILED, BIND_FAILED)):
            return line.split(":", 1)[1].strip()
    error = state.get("Error") or ""
    last = next((line for line in reversed(logs.splitlines()) if line.strip()), "")
    reason = f"the container exited with code {code}"
    if error:
        reason += f": {error}"
    elif last:
        reason += f" (last output: {last.strip()[:300]})"
    return reason


class DockerTarget(Target):
    """Services as Docker containers (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> target = DockerTarget(Workspace(tempfile.mkdtemp()))
    >>> target.list()
    []
    >>> target.delete("nothing-here")  # idempotent
    """

    name = "docker"

    def _build_log(self, name: str) -> Path:
        return self._service_dir(name) / "build.log"

    def _container_name(self, name: str, generation: int) -> str:
        from nbdeploy.core.hashing import sha256_bytes

        workspace_id = sha256_bytes(str(Path(self.workspace.path).absolute()).encode()).hex()
        return f"nbdeploy-{name}-{workspace_id[:8]}-g{generation}-{uuid.uuid4().hex[:6]}"

    def _access(
        self, name: str, bundle: Bundle, cfg: DockerConfig
    ) -> tuple[str | None, Path | None]:
        """The service's auth mode and auth file.

        The bundle's settings decide when they speak about auth (the deploy path
        writes them, see :func:`nbdeploy._deploy.access_settings`); otherwise the
        configuration does, and the service's auth file is written with fresh
        secrets when missing or of another mode.
        """
        from nbdeploy.core.auth import (
            ServiceAuth,
            auth_file_path,
            read_auth_file,
            write_auth_file,
        )

        settings = bundle.settings
        if "auth_enabled" in settings or "token_auth_enabled" in settings:
            mode = (
                "key"
                if settings.get("auth_enabled")
                else ("token" if settings.get("token_auth_enabled") else None)
            )
        else:
            mode = cfg.auth_mode
        if mode is None:
            return None, None
        given = settings.get("auth_file")
        path = (
            Path(given)
            if isinstance(given, str) and Path(given).is_absolute()
            else auth_file_path(self.workspace.services_dir, name)
        )
        current = read_auth_file(path)
        if current is None:
            write_auth_file(path, ServiceAuth.generate(name, mode))  # type: ignore[arg-type]
        elif current.mode != mode:
            write_auth_file(path, current.with_mode(mode))  # type: ignore[arg-type]
        return mode, path

    @staticmethod
    def _server_settings(
        mode: str | None, bundle: Bundle | None = None, cfg: DockerConfig | None = None
    ) -> dict[str, Any]:
        """Settings written into the image's bundle.json: auth as decided, the auth file
        being the copy inside the container; the configuration's CORS policy when the
        bundle has none."""
        settings: dict[str, Any] = {
            "auth_enabled": mode == "key",
            "token_auth_enabled": mode == "token",
        }
        if mode is not None:
            settings["auth_file"] = AUTH_FILE_IN_CONTAINER
        else:
            settings["auth_file"] = None
        has_cors = bundle is not None and bool(bundle.settings.get("cors"))
        if cfg is not None and cfg.cors is not None and not has_cors:
            settings["cors"] = cfg.cors.to_dict()
        return settings

    def sync_auth(self, name: str) -> None:
        """Copy the service's auth file into its running container(s) again — after
        ``regen_key`` — so the server picks up the new secrets at the next request.

        Examples
        --------
        >>> target.sync_auth("diabetes")  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        cfg = DockerConfig._from_record(record)
        if not record.bundle_path:
            return
        _, path = self._access(name, Bundle.load(record.bundle_path), cfg)
        if path is None:
            return
        with connect(self._engine(record)) as client:
            for key in ("container", "next_container"):
                container = self._container(client, record.config.get(key))
                if container is not None:
                    container.put_archive("/run", _auth_tar(path.read_bytes()))

    def _engine(self, record: ServiceRecord) -> str:
        return str(record.config.get("engine_url") or engine_url(record.config.get("engine")))

    def _container(self, client: DockerClient, ident: Any) -> Container | None:
        if not ident:
            return None
        docker = _docker_module()
        try:
            return client.containers.get(str(ident))
        except docker.errors.NotFound:
            return None

    def _check_resources(self, client: DockerClient, cfg: DockerConfig) -> str | None:
        info = client.info()
        cpus = int(info.get("NCPU") or 0)
        memory = int(info.get("MemTotal") or 0)
        if cfg.cpu_cores is not None and cpus and cfg.cpu_cores > cpus:
            return f"cpu_cores={cfg.cpu_cores:g} but the Docker engine has {cpus} CPUs"
        if cfg.memory_gb is not None and memory and cfg.memory_gb * 1024**3 > memory:
            return (
                f"memory_gb={cfg.memory_gb:g} but the Docker engine has "
                f"{memory / 1024**3:.1f} GB of memory"
            )
        return None

    def _ensure_image(
        self,
        client: DockerClient,
        name: str,
        bundle: Bundle,
        cfg: DockerConfig,
        mode: str | None,
        show_output: bool,
    ) -> BuiltImage:
        """Build the service's image, or reuse the one with the same content digest."""
        return ensure_image(
            client,
            self._service_dir(name),
            name,
            bundle,
            settings=self._server_settings(mode, bundle, cfg),
            base_image=cfg.base_image,
            offline=cfg.offline,
            show_output=show_output,
        )

    def _run_container(
        self,
        client: DockerClient,
        name: str,
        image: str,
        cfg: DockerConfig,
        port: int,
        generation: int,
        *,
        auth: Path | None,
        handover: bool,
    ) -> Container:
        host = cfg.bind_host
        command = ["python", "-m", "nbdeploy.server", "/app/bundle"]
        kwargs: dict[str, Any] = {}
        if cfg.network == "host":
            command += ["--host", host, "--port", str(port), "--reuse-port"]
            if handover:
                command.append("--init-before-listen")
            environment = {"HOST": host, "PORT": str(port)}
            kwargs["network_mode"] = "host"
        else:
            command += ["--host", "0.0.0.0", "--port", str(DEFAULT_PORT)]
            environment = {"HOST": "0.0.0.0", "PORT": str(DEFAULT_PORT)}
            kwargs["ports"] = {f"{DEFAULT_PORT}/tcp": (host, port)}
        if cfg.cpu_cores is not None:
            kwargs["nano_cpus"] = int(cfg.cpu_cores * 1e9)
        if cfg.memory_gb is not None:
            limit = int(cfg.memory_gb * 1024**3)
            kwargs["mem_limit"] = limit
            kwargs["memswap_limit"] = limit  # no swap: over the limit means OOM
        container = client.containers.create(
            image,
            command=command,
            name=self._container_name(name, generation),
            environment=environment,
            labels={
                "nbdeploy.service": name,
                "nbdeploy.workspace": str(Path(self.workspace.path).absolute()),
                "nbdeploy.generation": str(generation),
            },
            detach=True,
            **kwargs,
        )
        try:
            if auth is not None:
                container.put_archive("/run", _auth_tar(auth.read_bytes()))
            container.start()
        except BaseException:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise
        return container

    def _await(
        self,
        container: Container,
        host: str,
        port: int,
        deadline: float,
        show_output: bool,
        cfg: DockerConfig,
        *,
        ready_line: bool,
    ) -> Outcome:
        """Poll the container until it is ready (``GET /`` 200, or its READY line when
        another generation shares the port), exits, or runs out of time."""
        docker = _docker_module()
        printed = 0
        delay = 0.01
        while True:
            try:
                container.reload()
            except docker.errors.NotFound:
                return Outcome(False, "the container was removed while it started")
            status = container.attrs.get("State", {}).get("Status")
            logs: builtins.list[str] | None = None
            if show_output or ready_line:
                logs = container.logs().decode("utf-8", "replace").splitlines()
                if show_output:
                    for line in logs[printed:]:
                        print(line, flush=True)
                    printed = len(logs)
            if status in {"exited", "dead"}:
                return Outcome(False, _exit_reason(container, cfg.memory_gb))
            if status == "running":
                if ready_line:
                    if logs is not None and any(line.startswith(READY) for line in logs):
                        return Outcome(True)
                elif probe(host, port, timeout=PROBE_TIMEOUT) == 200:
                    return Outcome(True)
            if time.monotonic() >= deadline:
                return Outcome(False, None)
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _probe_host(self, cfg: DockerConfig, url: str) -> str:
        host = cfg.bind_host
        if host in {"0.0.0.0", "::"}:
            return _engine_host(url) or "127.0.0.1"
        return host

    def deploy(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Build (or reuse) the image of ``bundle`` and run it as service ``name``.

        Raises
        ------
        TargetUnavailableError
            The Docker engine cannot be reached (or the SDK is missing).
        ServiceExistsError
            A live service of that name exists (update or delete it first).
        DeploymentError
            The image build failed, the engine cannot place the container
            (``Unschedulable``), or the service failed or timed out (``Failed``).

        Examples
        --------
        >>> target.deploy("diabetes", bundle, DockerConfig(memory_gb=1))  # doctest: +SKIP
        ServiceRecord(name='diabetes', target='docker', state='Healthy', ...)
        """
        check_name(name, "service")
        cfg = DockerConfig.coerce(config)
        path = _bundle_path(bundle)
        loaded = Bundle.load(path)
        models = tuple(m.ref for m in loaded.models)
        store = self.workspace.services
        existing = existing_for_redeploy(self, name, self._refresh, "Docker")
        url = engine_url(cfg.engine)
        record = ServiceRecord(
            name,
            self.name,
            ServiceState.TRANSITIONING,
            models=models,
            bundle_path=str(path),
            config={**cfg.to_dict(), "engine_url": url},
        )
        if existing is not None:
            record = record.replace(created=existing.created)
        deadline = time.monotonic() + float(cfg.timeout)
        with connect(url) as client:
            if existing is not None:
                self._remove_containers(client, existing)
            store.put(record)
            if show_output:
                print(f"{name}: {record.state.value}", flush=True)
            problem = self._check_resources(client, cfg)
            if problem is not None:
                store.put(record.with_state(ServiceState.UNSCHEDULABLE, problem))
                raise DeploymentError(
                    f"Docker service {name!r} cannot be placed: {problem}",
                    hint="ask for fewer CPUs or less memory",
                )
            host = cfg.bind_host
            local_engine = _engine_host(url) is None
            if (
                cfg.port
                and local_engine
                and not check_port_free("127.0.0.1" if host == "0.0.0.0" else host, cfg.port)
            ):
                store.delete(name)
                raise InvalidArgumentError(
                    f"port {cfg.port} on {host} is already in use",
                    hint="pick another port, or port=0 for a free one",
                )
            port = cfg.port or (_free_port(host) if local_engine else DEFAULT_PORT)
            try:
                mode, auth = self._access(name, loaded, cfg)
                image = self._ensure_image(client, name, loaded, cfg, mode, show_output)
                container = self._run_container(
                    client,
                    name,
                    image.tag,
                    cfg,
                    port,
                    record.generation,
                    auth=auth,
                    handover=False,
                )
            except NbdeployError as exc:
                store.put(record.with_state(ServiceState.FAILED, exc.message))
                raise
            except Exception as exc:
                store.put(record.with_state(ServiceState.FAILED, str(exc)))
                if isinstance(exc, OSError):
                    raise
                raise DeploymentError(f"Docker service {name!r} could not start: {exc}") from None
            uri_host = self._probe_host(cfg, url)
            record = store.put(
                record.replace(
                    scoring_uri=uri(uri_host, port, "/score"),
                    swagger_uri=uri(uri_host, port, "/swagger.json"),
                    config={
                        **record.config,
                        "port": port,
                        "container": container.id,
                        "container_name": container.name,
                        "image": image.tag,
                        "image_id": image.id,
                        "image_size_bytes": image.size_bytes,
                        "image_reused": image.reused,
                        "auth_enabled": mode == "key",
                        "token_auth_enabled": mode == "token",
                    },
                )
            )
            if not wait:
                return record
            remaining = max(deadline - time.monotonic(), 1.0)
            return self._wait_record(client, record, remaining, show_output)

    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` leaves ``Transitioning``; its record.

        Raises
        ------
        DeploymentError
            The service failed or timed out (the record says why).

        Examples
        --------
        >>> target.wait("diabetes", 60, show_output=True)  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        with connect(self._engine(record)) as client:
            return self._wait_record(client, record, timeout, show_output)

    def _wait_record(
        self,
        client: DockerClient,
        record: ServiceRecord,
        timeout: float | None,
        show_output: bool,
    ) -> ServiceRecord:
        name = record.name
        done = settled(record, lambda r: self._refresh_with(client, r), show_output)
        if done is not None:
            return done
        cfg = DockerConfig._from_record(record)
        limit = float(timeout if timeout is not None else cfg.timeout)
        container = self._container(client, record.config.get("container"))
        if container is None:
            reason = "its container no longer exists"
            record = self.workspace.services.put(record.with_state(ServiceState.FAILED, reason))
            raise DeploymentError(f"service {name!r} failed: {reason}")
        host = self._probe_host(cfg, self._engine(record))
        port = int(record.config["port"])
        outcome = self._await(
            container,
            host,
            port,
            time.monotonic() + limit,
            show_output,
            cfg,
            ready_line=False,
        )

        def stop() -> None:
            if outcome.reason is None:  # timed out while running: stop it
                with contextlib.suppress(Exception):
                    container.stop(timeout=STOP_TIMEOUT)

        return conclude_wait(self, record, outcome, limit, show_output, stop)

    def update(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Switch service ``name`` to ``bundle`` (and ``config``).

        With host networking on an unchanged address, the new container joins the
        port (``SO_REUSEPORT``) once its ``init()`` succeeded and the old one is then
        stopped: the scoring URI keeps answering. With bridge networking the old
        container is stopped first (and started again if the new one fails).

        Raises
        ------
        DeploymentError
            The new version failed; the old one keeps serving (state unchanged).

        Examples
        --------
        >>> target.update("diabetes", "bundles/diabetes/2")  # doctest: +SKIP
        """
        del wait  # the switch completes in this call
        store = self.workspace.services
        record = self.get(name)
        path = _bundle_path(bundle)
        loaded = Bundle.load(path)
        models = tuple(m.ref for m in loaded.models)
        current = DockerConfig._from_record(record)
        cfg = DockerConfig.coerce(config) if config is not None else current
        if cfg.port == 0:
            cfg = DockerConfig.from_dict({**cfg.to_dict(), "port": int(record.config["port"])})
        url = self._engine(record)
        if engine_url(cfg.engine) != url:
            raise InvalidArgumentError(
                f"service {name!r} runs on the Docker engine {url}; an update cannot move it",
                hint="delete the service and deploy it on the other engine",
            )
        with connect(url) as client:
            old = self._container(client, record.config.get("container"))
            if old is None or record.state is ServiceState.FAILED:
                self._remove_containers(client, record)
                store.delete(name)
        if old is None or record.state is ServiceState.FAILED:
            fresh = self.deploy(name, path, cfg, wait=True, show_output=show_output)
            fresh = store.put(
                fresh.replace(created=record.created, generation=record.generation + 1)
            )
            if record.bundle_path != str(path):
                self._remove_bundle(record.bundle_path)
            return fresh
        generation = record.generation + 1
        same_address = (
            cfg.network == current.network == "host"
            and cfg.bind_host == current.bind_host
            and cfg.port == int(record.config["port"])
        )
        if show_output:
            print(f"{name}: updating to generation {generation}", flush=True)
        with connect(url) as client:
            problem = self._check_resources(client, cfg)
            if problem is not None:
                raise DeploymentError(
                    f"update of Docker service {name!r} cannot be placed: {problem}; "
                    "the previous version keeps serving",
                    hint="ask for fewer CPUs or less memory",
                )
            mode, auth = self._access(name, loaded, cfg)
            image = self._ensure_image(client, name, loaded, cfg, mode, show_output)
            port = cfg.port
            uri_host = self._probe_host(cfg, url)
            restart_old = False
            if not same_address and cfg.network == "bridge" == current.network:
                old.stop(timeout=STOP_TIMEOUT)  # the published port must be free
                restart_old = True
            new = self._run_container(
                client, name, image.tag, cfg, port, generation, auth=auth, handover=same_address
            )
            store.put(record.replace(config={**record.config, "next_container": new.id}))
            outcome = self._await(
                new,
                uri_host,
                port,
                time.monotonic() + float(cfg.timeout),
                show_output,
                cfg,
                ready_line=same_address,
            )
            if not outcome.ready:
                with contextlib.suppress(Exception):
                    new.remove(force=True)
                if restart_old:
                    with contextlib.suppress(Exception):
                        old.start()
                store.put(
                    record.replace(
                        config={k: v for k, v in record.config.items() if k != "next_container"}
                    )
                )
                reason = outcome.reason or f"not ready within {cfg.timeout:g} s"
                if show_output:
                    print(f"{name}: update failed ({reason}); still serving the old version")
                raise DeploymentError(
                    f"update of service {name!r} failed: {reason}; "
                    "the previous version keeps serving",
                    hint=logs_hint(name, "see the new container's output with"),
                )
            # The new generation answers: retire the old one (it finishes its requests).
            with contextlib.suppress(Exception):
                old.stop(timeout=STOP_TIMEOUT)
            with contextlib.suppress(Exception):
                old.remove(force=True)
            updated = store.put(
                record.replace(
                    state=ServiceState.HEALTHY,
                    error=None,
                    models=models,
                    bundle_path=str(path),
                    scoring_uri=uri(uri_host, port, "/score"),
                    swagger_uri=uri(uri_host, port, "/swagger.json"),
                    generation=generation,
                    config={
                        **cfg.to_dict(),
                        "engine_url": url,
                        "port": port,
                        "container": new.id,
                        "container_name": new.name,
                        "image": image.tag,
                        "image_id": image.id,
                        "image_size_bytes": image.size_bytes,
                        "image_reused": image.reused,
                        "auth_enabled": mode == "key",
                        "token_auth_enabled": mode == "token",
                    },
                )
            )
        if record.bundle_path != str(path):
            self._remove_bundle(record.bundle_path)
        if show_output:
            print(f"{name}: {updated.state.value} (generation {updated.generation})", flush=True)
        return updated

    def get(self, name: str) -> ServiceRecord:
        """The live record of Docker service ``name`` (container state + ``GET /``).

        Examples
        --------
        >>> target.get("diabetes").state  # doctest: +SKIP
        <ServiceState.HEALTHY: 'Healthy'>
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        return self._refresh(record)

    def list(self) -> builtins.list[ServiceRecord]:
        """Live records of every Docker service in the workspace (the stored record
        when its engine cannot be reached).

        Examples
        --------
        >>> [r.name for r in target.list()]  # doctest: +SKIP
        ['diabetes']
        """
        records = []
        for record in self.workspace.services.list(target=self.name):
            try:
                records.append(self._refresh(record))
            except TargetUnavailableError:
                records.append(record)
        return records

    def logs(self, name: str, tail: int | None = None) -> str:
        """The container's output (server log incl. tracebacks; last ``tail`` lines);
        the image build's output when there is no container.

        Examples
        --------
        >>> print(target.logs("diabetes", tail=5))  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        with connect(self._engine(record)) as client:
            container = self._container(client, record.config.get("container"))
            if container is not None:
                raw = container.logs(tail="all" if tail is None else int(tail))
                return str(raw.decode("utf-8", "replace"))
        build_log = self._build_log(name)
        if build_log.is_file():
            lines = build_log.read_text(encoding="utf-8", errors="replace").splitlines()
            return "\n".join(lines if tail is None else lines[-tail:])
        return ""

    def delete(self, name: str, *, remove_image: bool = False) -> None:
        """Remove the service's container(s) and record (and, with ``remove_image``,
        its image). Deleting a service that does not exist does nothing.

        Examples
        --------
        >>> target.delete("diabetes", remove_image=True)  # doctest: +SKIP
        """
        try:
            record = self.workspace.services.get(name)
        except ServiceNotFoundError:
            return
        self._check_mine(record)
        with connect(self._engine(record)) as client:
            self._remove_containers(client, record)
            image = record.config.get("image")
            if remove_image and image:
                docker = _docker_module()
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(str(image), force=True)
        self.workspace.services.delete(name)
        self._remove_bundle(record.bundle_path)
        shutil.rmtree(self._service_dir(name), ignore_errors=True)

    def _remove_containers(self, client: DockerClient, record: ServiceRecord) -> None:
        for key in ("next_container", "container"):
            container = self._container(client, record.config.get(key))
            if container is None:
                continue
            with contextlib.suppress(Exception):
                container.stop(timeout=STOP_TIMEOUT)
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        if record.state is ServiceState.FAILED or not record.config.get("container"):
            return record
        with connect(self._engine(record)) as client:
            return self._refresh_with(client, record)

    def _refresh_with(self, client: DockerClient, record: ServiceRecord) -> ServiceRecord:
        """The record with its live state (stored when it changed)."""
        if record.state is ServiceState.FAILED or not record.config.get("container"):
            return record
        cfg = DockerConfig._from_record(record)
        container = self._container(client, record.config.get("container"))
        if container is None:
            return self.workspace.services.put(
                record.with_state(ServiceState.FAILED, "its container no longer exists")
            )
        status = container.attrs.get("State", {}).get("Status")
        if status in {"exited", "dead"}:
            reason = _exit_reason(container, cfg.memory_gb)
            return self.workspace.services.put(record.with_state(ServiceState.FAILED, reason))
        host = self._probe_host(cfg, self._engine(record))
        answer = probe(host, int(record.config["port"])) if status == "running" else None
        if answer == 200:
            state, error = ServiceState.HEALTHY, None
        elif record.state is ServiceState.TRANSITIONING or status in {"created", "restarting"}:
            return record
        else:
            state = ServiceState.UNHEALTHY
            error = (
                f"GET / answered {answer}"
                if answer is not None
                else f"GET / did not answer within {PROBE_TIMEOUT:g} s (container {status})"
            )
        if state is record.state and error == record.error:
            return record
        return self.workspace.services.put(record.with_state(state, error))
