"""The local target: a service is a server process on this machine, bound to loopback.

Two ways to start the process, same server, same bundle:

- **warm start** (default): the workspace's warm-start server (:mod:`.warm`), which
  has already imported FastAPI, uvicorn, pandas and scikit-learn, forks a child that
  goes straight to ``init()`` — a scikit-learn model answers in a fraction of a
  second instead of the 1-2 s a fresh interpreter spends importing;
- **plain**: ``python -m nbdeploy.server BUNDLE`` in a new process (through a tiny
  launcher that detaches it), used with ``warm_start=False`` or when the warm server
  cannot run (no ``fork``).

Either way the server runs in its own session — a KeyboardInterrupt in the kernel
does not reach it, and it is never the kernel's child (no zombies) — writes its
output to ``<workspace>/services/<name>/server.log`` (rotated past 10 MB), and its
PID *and start time* are recorded in the service record, so any later Python process
finds the service, checks it is still that process (PIDs are reused) and probes
``GET /`` for its live state.

Updates keep the scoring URI answering, without dropping a request: every server
offers its listening socket on a unix socket (``--handover-socket``, the path is
recorded as ``config["handover"]``), and the new generation serves on that very
socket (``--take-over``; :mod:`nbdeploy.server.handover`). It runs ``init()`` first
and takes no connection before; once it reports ``NBDEPLOY-READY`` both generations
accept from the one accept queue, and the old one gets SIGTERM: it stops accepting,
answers every connection it already accepted and finishes its requests in flight.
No connection is ever queued on a socket that closes — the race of two sockets
bound with ``SO_REUSEPORT``, whose closing one resets the connections still queued
on it. (A service started before hand-over sockets existed, or one whose socket
cannot be taken, is updated the old way: the new generation binds the port with
``SO_REUSEPORT``.) If the new generation fails, the old one keeps serving. The old
generation gets the time its settings allow a request (queue wait + scoring
timeout, :func:`~nbdeploy.core.serving.drain_seconds`) before it is killed.

Replicas (``replicas=N`` or ``"auto"``): N server processes accept from the one
listening socket (the first binds it, the others take it over the same way as an
update), recorded as ``config["servers"]``. State, logs, update, traffic and delete
cover all of them. A replica found dead when the service is looked at (``get``,
``list``, ``state`` ...) is restarted on that socket — at most :data:`RESTART_LIMIT`
times per deployed generation, each restart with its reason in
``config["restarts"]``; past the limit the service is ``Failed`` (or ``Unhealthy``
while other replicas still serve) and says why.

Every change of a service (deploy, update, delete, versions and traffic) holds the
service's lock in the workspace, so two processes never change one service at once,
and a refresh only writes its state when no change runs.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import hashlib
import http.client
import inspect
import ipaddress
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nbdeploy.core.auth import CorsPolicy
from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.core.serving import (
    MAX_REPLICAS,
    SERVING_SETTINGS,
    check_serving_settings,
    drain_seconds,
    usable_cores,
)
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
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
from .process.processes import (
    LogFollower,
    ProcessId,
    check_port_free,
    private_socket_dir,
    read_exit_status,
    read_log_tail,
    terminate_all,
)

__all__ = ["LocalConfig", "LocalTarget"]

READY = "NBDEPLOY-READY"
INIT_FAILED = "NBDEPLOY-INIT-FAILED"
BIND_FAILED = "NBDEPLOY-BIND-FAILED"
LISTENING = "NBDEPLOY-LISTENING"

#: Seconds a probe of ``GET /`` may take before the service counts as not answering.
PROBE_TIMEOUT = 1.0
#: Seconds a stopped server gets to finish its requests before SIGKILL (an update
#: gives the old generation what its settings allow a request: ``drain_seconds``).
STOP_TIMEOUT = 10.0
#: Crashed replicas restarted at most this many times per deployed generation.
RESTART_LIMIT = 3
_POLL_MAX = 0.02  # longest sleep while waiting for a state change
_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 108 bytes including the NUL.


@dataclass(frozen=True)
class LocalConfig(TargetConfig):
    """Deployment configuration of the local target.

    Parameters
    ----------
    port:
        TCP port to bind; ``0`` picks a free one (kept across updates).
    host:
        Interface to bind: an IP address (``127.0.0.1`` by default — loopback only)
        or ``"localhost"``. Any other address must be given on purpose.
    warm_start:
        Fork the service from the pre-imported warm-start server (fast); ``False``
        starts a plain ``python -m nbdeploy.server`` process.
    timeout:
        Seconds to wait for the service to become ``Healthy``.
    auth_enabled, token_auth_enabled:
        Key auth or token auth for ``/score`` (not both; local services default to
        none). The server enforces them; see :mod:`nbdeploy.core.auth`.
    cors:
        Browser origins allowed to call the service: a
        :class:`~nbdeploy.core.auth.CorsPolicy`, a list of origins or a dict of its
        settings; ``None`` for no CORS.
    replicas:
        Server processes serving the one port (1 to 64), or ``"auto"`` for one per
        usable CPU core. They accept from one shared listening socket, so a replica
        that stops, crashes or is replaced never strands a queued connection.
    replica_max_concurrent_requests, max_request_wait_time, scoring_timeout_ms:
        Each replica's ``run()`` slots, queue wait (ms, then 503) and scoring timeout
        (ms, then 504), the reference's names; ``None`` keeps the server's defaults
        (1, 5000, 60000). They go into the bundle's settings: see
        :mod:`nbdeploy.core.serving`.

    Examples
    --------
    >>> LocalConfig(port=8890)  # doctest: +NORMALIZE_WHITESPACE
    LocalConfig(port=8890, host='127.0.0.1', warm_start=True, timeout=120.0,
                auth_enabled=False, token_auth_enabled=False)
    >>> LocalConfig.from_dict(LocalConfig(port=8890).to_dict()) == LocalConfig(port=8890)
    True
    >>> LocalConfig(port=70000)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid port 70000 for a local service
    Hint: use a port between 1 and 65535, or 0 to pick a free one
    """

    port: int = 0
    host: str = "127.0.0.1"
    warm_start: bool = True
    timeout: float = 120.0
    auth_enabled: bool = False
    token_auth_enabled: bool = False
    cors: CorsPolicy | None = field(default=None, repr=False)
    replicas: int | str = field(default=1, repr=False)
    replica_max_concurrent_requests: int | None = field(default=None, repr=False)
    max_request_wait_time: int | None = field(default=None, repr=False)
    scoring_timeout_ms: int | None = field(default=None, repr=False)

    target: ClassVar[str] = "local"
    label: ClassVar[str] = "local"
    coerce_hint: ClassVar[str] = "use LocalConfig(port=..., host=...)"

    def __post_init__(self) -> None:
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not (0 <= self.port <= 65535)
        ):
            raise InvalidArgumentError(
                f"invalid port {self.port!r} for a local service",
                hint="use a port between 1 and 65535, or 0 to pick a free one",
            )
        if not isinstance(self.host, str) or not self.host:
            raise InvalidArgumentError(
                f"invalid host {self.host!r} for a local service",
                hint="use '127.0.0.1' (loopback) or another IP address of this machine",
            )
        if self.host != "localhost":
            try:
                ipaddress.ip_address(self.host)
            except ValueError:
                raise InvalidArgumentError(
                    f"invalid host {self.host!r} for a local service: not an IP address",
                    hint="use '127.0.0.1' (loopback), 'localhost' or an IP address",
                ) from None
        if not isinstance(self.warm_start, bool):
            raise InvalidArgumentError(f"warm_start must be True or False, got {self.warm_start!r}")
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, (int, float))
            or not self.timeout > 0
        ):
            raise InvalidArgumentError(
                f"invalid timeout {self.timeout!r} for a local service",
                hint="give the seconds to wait for the service, e.g. 120",
            )
        object.__setattr__(self, "timeout", float(self.timeout))
        if not isinstance(self.auth_enabled, bool) or not isinstance(self.token_auth_enabled, bool):
            raise InvalidArgumentError("auth_enabled and token_auth_enabled must be True or False")
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidArgumentError(
                "auth_enabled and token_auth_enabled cannot both be True",
                hint="choose key auth (auth_enabled) or token auth (token_auth_enabled)",
            )
        object.__setattr__(self, "cors", CorsPolicy.from_value(self.cors))
        if self.replicas != "auto" and (
            isinstance(self.replicas, bool)
            or not isinstance(self.replicas, int)
            or not 1 <= self.replicas <= MAX_REPLICAS
        ):
            raise InvalidArgumentError(
                f"invalid replicas {self.replicas!r} for a local service",
                hint=f"give a number of server processes from 1 to {MAX_REPLICAS}, or "
                "'auto' for one per usable CPU core",
            )
        check_serving_settings(self)

    @classmethod
    def from_record(cls, record: ServiceRecord) -> LocalConfig:
        """The configuration a service record was deployed with (runtime keys such as
        ``process`` are left out)."""
        known = set(inspect.signature(cls).parameters)
        return cls.from_dict({k: v for k, v in record.config.items() if k in known})

    @property
    def replica_count(self) -> int:
        """How many server processes to run (``"auto"``: the usable CPU cores)."""
        if self.replicas == "auto":
            return usable_cores()
        return int(self.replicas)

    @property
    def bind_host(self) -> str:
        """The address the socket binds (``localhost`` is ``127.0.0.1``)."""
        return "127.0.0.1" if self.host == "localhost" else self.host

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with ``"target": "local"``); :meth:`from_dict` reverses it."""
        return {
            "target": self.target,
            "port": self.port,
            "host": self.host,
            "warm_start": self.warm_start,
            "timeout": self.timeout,
            "auth_enabled": self.auth_enabled,
            "token_auth_enabled": self.token_auth_enabled,
            "cors": None if self.cors is None else self.cors.to_dict(),
            "replicas": self.replicas,
            **{key: getattr(self, key) for key in SERVING_SETTINGS},
        }


