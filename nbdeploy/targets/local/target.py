"""The local target's :class:`LocalTarget`: deploy, update, inspect and delete local
services (see :mod:`nbdeploy.targets.local` for how they run)."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    ServiceNotFoundError,
    TargetUnavailableError,
)
from nbdeploy.targets.base import Target
from nbdeploy.targets.probe import PROBE_TIMEOUT, probe
from nbdeploy.targets.process.processes import LogFollower, check_port_free, read_log_tail
from nbdeploy.targets.process.supervisor import ProcessId, Supervisor, Watcher, terminate_all
from nbdeploy.targets.records import conclude_wait, settled, uri
from nbdeploy.targets.rollout import redeploy

from . import traffic
from .bundles import bundle_models, bundle_path
from .config import LocalConfig
from .generations import LocalRollout
from .replicas import Replicas
from .servers import (
    STOP_TIMEOUT,
    Server,
    probe_host,
    remove_socket_file,
    servers_config,
    servers_of,
)

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = ["RESTART_LIMIT", "LocalTarget"]

#: Crashed replicas restarted at most this many times per deployed generation.
RESTART_LIMIT = 3
#: Seconds the watcher waits for the exit record of a server it saw exit (its parent
#: writes it when it reaps the server), so the restart records why it ended.
EXIT_RECORD_WAIT = 2.0


class LocalTarget(Target):
    """Services as processes on this machine (see :mod:`nbdeploy.targets.local`).

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
    config_class = LocalConfig

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(workspace)
        self._replicas = Replicas(workspace)
        self._watcher = Watcher.shared()

    def _bundle_path(self, bundle: Any) -> Path:
        return bundle_path(bundle)

    def _deploy(
        self,
        name: str,
        path: Path,
        cfg: Any,
        existing: ServiceRecord | None,
        *,
        wait: bool,
        show_output: bool,
    ) -> ServiceRecord:
        """Run the bundle at ``path`` as local service ``name``; the record once
        ``Healthy``.

        With ``replicas`` > 1 the first server starts, then the others take over its
        socket; this call then waits for all of them even with ``wait=False``.

        Raises
        ------
        InvalidArgumentError
            A port already in use.
        DeploymentError
            The server failed to start (the record says ``Failed`` with the reason;
            the traceback is in :meth:`logs`) or was not healthy within the timeout.

        Examples
        --------
        >>> target.deploy("diabetes", "bundles/diabetes/1", LocalConfig())  # doctest: +SKIP
        ServiceRecord(name='diabetes', target='local', state='Healthy', ...)
        """
        models = bundle_models(path)
        if existing is not None:
            self._stop(existing)
        if cfg.port and not check_port_free(cfg.bind_host, cfg.port):
            raise InvalidArgumentError(
                f"port {cfg.port} on {cfg.bind_host} is already in use",
                hint="pick another port, or port=0 for a free one",
            )
        self._service_dir(name).mkdir(parents=True, exist_ok=True)
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
        record = self._spawn_first(record, path, cfg)
        if not wait and cfg.replica_count == 1:
            return record
        record = self._wait_record(record, cfg.timeout, show_output)
        return self._watched(self._add_replicas(record, path, cfg, show_output))

    def _spawn_first(self, record: ServiceRecord, path: Path, cfg: LocalConfig) -> ServiceRecord:
        """Start the first server and store the record naming it. The record is
        written once the process exists (one database write fewer on the cold-start
        path); a failure to start is recorded as ``Failed``."""
        name, store = record.name, self.workspace.services
        follower = LogFollower.at_end(self._replicas.log_file(name))
        handover_socket = self._replicas.handover_path(name)
        try:
            proc, port, mode = self._replicas.spawn(
                name, path, cfg, cfg.port, handover=False, handover_socket=handover_socket
            )
        except InvalidArgumentError as exc:
            store.put(record.with_state(ServiceState.FAILED, error=exc.message))
            raise
        except Exception as exc:
            store.put(record.with_state(ServiceState.FAILED, error=str(exc)))
            raise
        host = cfg.bind_host
        return store.put(
            record.replace(
                scoring_uri=uri(host, port, "/score"),
                swagger_uri=uri(host, port, "/swagger.json"),
                config={
                    **cfg.to_dict(),
                    "port": port,
                    "bound_port": port,
                    "mode": mode,
                    **servers_config([Server(proc, handover_socket)]),
                    "log_offset": follower.offset,
                    "log_inode": follower.inode,
                },
            )
        )

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
        more, _, _, outcome = self._replicas.start(
            record.name, bundle, cfg, port, missing, show_output, take_over=first[0].handover
        )
        if not outcome.ready:
            reason = outcome.reason or f"not ready within {cfg.timeout:g} s"
            self._replicas.stop(first, STOP_TIMEOUT)
            record = self.workspace.services.put(
                record.with_state(ServiceState.FAILED, f"a replica failed to start: {reason}")
            )
            raise DeploymentError(
                f"service {record.name!r} failed to start: a replica failed: {reason}",
                hint=f"see the full output with logs({record.name!r})",
            )
        servers = first + more
        return self.workspace.services.put(
            record.replace(config={**record.config, **servers_config(servers)})
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
        return self._wait_record(self._stored(name), timeout, show_output)

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
        follower = LogFollower(
            self._replicas.log_file(name), offset, None if inode is None else int(inode)
        )
        host = str(record.config.get("host", "127.0.0.1"))
        host = "127.0.0.1" if host == "localhost" else host
        port = int(record.config["port"])
        outcome = self._replicas.await_ready(
            name, procs, follower, host, port, time.monotonic() + limit, show_output
        )
        return conclude_wait(
            self, record, outcome, limit, show_output, lambda: self._replicas.stop(servers, 5.0)
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
        record = self.get(name)
        if record.config.get("versions"):
            return self._update_primary(record, bundle, config, show_output)
        path = bundle_path(bundle)
        current = LocalConfig.from_record(record)
        cfg = LocalConfig.coerce(config) if config is not None else current
        if cfg.port == 0:
            cfg = dataclasses.replace(cfg, port=current.port)
        old = servers_of(record)
        if not any(s.process.alive() for s in old) or record.state is ServiceState.FAILED:
            # Nothing to hand over from: start the new generation like a deploy.
            return self._watched(
                redeploy(
                    self,
                    record,
                    path,
                    cfg,
                    clear=lambda: self._stop(record),
                    show_output=show_output,
                )
            )
        return self._watched(LocalRollout(self, record, path, cfg, show_output=show_output).run())

    def logs(self, name: str, tail: int | None = None) -> str:
        """The output of service ``name`` (server log incl. tracebacks; last ``tail`` lines).

        Examples
        --------
        >>> print(target.logs("diabetes", tail=5))  # doctest: +SKIP
        """
        self._stored(name)
        return read_log_tail(self._replicas.log_file(name), tail)

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
        return traffic.add_version(
            self, name, version, bundle, weight, current_name=current_name, show_output=show_output
        )

    def set_traffic(self, name: str, weights: Mapping[str, int]) -> ServiceRecord:
        """Give the versions of service ``name`` new weights (percent, adding up to 100).

        Examples
        --------
        >>> target.set_traffic("churn", {"v1": 50, "v2": 50})  # doctest: +SKIP
        """
        return traffic.set_traffic(self, name, weights)

    def remove_version(self, name: str, version: str) -> ServiceRecord:
        """Stop version ``version`` (weight 0) of service ``name``.

        Examples
        --------
        >>> target.remove_version("churn", "v2")  # doctest: +SKIP
        """
        return traffic.remove_version(self, name, version)

    def rollback(self, name: str) -> ServiceRecord:
        """All traffic of service ``name`` back to its primary version; the others stop.

        Examples
        --------
        >>> target.rollback("churn")  # doctest: +SKIP
        """
        return traffic.rollback(self, name)

    def update_version(
        self, name: str, version: str | None, bundle: Any, *, show_output: bool = False
    ) -> ServiceRecord:
        """Switch one version (``None``: the primary) of service ``name`` to ``bundle``.

        Examples
        --------
        >>> target.update_version("churn", "v2", "bundles/churn/3")  # doctest: +SKIP
        """
        return traffic.update_version(self, name, version, bundle, show_output=show_output)

    def traffic(self, name: str) -> dict[str, int]:
        """``{version: weight}`` of service ``name`` (empty for a single-version service).

        Examples
        --------
        >>> target.traffic("churn")  # doctest: +SKIP
        {'v1': 90, 'v2': 10}
        """
        return traffic.traffic_of(self._stored(name))

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
        return traffic.update_version(self, record.name, None, bundle, show_output=show_output)

    def _stop(self, record: ServiceRecord) -> None:
        """Stop every process of a record at once: its servers (replicas), a next
        generation being started, and for an endpoint with versions its router and
        the versions' servers. The service is no longer watched."""
        self._watcher.unwatch(self._watch_key(record.name))
        procs = [s.process for s in servers_of(record)]
        nexts = record.config.get("next")
        for info in nexts if isinstance(nexts, builtins.list) else [nexts]:
            if isinstance(info, Mapping):
                procs.append(ProcessId.from_dict(dict(info)))
        process = record.config.get("process")
        if isinstance(process, Mapping):
            procs.append(ProcessId.from_dict(dict(process)))  # the router, or servers[0]
        procs += traffic.version_processes(record)
        terminate_all(procs, STOP_TIMEOUT)
        for server in servers_of(record):
            if server.handover:
                remove_socket_file(server.handover)

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
            reason = self._replicas.death_reason(record.name, dead[0].process)
            return self._store_live(record, record.with_state(ServiceState.FAILED, reason))
        if dead:
            return self._restart(record, servers, dead)
        status = probe(probe_host(record), int(record.config["port"]), timeout=PROBE_TIMEOUT)
        if status == 200:
            state, error = ServiceState.HEALTHY, None
            self._watch(record.name, servers)
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
        router = ProcessId.from_dict(dict(record.config["process"]))
        if not router.alive():
            reason = "the router stopped: " + self._replicas.death_reason(record.name, router)
            return self._store_live(record, record.with_state(ServiceState.FAILED, reason))
        status = probe(probe_host(record), int(record.config["port"]), timeout=PROBE_TIMEOUT)
        state = ServiceState.HEALTHY if status == 200 else ServiceState.UNHEALTHY
        error = None if status == 200 else f"GET / answered {status}"
        dead = [v for v in traffic.versions_of(record) if not v.alive()]
        if dead:
            state = ServiceState.UNHEALTHY
            error = "; ".join(
                f"version {v.name!r} is not running: "
                + self._replicas.death_reason(
                    record.name, next(p for p in v.processes if not p.alive())
                )
                for v in dead
            )
        return self._store_live(record, record.with_state(state, error))

    def _store_live(self, seen: ServiceRecord, live: ServiceRecord) -> ServiceRecord:
        """Store what a refresh found — unless another deploy, update or delete of the
        service runs (its lock is taken) or changed the record since it was read: a
        refresh must never write an older view over a newer one."""
        if live.state is seen.state and live.error == seen.error:
            return seen
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
        name = record.name
        reasons = [self._replicas.death_reason(name, s.process) for s in dead]
        try:
            # One restart at a time in this process (the watcher's or a look's);
            # the service lock keeps other processes and changes out.
            with (
                self._watcher.lock(self._watch_key(name)),
                self.workspace.service_lock(name, timeout=0),
            ):
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
        """Replace the dead replicas through a :class:`Supervisor` whose restart budget
        is the record's ``restarts`` history; store what came of it."""
        name = record.name
        live = [s for s in servers if s not in dead]
        history = builtins.list(record.config.get("restarts") or [])
        why_dead = {s.process.pid: reason for s, reason in zip(dead, reasons, strict=True)}
        started: builtins.list[Server] = []

        def start(count: int) -> builtins.list[ProcessId]:
            if not record.bundle_path:
                raise _RestartFailed("the service has no recorded bundle")
            self._replicas.stop(dead, 0.0)  # only removes their sockets: they are gone
            source = next((s.handover for s in live if s.handover), None)
            new, _, _, outcome = self._replicas.start(
                name,
                Path(str(record.bundle_path)),
                LocalConfig.from_record(record),
                int(record.config["port"]),
                count,
                False,
                take_over=source,
            )
            if not outcome.ready:
                raise _RestartFailed(outcome.reason or "timed out")
            started.extend(new)
            return [s.process for s in new]

        supervisor = Supervisor(
            [s.process for s in servers],
            start=start,
            describe=lambda p: why_dead.get(p.pid) or self._replicas.death_reason(name, p),
            limit=RESTART_LIMIT,
            history=history,
            limit_note=f"per deployment; see logs({name!r})",
        )
        supervisor.check()
        config = {**record.config, "restarts": supervisor.history}
        if supervisor.history != history:
            for server in dead:  # its reason is recorded now
                with contextlib.suppress(OSError):
                    (self._service_dir(name) / f"exit-{server.process.pid}.json").unlink()
        if supervisor.failure is not None:
            state = ServiceState.UNHEALTHY if live else ServiceState.FAILED
            if state is ServiceState.FAILED:
                self._watcher.unwatch(self._watch_key(name))
            return self.workspace.services.put(
                record.replace(config=config).with_state(state, supervisor.failure)
            )
        config.update(servers_config(live + started))
        return self.workspace.services.put(
            record.replace(config=config).with_state(ServiceState.HEALTHY, None)
        )

    def _watch_key(self, name: str) -> tuple[str, str]:
        return (str(Path(self.workspace.path).absolute()), name)

    def _watched(self, record: ServiceRecord) -> ServiceRecord:
        """``record``, its servers watched from now on when it is healthy."""
        servers = servers_of(record)
        if record.state is ServiceState.HEALTHY and servers:
            self._watch(record.name, servers)
        return record

    def _watch(self, name: str, servers: builtins.list[Server]) -> None:
        """Restart the servers of service ``name`` as soon as one exits (not only when
        the service is looked at): the process's :class:`Watcher` calls
        :meth:`_on_exit`."""
        self._watcher.watch(
            self._watch_key(name), [s.process for s in servers], lambda: self._on_exit(name)
        )

    def _on_exit(self, name: str) -> builtins.list[ProcessId] | None:
        """A watched server exited: refresh the service (which restarts it within the
        budget); the processes to watch from now on, or ``None`` to stop watching.
        While a change of the service runs (its lock is taken), nothing is done: the
        watcher looks again at its next round."""
        if not Path(self.workspace.path).is_dir():
            return None  # the workspace is gone
        try:
            with self.workspace.service_lock(name, timeout=0):
                record = self.workspace.services.get(name)
                for server in servers_of(record):
                    if not server.process.alive():  # let its parent record how it ended
                        self._replicas.death_reason(name, server.process, wait=EXIT_RECORD_WAIT)
                record = self._refresh(record)
        except ServiceNotFoundError:
            return None
        except TargetUnavailableError:
            try:
                record = self.workspace.services.get(name)
            except ServiceNotFoundError:
                return None
        if record.state is ServiceState.FAILED or record.config.get("versions"):
            return None
        return [s.process for s in servers_of(record)]


class _RestartFailed(RuntimeError):
    """The replacement of a crashed replica did not become ready (the message says why)."""
