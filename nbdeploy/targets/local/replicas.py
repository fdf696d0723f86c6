"""Starting, waiting for and stopping the server processes (replicas) of a local service.

A service's servers share ONE listening socket: the first binds the port and offers
its socket on a unix socket (its *hand-over* socket); the others, and every later
generation, take it over (:mod:`nbdeploy.server.handover`). A server is forked by the
workspace's warm-start server (:mod:`nbdeploy.targets.process.warm`) or, without it,
started plainly by the supervisor's launcher (:func:`nbdeploy.targets.process.supervisor.launch`).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.serving import drain_seconds
from nbdeploy.exceptions import DeploymentError, TargetUnavailableError
from nbdeploy.targets.probe import BIND_FAILED, INIT_FAILED, PROBE_TIMEOUT, READY, probe
from nbdeploy.targets.process.processes import LogFollower, private_socket_dir, read_log_tail
from nbdeploy.targets.process.supervisor import (
    LaunchError,
    ProcessId,
    exit_reason,
    launch,
    read_exit_status,
    terminate_all,
)
from nbdeploy.targets.records import Outcome

from .bundles import bundle_log_level
from .config import LocalConfig
from .servers import STOP_TIMEOUT, Server, remove_socket_file

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = ["Replicas"]

_POLL_MAX = 0.02  # longest sleep while waiting for a state change
_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 108 bytes including the NUL.


class Replicas:
    """The server processes of the local services of ``workspace``.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> Replicas(Workspace(tempfile.mkdtemp())).log_file("iris").name
    'server.log'
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def service_dir(self, name: str) -> Path:
        """The folder of service ``name``'s runtime files."""
        return Path(self.workspace.services_dir) / name

    def log_file(self, name: str) -> Path:
        return self.service_dir(name) / "server.log"

    def handover_path(self, name: str) -> str | None:
        """A fresh path for a new server's hand-over socket (one per process).

        In the service folder; in this user's private socket folder (named by a hash)
        when that path would be too long for a unix socket; ``None`` (no offer: an
        update then binds the port with ``SO_REUSEPORT``) when that folder is not safe.
        """
        token = secrets.token_hex(6)
        path = str(self.service_dir(name).absolute() / f"listener-{token}.sock")
        if len(os.fsencode(path)) > _SOCKET_PATH_LIMIT:
            key = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
            try:
                path = str(private_socket_dir() / f"listener-{key}.sock")
            except TargetUnavailableError as exc:
                with self.log_file(name).open("a", encoding="utf-8") as fh:
                    fh.write(f"nbdeploy: no hand-over socket ({exc.message})\n")
                return None
        return path

    def spawn(
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
        service_dir = self.service_dir(name)
        service_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_file(name)
        host = config.bind_host
        if config.warm_start and hasattr(os, "fork"):
            request = {
                "bundle": str(bundle),
                "host": host,
                "port": port,
                "log_file": str(log_file),
                "exit_dir": str(service_dir),
                "cwd": str(bundle),
                "log_level": bundle_log_level(bundle),
                "reuse_port": True,
                "init_before_listen": handover,
                "handover_socket": handover_socket,
                "take_over": take_over,
            }
            started = self._spawn_warm(request, service_dir, log_file, config.timeout)
            if started is not None:
                return started
        return self.spawn_plain(
            bundle,
            host,
            port,
            log_file,
            service_dir,
            handover=handover,
            handover_socket=handover_socket,
            take_over=take_over,
        )

    def _spawn_warm(
        self, request: dict[str, Any], service_dir: Path, log_file: Path, timeout: float
    ) -> tuple[ProcessId, int, str] | None:
        """Have the warm-start server fork the server; ``None`` (noted in the log) when
        no warm server can, so the caller starts it plainly."""
        from nbdeploy.targets.process import warm

        env_file = warm.write_env_file(service_dir)
        try:
            reply = warm.spawn(
                self.workspace, {**request, "env_file": str(env_file)}, timeout=timeout
            )
        except BaseException as exc:
            # No child will read it (a started child reads and removes it itself).
            with contextlib.suppress(OSError):
                env_file.unlink()
            if not isinstance(exc, TargetUnavailableError):
                raise
            with log_file.open("a", encoding="utf-8") as fh:
                fh.write(f"nbdeploy: warm start unavailable ({exc.message}); plain start\n")
            return None
        return reply["process"], int(reply["port"]), "warm"

    def spawn_plain(
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
        try:
            proc = launch(
                ["-m", "nbdeploy.server", *server_args],
                log_file=log_file,
                exit_dir=service_dir,
                cwd=bundle,
            )
        except LaunchError as exc:
            raise DeploymentError(
                f"could not start the server process for {str(bundle)!r}: {exc}"
            ) from None
        return proc, port, "plain"

    def await_ready(
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
                return Outcome(False, failure or self.death_reason(name, dead))
            if failure is not None:
                # Printed the failure, about to exit: wait for that.
                for proc in group:
                    proc.wait_gone(5.0)
                return Outcome(False, failure)
            if time.monotonic() >= deadline:
                return Outcome(False, None)
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def start(
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
                follower = LogFollower.at_end(self.log_file(name))
                wave, port, mode = self._spawn_wave(name, bundle, cfg, port, size, source, servers)
                if on_spawn is not None:
                    on_spawn(servers)
                outcome = self.await_ready(
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
                    self.stop(servers, STOP_TIMEOUT)
                    return [], port, mode, outcome
                source = source or servers[0].handover
        except BaseException:
            self.stop(servers, STOP_TIMEOUT)
            raise
        return servers, port, mode, Outcome(True)

    def _spawn_wave(
        self,
        name: str,
        bundle: Path,
        cfg: LocalConfig,
        port: int,
        size: int,
        source: str | None,
        started: builtins.list[Server],
    ) -> tuple[builtins.list[Server], int, str]:
        """Spawn ``size`` servers at once, taking over ``source`` when given; each is
        added to ``started`` as soon as it exists (so a failure stops it too)."""
        wave: builtins.list[Server] = []
        mode = "warm"
        for _ in range(size):
            handover = self.handover_path(name)
            proc, port, mode = self.spawn(
                name,
                bundle,
                cfg,
                port,
                handover=source is not None,
                handover_socket=handover,
                take_over=source,
            )
            wave.append(Server(proc, handover))
            started.append(wave[-1])
        return wave, port, mode

    def stop(self, servers: builtins.list[Server], timeout: float) -> None:
        """SIGTERM every server at once, wait up to ``timeout`` s, then SIGKILL."""
        terminate_all([s.process for s in servers], timeout)
        for server in servers:
            if server.handover:
                remove_socket_file(server.handover)

    def death_reason(self, name: str, proc: ProcessId, *, wait: float = 0.0) -> str:
        """Why server ``proc`` of service ``name`` ended: its ``init()`` failure, or its
        exit code or signal (waiting up to ``wait`` s for the exit record)."""
        reason = exit_reason(proc, self.service_dir(name), what="server process", wait=wait)
        status = read_exit_status(self.service_dir(name) / f"exit-{proc.pid}.json")
        if status is not None and status.get("returncode") == 3:
            for line in reversed(read_log_tail(self.log_file(name), 200).splitlines()):
                if line.startswith(INIT_FAILED):
                    return line.split(":", 1)[1].strip()
        return reason

    def retire(self, name: str, old: builtins.list[Server], settings: Mapping[str, Any]) -> None:
        """Stop a replaced generation, giving it :func:`drain_seconds` to finish."""
        self.stop(old, max(STOP_TIMEOUT, drain_seconds(settings)))
        for server in old:
            with contextlib.suppress(OSError):
                (self.service_dir(name) / f"exit-{server.process.pid}.json").unlink()