@dataclass(frozen=True)
class Server:
    """One server process (a replica) of a service and the unix socket where it offers
    the service's listening socket (``None`` for servers that do not offer it).

    Examples
    --------
    >>> server = Server(ProcessId(10, 20), "/ws/services/s/listener-1.sock")
    >>> Server.from_dict(server.to_dict()) == server
    True
    """

    process: ProcessId
    handover: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.process.to_dict(), "handover": self.handover}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Server:
        handover = data.get("handover")
        return cls(ProcessId.from_dict(data), None if handover is None else str(handover))


def servers_of(record: ServiceRecord) -> builtins.list[Server]:
    """The server processes of a single-version local service (its replicas); empty for
    an endpoint with versions (whose ``process`` is its router)."""
    if record.config.get("versions"):
        return []
    raw = record.config.get("servers")
    if isinstance(raw, builtins.list):
        return [Server.from_dict(item) for item in raw]
    process = record.config.get("process")
    if not isinstance(process, Mapping):
        return []
    handover = record.config.get("handover")  # a record written before replicas
    return [Server(ProcessId.from_dict(process), None if handover is None else str(handover))]


def _servers_config(servers: builtins.list[Server]) -> dict[str, Any]:
    """The record's ``config`` entries of a group of servers (the first one is also
    ``process`` / ``handover``, what single-process code reads)."""
    return {
        "servers": [s.to_dict() for s in servers],
        "process": servers[0].process.to_dict(),
        "handover": servers[0].handover,
    }


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> int | None:
    """Status of ``GET /`` on ``host:port``, or ``None`` when nothing answers in time.

    Examples
    --------
    >>> probe("127.0.0.1", 9, timeout=0.2) is None
    True
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _bundle_path(bundle: Any) -> Path:
    raw = getattr(bundle, "path", bundle)
    if not isinstance(raw, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"expected a bundle or a bundle folder, got {type(bundle).__name__}",
            hint="build one with nbdeploy.core.bundle.build_bundle(...)",
        )
    path = Path(raw).expanduser().absolute()
    if not (path / "bundle.json").is_file():
        raise InvalidArgumentError(
            f"bundle folder {str(path)!r} does not exist or has no bundle.json",
            hint="build the bundle with build_bundle(...) and pass its folder",
        )
    return path


def _bundle_models(path: Path) -> tuple[str, ...]:
    try:
        manifest = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
        return tuple(f"{m['name']}:{m['version']}" for m in manifest.get("models", []))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(
            f"cannot read the manifest {str(path / 'bundle.json')!r}: {exc}",
            hint="rebuild the bundle with build_bundle(...)",
        ) from None


class LocalTarget(Target):
    """Services as processes on this machine (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> target = LocalTarget(Workspace(tempfile.mkdtemp()))
    >>> target.list()
    []
    >>> target.delete("nothing-here")  # idempotent
    """

    name = "local"

    def _log_file(self, name: str) -> Path:
        return self._service_dir(name) / "server.log"

    def _handover_path(self, name: str) -> str | None:
        """A fresh path for a new server's hand-over socket (one per process).

        In the service folder; in this user's private socket folder (named by a hash)
        when that path would be too long for a unix socket; ``None`` (no offer: an
        update then binds the port with ``SO_REUSEPORT``) when that folder is not safe.
        """
        token = secrets.token_hex(6)
        path = str(self._service_dir(name).absolute() / f"listener-{token}.sock")
        if len(os.fsencode(path)) > _SOCKET_PATH_LIMIT:
            key = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
            try:
                path = str(private_socket_dir() / f"listener-{key}.sock")
            except TargetUnavailableError as exc:
                with self._log_file(name).open("a", encoding="utf-8") as fh:
                    fh.write(f"nbdeploy: no hand-over socket ({exc.message})\n")
                return None
        return path

    def _spawn(
        self,
        name: str,
        bundle: Path,
        config: LocalConfig,
        port: int,
        *,
        handover: bool,
        handover_socket: str | None = None,
        take_over: str | None = None,
    ) -> tuple[ProcessId, int, str]:
        """Start one server process; (process, bound port, mode ``warm``/``plain``).

        ``handover``: a next generation (``init()`` before taking connections);
        ``handover_socket``: where the server offers its listening socket once it
        serves; ``take_over``: the running generation's ``handover_socket``, whose
        socket the new server serves on (with ``port`` fixed).
        """
        service_dir = self._service_dir(name)
        service_dir.mkdir(parents=True, exist_ok=True)
        log_file = self._log_file(name)
        host = config.bind_host
        if config.warm_start and hasattr(os, "fork"):
            from .process import warm

            env_file = warm.write_env_file(service_dir)
            request = {
                "bundle": str(bundle),
                "host": host,
                "port": port,
                "log_file": str(log_file),
                "exit_dir": str(service_dir),
                "env_file": str(env_file),
                "cwd": str(bundle),
                "log_level": _bundle_log_level(bundle),
                "reuse_port": True,
                "init_before_listen": handover,
                "handover_socket": handover_socket,
                "take_over": take_over,
            }
            try:
                reply = warm.spawn(self.workspace, request, timeout=config.timeout)
            except BaseException as exc:
                # No child will read it (a started child reads and removes it itself).
                with contextlib.suppress(OSError):
                    env_file.unlink()
                if not isinstance(exc, TargetUnavailableError):
                    raise
                with log_file.open("a", encoding="utf-8") as fh:
                    fh.write(f"nbdeploy: warm start unavailable ({exc.message}); plain start\n")
            else:
                return reply["process"], int(reply["port"]), "warm"
        return self._spawn_plain(
            bundle,
            host,
            port,
            log_file,
            service_dir,
            handover=handover,
            handover_socket=handover_socket,
            take_over=take_over,
        )

    def _spawn_plain(
        self,
        bundle: Path,
        host: str,
        port: int,
        log_file: Path,
        service_dir: Path,
        *,
        handover: bool,
        handover_socket: str | None = None,
        take_over: str | None = None,
    ) -> tuple[ProcessId, int, str]:
        if port == 0:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe_sock:
                probe_sock.bind((host, 0))
                port = int(probe_sock.getsockname()[1])
        server_args = [str(bundle), "--host", host, "--port", str(port), "--reuse-port"]
        if handover:
            server_args.append("--init-before-listen")
        if handover_socket:
            server_args += ["--handover-socket", handover_socket]
        if take_over and port:
            server_args += ["--take-over", take_over]
        command = [
            sys.executable,
            "-m",
            "nbdeploy.targets.process.launch",
            "--log",
            str(log_file),
            "--exit-dir",
            str(service_dir),
            "--",
            *server_args,
        ]
        # The launcher forks the server and exits at once: this process reaps it now
        # and never holds the server as a zombie.
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=str(bundle),
            start_new_session=True,
            check=False,
            timeout=60,
        )
        try:
            info = json.loads(result.stdout.decode("utf-8").strip().splitlines()[-1])
            proc = ProcessId.from_dict(info)
        except (ValueError, IndexError, KeyError, TypeError):
            raise DeploymentError(
                f"could not start the server process for {str(bundle)!r}: "
                f"{result.stderr.decode('utf-8', 'replace').strip() or 'no output'}"
            ) from None
        return proc, port, "plain"

    def _await(
        self,
        name: str,
        procs: ProcessId | builtins.list[ProcessId],
        follower: LogFollower,
        host: str,
        port: int,
        deadline: float,
        show_output: bool,
        *,
        shared_port: bool = False,
    ) -> Outcome:
        """Poll log and processes until every server is ready, one failed, or time is up.

        Each server prints one ``NBDEPLOY-READY`` line; with ``shared_port`` (another
        generation or replica answers on the same port) only those lines count — a
        ``GET /`` answered 200 may come from another process.
        """
        group = procs if isinstance(procs, builtins.list) else [procs]
        failure: str | None = None
        ready = 0
        delay = 0.002
        polls = 0
        while True:
            for line in follower.read_lines():
                if show_output:
                    print(line, flush=True)
                if line.startswith(READY):
                    ready += 1
                elif line.startswith((INIT_FAILED, BIND_FAILED)):
                    failure = line.split(":", 1)[1].strip() if ":" in line else line
            if ready >= len(group) and probe(host, port, timeout=PROBE_TIMEOUT) == 200:
                return Outcome(True)
            polls += 1
            if (
                not ready
                and len(group) == 1
                and not shared_port
                and polls % 10 == 0
                and probe(host, port, timeout=0.2) == 200
            ):
                # A server that did not print READY (or whose line we missed).
                return Outcome(True)
            dead = next((p for p in group if not p.alive()), None)
            if dead is not None:
                for line in follower.read_lines():
                    if show_output:
                        print(line, flush=True)
                    if line.startswith((INIT_FAILED, BIND_FAILED)):
                        failure = line.split(":", 1)[1].strip()
                return Outcome(False, failure or self._death_reason(name, dead))
            if failure is not None:
                # Printed the failure, about to exit: wait for that.
                for proc in group:
                    proc.wait_gone(5.0)
                return Outcome(False, failure)
            if time.monotonic() >= deadline:
                return Outcome(False, None)
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _start_servers(
        self,
        name: str,
        bundle: Path,
        cfg: LocalConfig,
        port: int,
        count: int,
        show_output: bool,
        *,
        take_over: str | None = None,
        on_spawn: Callable[[builtins.list[Server]], None] | None = None,
    ) -> tuple[builtins.list[Server], int, str, Outcome]:
        """Start ``count`` server processes (replicas) of ``bundle`` sharing ONE
        listening socket; wait until all are ready.

        Fresh (no ``take_over``): the first replica binds ``port`` (0: a free one) and,
        once it serves, offers its socket; the others take it over. An update
        (``take_over``: the running generation's hand-over socket) starts all of them
        at once on the running generation's socket. Sharing one socket — rather than
        one ``SO_REUSEPORT`` socket per replica — means no connection is ever queued
        on a socket that closes when a replica stops, crashes or is replaced.

        Returns the servers (all stopped again on failure), the bound port, the mode
        and the outcome.
        """
        host = cfg.bind_host
        deadline = time.monotonic() + cfg.timeout
        servers: builtins.list[Server] = []
        mode = "warm"
        try:
            waves = [count] if take_over else [1, count - 1]
            source = take_over
            for size in waves:
                if size <= 0:
                    continue
                follower = LogFollower.at_end(self._log_file(name))
                wave: builtins.list[Server] = []
                for _ in range(size):
                    handover = self._handover_path(name)
                    proc, port, mode = self._spawn(
                        name,
                        bundle,
                        cfg,
                        port,
                        handover=source is not None,
                        handover_socket=handover,
                        take_over=source,
                    )
                    wave.append(Server(proc, handover))
                servers += wave
                if on_spawn is not None:
                    on_spawn(servers)
                outcome = self._await(
                    name,
                    [w.process for w in wave],
                    follower,
                    host,
                    port,
                    deadline,
                    show_output,
                    shared_port=source is not None,
                )
                if not outcome.ready:
                    self._stop_servers(servers, STOP_TIMEOUT)
                    return [], port, mode, outcome
                source = source or servers[0].handover
        except BaseException:
            self._stop_servers(servers, STOP_TIMEOUT)
            raise
        return servers, port, mode, Outcome(True)

    def _stop_servers(self, servers: builtins.list[Server], timeout: float) -> None:
        """SIGTERM every server at once, wait up to ``timeout`` s, then SIGKILL."""
        terminate_all([s.process for s in servers], timeout)
        for server in servers:
            if server.handover:
                _remove_socket_file(server.handover)

    def _death_reason(self, name: str, proc: ProcessId) -> str:
        status = read_exit_status(self._service_dir(name) / f"exit-{proc.pid}.json")
        if status is not None and status.get("returncode") == 3:
            for line in reversed(read_log_tail(self._log_file(name), 200).splitlines()):
                if line.startswith(INIT_FAILED):
                    return line.split(":", 1)[1].strip()
        if status is None:
            return f"the server process (pid {proc.pid}) is gone (exit status unknown)"
        if "signal" in status:
            import signal as _signal

            try:
                signame = _signal.Signals(int(status["signal"])).name
            except ValueError:
                signame = str(status["signal"])
            return f"the server process (pid {proc.pid}) was killed by {signame}"
        return f"the server process (pid {proc.pid}) exited with code {status.get('returncode')}"

    def deploy(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Run ``bundle`` as local service ``name``; the record once ``Healthy``.

        With ``replicas`` > 1 the first server starts, then the others take over its
        socket; this call then waits for all of them even with ``wait=False``.

        Raises
        ------
        InvalidArgumentError
            A bad name, a missing bundle folder, or a port already in use.
        ServiceExistsError
            A live service of that name exists (update or delete it first).
        DeploymentError
            The server failed to start (the record says ``Failed`` with the reason;
            the traceback is in :meth:`logs`) or was not healthy within the timeout.

        Examples
        --------
        >>> target.deploy("diabetes", "bundles/diabetes/1", LocalConfig())  # doctest: +SKIP
        ServiceRecord(name='diabetes', target='local', state='Healthy', ...)
        """
        check_name(name, "service")
        cfg = LocalConfig.coerce(config)
        path = _bundle_path(bundle)
        models = _bundle_models(path)
        store = self.workspace.services
        existing = existing_for_redeploy(self, name, self._refresh, "local")
        if existing is not None:
            self._stop_processes(existing)
        host = cfg.bind_host
        if cfg.port and not check_port_free(host, cfg.port):
            raise InvalidArgumentError(
                f"port {cfg.port} on {host} is already in use",
                hint="pick another port, or port=0 for a free one",
            )
        self._service_dir(name).mkdir(parents=True, exist_ok=True)
        follower = LogFollower.at_end(self._log_file(name))
        record = ServiceRecord(
            name,
            self.name,
            ServiceState.TRANSITIONING,
            models=models,
            bundle_path=str(path),
            config={**cfg.to_dict()},
        )
        if existing is not None:
            record = record.replace(created=existing.created)
        if show_output:
            print(f"{name}: {record.state.value}", flush=True)
        # The record is written once the process exists (one database write fewer on
        # the cold-start path); a failure to start is recorded as Failed.
        handover_socket = self._handover_path(name)
        try:
            proc, port, mode = self._spawn(
                name, path, cfg, cfg.port, handover=False, handover_socket=handover_socket
            )
        except InvalidArgumentError as exc:
            store.put(record.with_state(ServiceState.FAILED, error=exc.message))
            raise
        except Exception as exc:
            store.put(record.with_state(ServiceState.FAILED, error=str(exc)))
            raise
        record = store.put(
            record.replace(
                scoring_uri=uri(host, port, "/score"),
                swagger_uri=uri(host, port, "/swagger.json"),
                config={
                    **cfg.to_dict(),
                    "port": port,
                    "bound_port": port,
                    "mode": mode,
                    **_servers_config([Server(proc, handover_socket)]),
                    "log_offset": follower.offset,
                    "log_inode": follower.inode,
                },
            )
        )
        if not wait and cfg.replica_count == 1:
            return record
        record = self._wait_record(record, cfg.timeout, show_output)
        return self._add_replicas(record, path, cfg, show_output)

    def _add_replicas(
        self, record: ServiceRecord, bundle: Path, cfg: LocalConfig, show_output: bool
    ) -> ServiceRecord:
        """Start the replicas after the first one (they take over its socket)."""
        first = servers_of(record)
        missing = cfg.replica_count - len(first)
        if missing <= 0:
            return record
        if show_output:
            print(f"{record.name}: starting {missing} more replica(s)", flush=True)
        port = int(record.config["port"])
        more, _, _, outcome = self._start_servers(
            record.name, bundle, cfg, port, missing, show_output, take_over=first[0].handover
        )
        if not outcome.ready:
            reason = outcome.reason or f"not ready within {cfg.timeout:g} s"
            self._stop_servers(first, STOP_TIMEOUT)
            record = self.workspace.services.put(
                record.with_state(ServiceState.FAILED, f"a replica failed to start: {reason}")
            )
            raise DeploymentError(
                f"service {record.name!r} failed to start: a replica failed: {reason}",
                hint=f"see the full output with logs({record.name!r})",
            )
        servers = first + more
        return self.workspace.services.put(
            record.replace(config={**record.config, **_servers_config(servers)})
        )

    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` leaves ``Transitioning``; its record.

        With ``show_output`` the server's new log lines and the state changes are
        printed as they happen. A service still not healthy after ``timeout`` seconds
        is stopped and marked ``Failed``.

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
        return self._wait_record(record, timeout, show_output)

    def _wait_record(
        self, record: ServiceRecord, timeout: float | None, show_output: bool
    ) -> ServiceRecord:
        name = record.name
        done = settled(record, self._refresh, show_output)
        if done is not None:
            return done
        limit = float(timeout if timeout is not None else record.config.get("timeout", 120.0))
        servers = servers_of(record)
        if not servers:
            raise DeploymentError(f"service {name!r} has no recorded process")
        procs = [server.process for server in servers]
        offset = int(record.config.get("log_offset") or 0)
        inode = record.config.get("log_inode")
        follower = LogFollower(self._log_file(name), offset, None if inode is None else int(inode))
        host = str(record.config.get("host", "127.0.0.1"))
        host = "127.0.0.1" if host == "localhost" else host
        port = int(record.config["port"])
        outcome = self._await(
            name, procs, follower, host, port, time.monotonic() + limit, show_output
        )
        return conclude_wait(
            self, record, outcome, limit, show_output, lambda: self._stop_servers(servers, 5.0)
        )

    def update(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Switch service ``name`` to ``bundle`` without dropping requests.

        The new generation binds the same address, runs ``init()`` before it listens,
        and replaces the old process once ready; the scoring URI stays the same
        (unless ``config`` changes host or port). The switch needs this call to stop
        the old process, so it always waits (``wait`` is accepted for the interface).

        Raises
        ------
        DeploymentError
            The new generation failed; the old one keeps serving (state unchanged).

        Examples
        --------
        >>> target.update("diabetes", "bundles/diabetes/2")  # doctest: +SKIP
        """
        del wait  # the switch completes in this call
        store = self.workspace.services
        record = self._refresh(store.get(name))
        self._check_mine(record)
        if record.config.get("versions"):
            return self._update_primary(record, bundle, config, show_output)
        path = _bundle_path(bundle)
        models = _bundle_models(path)
        current = LocalConfig.from_record(record)
        cfg = LocalConfig.coerce(config) if config is not None else current
        if cfg.port == 0:
            cfg = dataclasses.replace(cfg, port=current.port)
        old = servers_of(record)
        if not any(s.process.alive() for s in old) or record.state is ServiceState.FAILED:
            # Nothing to hand over from: start the new generation like a deploy.
            self._stop_processes(record)
            store.delete(name)
            fresh = self.deploy(name, path, cfg, wait=True, show_output=show_output)
            fresh = store.put(
                fresh.replace(created=record.created, generation=record.generation + 1)
            )
            self._remove_bundle(record.bundle_path if record.bundle_path != str(path) else None)
            return fresh
        same_address = cfg.bind_host == current.bind_host and cfg.port == current.port
        if not same_address and cfg.port and not check_port_free(cfg.bind_host, cfg.port):
            raise InvalidArgumentError(
                f"port {cfg.port} on {cfg.bind_host} is already in use",
                hint="pick another port, or keep the service's port",
            )
        if show_output:
            print(f"{name}: updating to generation {record.generation + 1}", flush=True)
        # Same address: serve on the running generation's own listening socket.
        live = [s for s in old if s.process.alive() and s.handover]
        take_over = live[0].handover if same_address and live else None

        def remember(started: builtins.list[Server]) -> None:
            # Recorded before waiting, so a delete from a kernel that died here stops them.
            nexts = [s.process.to_dict() for s in started]
            store.put(record.replace(config={**record.config, "next": nexts}))

        new, port, mode, outcome = self._start_servers(
            name,
            path,
            cfg,
            cfg.port,
            cfg.replica_count,
            show_output,
            take_over=take_over,
            on_spawn=remember,
        )
        if not outcome.ready:
            store.put(
                record.replace(config={k: v for k, v in record.config.items() if k != "next"})
            )
            reason = outcome.reason or f"not ready within {cfg.timeout:g} s"
            if show_output:
                print(f"{name}: update failed ({reason}); still serving the old version")
            raise DeploymentError(
                f"update of service {name!r} failed: {reason}; the previous version keeps serving",
                hint=logs_hint(name),
            )
        # The new generation accepts: retire the old one. It answers what it accepted,
        # given the time its settings allow a request (no force-kill of work in flight).
        self._retire(name, old, _bundle_settings(record.bundle_path))
        host = cfg.bind_host
        updated = store.put(
            record.replace(
                state=ServiceState.HEALTHY,
                error=None,
                models=models,
                bundle_path=str(path),
                scoring_uri=uri(host, port, "/score"),
                swagger_uri=uri(host, port, "/swagger.json"),
                generation=record.generation + 1,
                config={
                    **cfg.to_dict(),
                    "port": port,
                    "bound_port": port,
                    "mode": mode,
                    **_servers_config(new),
                    "log_offset": LogFollower.at_end(self._log_file(name)).offset,
                    "log_inode": LogFollower.at_end(self._log_file(name)).inode,
                },
            )
        )
        if record.bundle_path != str(path):
            self._remove_bundle(record.bundle_path)
        if show_output:
            print(f"{name}: {updated.state.value} (generation {updated.generation})", flush=True)
        return updated

    def _retire(self, name: str, old: builtins.list[Server], settings: Mapping[str, Any]) -> None:
        """Stop a replaced generation, giving it :func:`drain_seconds` to finish."""
        self._stop_servers(old, max(STOP_TIMEOUT, drain_seconds(settings)))
        for server in old:
            with contextlib.suppress(OSError):
                (self._service_dir(name) / f"exit-{server.process.pid}.json").unlink()

    def get(self, name: str) -> ServiceRecord:
        """The live record of local service ``name``: process alive and ``GET /``
        answering → ``Healthy``; alive but silent → ``Unhealthy``; gone → ``Failed``.

        Examples
        --------
        >>> target.get("diabetes").state  # doctest: +SKIP
        <ServiceState.HEALTHY: 'Healthy'>
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        return self._refresh(record)

    def list(self) -> builtins.list[ServiceRecord]:
        """Live records of every local service in the workspace.

        Examples
        --------
        >>> [r.name for r in target.list()]  # doctest: +SKIP
        ['diabetes']
        """
        return [self._refresh(r) for r in self.workspace.services.list(target=self.name)]

    def logs(self, name: str, tail: int | None = None) -> str:
        """The output of service ``name`` (server log incl. tracebacks; last ``tail`` lines).

        Examples
        --------
        >>> print(target.logs("diabetes", tail=5))  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        return read_log_tail(self._log_file(name), tail)

    def delete(self, name: str) -> None:
        """Stop service ``name`` (SIGTERM, then SIGKILL after a deadline) and remove its
        record, runtime files and — when it lives in the workspace — its bundle.
        Deleting a service that does not exist does nothing.

        Examples
        --------
        >>> target.delete("diabetes")  # doctest: +SKIP
        """
        try:
            record = self.workspace.services.get(name)
        except ServiceNotFoundError:
            return
        self._check_mine(record)
        self._stop_processes(record)
        self.workspace.services.delete(name)
        self._remove_bundle(record.bundle_path)
        from .traffic import version_bundles

        for bundle_path in version_bundles(record):
            self._remove_bundle(bundle_path)
        shutil.rmtree(self._service_dir(name), ignore_errors=True)

    def add_version(
        self,
        name: str,
        version: str,
        bundle: Any,
        weight: int = 0,
        *,
        current_name: str = "v1",
        show_output: bool = False,
    ) -> ServiceRecord:
        """Serve ``bundle`` as another version of service ``name`` with ``weight`` % of
        its traffic (the first call puts a router on the service's port; the running
        bundle becomes version ``current_name``).

        Examples
        --------
        >>> target.add_version("churn", "v2", "bundles/churn/2", weight=10)  # doctest: +SKIP
        """
        from . import traffic

        return traffic.add_version(
            self, name, version, bundle, weight, current_name=current_name, show_output=show_output
        )

    def set_traffic(self, name: str, weights: Mapping[str, int]) -> ServiceRecord:
        """Give the versions of service ``name`` new weights (percent, adding up to 100).

        Examples
        --------
        >>> target.set_traffic("churn", {"v1": 50, "v2": 50})  # doctest: +SKIP
        """
        from . import traffic

        return traffic.set_traffic(self, name, weights)

    def remove_version(self, name: str, version: str) -> ServiceRecord:
        """Stop version ``version`` (weight 0) of service ``name``.

        Examples
        --------
        >>> target.remove_version("churn", "v2")  # doctest: +SKIP
        """
        from . import traffic

        return traffic.remove_version(self, name, version)

    def rollback(self, name: str) -> ServiceRecord:
        """All traffic of service ``name`` back to its primary version; the others stop.

        Examples
        --------
        >>> target.rollback("churn")  # doctest: +SKIP
        """
        from . import traffic

        return traffic.rollback(self, name)

    def update_version(
        self, name: str, version: str | None, bundle: Any, *, show_output: bool = False
    ) -> ServiceRecord:
        """Switch one version (``None``: the primary) of service ``name`` to ``bundle``.

        Examples
        --------
        >>> target.update_version("churn", "v2", "bundles/churn/3")  # doctest: +SKIP
        """
        from . import traffic

        return traffic.update_version(self, name, version, bundle, show_output=show_output)

    def traffic(self, name: str) -> dict[str, int]:
        """``{version: weight}`` of service ``name`` (empty for a single-version service).

        Examples
        --------
        >>> target.traffic("churn")  # doctest: +SKIP
        {'v1': 90, 'v2': 10}
        """
        from .traffic import traffic_of

        record = self.workspace.services.get(name)
        self._check_mine(record)
        return traffic_of(record)

    def _update_primary(
        self, record: ServiceRecord, bundle: Any, config: Any, show_output: bool
    ) -> ServiceRecord:
        """``update()`` of an endpoint with versions switches its primary version."""
        if config is not None:
            cfg = LocalConfig.coerce(config)
            current = (record.config.get("host"), record.config.get("port"))
            if cfg.port != 0 and (cfg.host, cfg.port) != current:
                raise InvalidArgumentError(
                    f"service {record.name!r} has versions behind a router; its address "
                    "cannot change in an update",
                    hint="keep the port and host, or delete the service and deploy it again",
                )
        from . import traffic

        return traffic.update_version(self, record.name, None, bundle, show_output=show_output)

    def _stop_processes(self, record: ServiceRecord) -> None:
        """Stop every process of a record at once: its servers (replicas), a next
        generation being started, and for an endpoint with versions its router and
        the versions' servers."""
        from .traffic import version_processes

        procs = [s.process for s in servers_of(record)]
        nexts = record.config.get("next")
        for info in nexts if isinstance(nexts, builtins.list) else [nexts]:
            if isinstance(info, Mapping):
                procs.append(ProcessId.from_dict(dict(info)))
        process = record.config.get("process")
        if isinstance(process, Mapping):
            procs.append(ProcessId.from_dict(dict(process)))  # the router, or servers[0]
        procs += version_processes(record)
        terminate_all(procs, STOP_TIMEOUT)
        for server in servers_of(record):
            if server.handover:
                _remove_socket_file(server.handover)

    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        """The record with its live state (stored when it changed).

        Every replica must run and ``GET /`` answer 200 for ``Healthy``. A replica
        that died is restarted here (the restart policy: at most
        :data:`RESTART_LIMIT` restarts per deployed generation, each recorded in
        ``config["restarts"]`` with the reason), on the same port and — while a
        sibling still serves — on the same listening socket.
        """
        if record.state is ServiceState.FAILED:
            return record
        if record.config.get("versions"):
            return self._refresh_endpoint(record)
        servers = servers_of(record)
        if not servers:
            return record
        dead = [s for s in servers if not s.process.alive()]
        if dead and record.state is ServiceState.TRANSITIONING:
            # It never served (init() failed, say): starting it again would not help.
            reason = self._death_reason(record.name, dead[0].process)
            return self._store_live(record, record.with_state(ServiceState.FAILED, reason))
        if dead:
            return self._restart(record, servers, dead)
        status = probe(_probe_host(record), int(record.config["port"]), timeout=PROBE_TIMEOUT)
        if status == 200:
            state, error = ServiceState.HEALTHY, None
        elif record.state is ServiceState.TRANSITIONING:
            return record
        else:
            state = ServiceState.UNHEALTHY
            error = (
                f"GET / answered {status}"
                if status is not None
                else f"GET / did not answer within {PROBE_TIMEOUT:g} s "
                f"(pid {servers[0].process.pid} alive)"
            )
        return self._store_live(record, record.with_state(state, error))

    def _refresh_endpoint(self, record: ServiceRecord) -> ServiceRecord:
        """:meth:`_refresh` of an endpoint with versions: its router and every version
        must run (a dead one is named)."""
        from .traffic import versions_of

        router = ProcessId.from_dict(dict(record.config["process"]))
        if not router.alive():
            reason = "the router stopped: " + self._death_reason(record.name, router)
            return self._store_live(record, record.with_state(ServiceState.FAILED, reason))
        status = probe(_probe_host(record), int(record.config["port"]), timeout=PROBE_TIMEOUT)
        state = ServiceState.HEALTHY if status == 200 else ServiceState.UNHEALTHY
        error = None if status == 200 else f"GET / answered {status}"
        dead = [v for v in versions_of(record) if not v.alive()]
        if dead:
            state = ServiceState.UNHEALTHY
            error = "; ".join(
                f"version {v.name!r} is not running: "
                + self._death_reason(record.name, next(p for p in v.processes if not p.alive()))
                for v in dead
            )
        return self._store_live(record, record.with_state(state, error))

    def _store_live(self, seen: ServiceRecord, live: ServiceRecord) -> ServiceRecord:
        """Store what a refresh found — unless another deploy, update or delete of the
        service runs (its lock is taken) or changed the record since it was read: a
        refresh must never write an older view over a newer one."""
        if live.state is seen.state and live.error == seen.error:
            return seen
        from nbdeploy.exceptions import TargetUnavailableError

        try:
            with self.workspace.service_lock(seen.name, timeout=0):
                stored = self.workspace.services.get(seen.name)
                if stored.updated != seen.updated:
                    return stored
                return self.workspace.services.put(live)
        except (TargetUnavailableError, ServiceNotFoundError):
            return live

    def _restart(
        self, record: ServiceRecord, servers: builtins.list[Server], dead: builtins.list[Server]
    ) -> ServiceRecord:
        """Restart the dead replicas of a service (see :meth:`_refresh`)."""
        from nbdeploy.exceptions import TargetUnavailableError

        name = record.name
        reasons = [self._death_reason(name, s.process) for s in dead]
        try:
            with self.workspace.service_lock(name, timeout=0):
                if self.workspace.services.get(name).updated != record.updated:
                    return self._refresh(self.workspace.services.get(name))
                return self._restart_locked(record, servers, dead, reasons)
        except TargetUnavailableError:  # being changed right now: report, do not act
            return record.with_state(ServiceState.UNHEALTHY, "; ".join(reasons))

    def _restart_locked(
        self,
        record: ServiceRecord,
        servers: builtins.list[Server],
        dead: builtins.list[Server],
        reasons: builtins.list[str],
    ) -> ServiceRecord:
        store = self.workspace.services
        live = [s for s in servers if s not in dead]
        history = builtins.list(record.config.get("restarts") or [])
        if len(history) + len(dead) > RESTART_LIMIT or not record.bundle_path:
            why = (
                f"{'; '.join(reasons)}; not restarted: {len(history)} restart(s) already "
                f"(the limit is {RESTART_LIMIT} per deployment; see logs({record.name!r}))"
            )
            state = ServiceState.UNHEALTHY if live else ServiceState.FAILED
            return store.put(record.with_state(state, why))
        self._stop_servers(dead, 0.0)  # only removes their sockets: they are gone
        cfg = LocalConfig.from_record(record)
        port = int(record.config["port"])
        source = next((s.handover for s in live if s.handover), None)
        new, _, _, outcome = self._start_servers(
            record.name, Path(record.bundle_path), cfg, port, len(dead), False, take_over=source
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for server, reason in zip(dead, reasons, strict=True):
            history.append({"time": now, "pid": server.process.pid, "reason": reason})
        config = {**record.config, "restarts": history}
        for server in dead:  # its reason is recorded now
            with contextlib.suppress(OSError):
                (self._service_dir(record.name) / f"exit-{server.process.pid}.json").unlink()
        if not outcome.ready:
            why = f"{'; '.join(reasons)}; the restart failed: {outcome.reason or 'timed out'}"
            state = ServiceState.UNHEALTHY if live else ServiceState.FAILED
            return store.put(record.replace(config=config).with_state(state, why))
        config.update(_servers_config(live + new))
        return store.put(record.replace(config=config).with_state(ServiceState.HEALTHY, None))


def _probe_host(record: ServiceRecord) -> str:
    host = str(record.config.get("host", "127.0.0.1"))
    return "127.0.0.1" if host == "localhost" else host


def _remove_socket_file(path: str) -> None:
    """Remove a hand-over socket left behind by a killed server (only a socket)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def _bundle_settings(bundle: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The server settings recorded in a bundle's manifest (empty when unreadable)."""
    if not bundle:
        return {}
    try:
        manifest = json.loads((Path(bundle) / "bundle.json").read_text(encoding="utf-8"))
        settings = manifest.get("settings") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return dict(settings) if isinstance(settings, Mapping) else {}


def _bundle_log_level(bundle: Path) -> str:
    try:
        manifest = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        level = (manifest.get("settings") or {}).get("log_level")
    except (OSError, ValueError, AttributeError):
        level = None
    return str(level) if level else "info"
