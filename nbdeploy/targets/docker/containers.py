"""The containers of a Docker service: run, wait for, explain and remove them.

The container runs ``python -m nbdeploy.server`` with the CPU (``NanoCpus``) and
memory limits of the configuration, on the engine's network (``network="host"``: the
server binds ``host:port`` itself) or with the usual port mapping (``"bridge"``).
The service's auth file is copied into the container (``/run/nbdeploy/auth.json``,
owned by the server's user, 0600) — never into the image.
"""

from __future__ import annotations

import builtins
import io
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

from nbdeploy.core.hashing import sha256_bytes
from nbdeploy.core.package import DEFAULT_PORT, USER_ID
from nbdeploy.targets.probe import BIND_FAILED, INIT_FAILED, PROBE_TIMEOUT, READY, probe
from nbdeploy.targets.records import Outcome

from .config import DockerConfig
from .engine import Container, DockerClient, docker_module, engine_host

__all__ = [
    "AUTH_DIR_IN_CONTAINER",
    "AUTH_FILE_IN_CONTAINER",
    "STOP_TIMEOUT",
    "auth_tar",
    "await_container",
    "exit_reason",
    "probe_host",
    "remove_container",
    "run_container",
]

#: Where the auth file is copied inside the container.
AUTH_DIR_IN_CONTAINER = "/run/nbdeploy"
AUTH_FILE_IN_CONTAINER = f"{AUTH_DIR_IN_CONTAINER}/auth.json"
#: Seconds a stopped container gets to finish its requests before SIGKILL.
STOP_TIMEOUT = 10
_POLL_MAX = 0.1


def auth_tar(data: bytes) -> bytes:
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


def exit_reason(container: Container, memory_gb: float | None) -> str:
    """Why an exited container stopped: the OOM killer, its ``init()`` failure line,
    or its exit code with the last line of its output."""
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


def probe_host(cfg: DockerConfig, url: str) -> str:
    """The host to reach a service of ``cfg`` on engine ``url`` at (its URIs' host)."""
    host = cfg.bind_host
    if host in {"0.0.0.0", "::"}:
        return engine_host(url) or "127.0.0.1"
    return host


def _container_name(workspace_path: Path, name: str, generation: int) -> str:
    workspace_id = sha256_bytes(str(workspace_path.absolute()).encode()).hex()
    return f"nbdeploy-{name}-{workspace_id[:8]}-g{generation}-{uuid.uuid4().hex[:6]}"


def _server_command(
    cfg: DockerConfig, port: int, handover: bool
) -> tuple[list[str], dict[str, Any]]:
    """The server's command line and the network arguments of ``containers.create``."""
    host = cfg.bind_host
    command = ["python", "-m", "nbdeploy.server", "/app/bundle"]
    kwargs: dict[str, Any] = {}
    if cfg.network == "host":
        command += ["--host", host, "--port", str(port), "--reuse-port"]
        if handover:
            command.append("--init-before-listen")
        kwargs["environment"] = {"HOST": host, "PORT": str(port)}
        kwargs["network_mode"] = "host"
    else:
        command += ["--host", "0.0.0.0", "--port", str(DEFAULT_PORT)]
        kwargs["environment"] = {"HOST": "0.0.0.0", "PORT": str(DEFAULT_PORT)}
        kwargs["ports"] = {f"{DEFAULT_PORT}/tcp": (host, port)}
    if cfg.cpu_cores is not None:
        kwargs["nano_cpus"] = int(cfg.cpu_cores * 1e9)
    if cfg.memory_gb is not None:
        limit = int(cfg.memory_gb * 1024**3)
        kwargs["mem_limit"] = limit
        kwargs["memswap_limit"] = limit  # no swap: over the limit means OOM
    return command, kwargs


def run_container(
    client: DockerClient,
    workspace_path: Path,
    name: str,
    image: str,
    cfg: DockerConfig,
    port: int,
    generation: int,
    *,
    auth: Path | None,
    handover: bool,
) -> Container:
    """Create and start generation ``generation`` of service ``name`` from ``image``
    (``handover``: it runs ``init()`` before it joins the port of a running one).

    Raises
    ------
    Exception
        Whatever the engine raised; the container is removed again (a failure to
        remove it is noted on the exception).
    """
    command, kwargs = _server_command(cfg, port, handover)
    container = client.containers.create(
        image,
        command=command,
        name=_container_name(workspace_path, name, generation),
        labels={
            "nbdeploy.service": name,
            "nbdeploy.workspace": str(workspace_path.absolute()),
            "nbdeploy.generation": str(generation),
        },
        detach=True,
        **kwargs,
    )
    try:
        if auth is not None:
            container.put_archive("/run", auth_tar(auth.read_bytes()))
        container.start()
    except BaseException as exc:
        try:
            container.remove(force=True)
        except Exception as cleanup:
            exc.add_note(f"the container {container.name} could not be removed: {cleanup}")
        raise
    return container


def remove_container(container: Container) -> None:
    """Stop ``container`` (it gets :data:`STOP_TIMEOUT` s to finish its requests) and
    remove it; one already gone counts as removed.

    Raises
    ------
    docker.errors.DockerException
        The engine could not remove it.
    """
    errors = docker_module().errors
    try:
        container.stop(timeout=STOP_TIMEOUT)
    except errors.NotFound:
        return
    except errors.APIError:
        pass  # not running, or stopping failed: the forced remove below kills it
    try:
        container.remove(force=True)
    except errors.NotFound:
        return


def await_container(
    container: Container,
    host: str,
    port: int,
    deadline: float,
    show_output: bool,
    memory_gb: float | None,
    *,
    ready_line: bool,
) -> Outcome:
    """Poll ``container`` until it is ready (``GET /`` 200, or its READY line when
    another generation shares the port), exits, or runs out of time."""
    docker = docker_module()
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
            return Outcome(False, exit_reason(container, memory_gb))
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
