"""The Ray target: a service is a Ray Serve application whose replicas run the bundle
with nbdeploy's own scoring server.

Parts: :mod:`.config` (the settings), :mod:`.application` (record → Serve
application, pure), :mod:`.replica` (what runs in the replicas), :mod:`.cluster` (the
workspace's embedded cluster), :mod:`.session` (the only module importing Ray) and
:mod:`.status` (Serve's view → state, pure). This module ties them together with the
one algorithm every operation uses, :meth:`RayTarget._converge`: build the
application the service record describes, hand it to Serve, and (when asked) watch
it until it is ``Healthy`` or stuck. Deploy, update, scaling, new keys, traffic
changes and rollback differ only in the record they converge to; a failed update or
new version converges back to the previous record, so the old replicas keep serving.

Updates are Serve's rolling updates with surge: the new replicas start next to the
old ones and the old ones stop (draining what they accepted) once the new ones run,
so no request fails. What needs no new replica (replica counts, autoscaling, keys,
weights) is applied in place.

Versions (``add_version`` ...): an ingress :class:`~.replica.TrafficRouter` picks a
version per request by weight and calls that version's deployment through a Serve
handle; new weights reach it as ``user_config``. The scoring URI stays the same.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbdeploy.core.auth import auth_file_path, read_auth_file
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.core.serving import drain_seconds
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
    ServiceExistsError,
    TargetUnavailableError,
)
from nbdeploy.targets.converging import ConvergingTarget
from nbdeploy.targets.observation import Observation
from nbdeploy.targets.process.processes import check_port_free, read_log_tail
from nbdeploy.targets.records import uri

from . import application as ap
from .cluster import EmbeddedCluster, free_port
from .config import RayConfig, is_local_address
from .status import observe, replicas, request_of

__all__ = ["RayTarget"]

#: Longest pause between two looks at a rolling application.
_POLL_MAX = 1.0
#: The Serve proxy port of a cluster nbdeploy starts Serve on, when it is free.
DEFAULT_PORT = 8000
#: Lines of a replica's output Ray writes for its own bookkeeping (not the service's).
_RAY_LINE = re.compile(
    r"^(:(job_id|actor_name|task_name):|(INFO|DEBUG) \d{4}-\d\d-\d\d [\d:,]+ \S+ \S+ .*-- )"
)


class RayTarget(ConvergingTarget):
    """Services as Ray Serve applications (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> target = RayTarget(Workspace(tempfile.mkdtemp()))
    >>> target.list()
    []
    >>> target.delete("nothing-here")  # idempotent
    """

    name = "ray"
    config_class = RayConfig

    def _cfg(self, record: ServiceRecord) -> RayConfig:
        return RayConfig.from_record_config(record.config)

    def _auth(self, record: ServiceRecord) -> dict[str, Any] | None:
        if not record.config.get("auth_mode"):
            return None
        auth = read_auth_file(auth_file_path(self.workspace.services_dir, record.name))
        return auth.to_dict() if auth is not None else None

    def _spec(self, record: ServiceRecord) -> ap.AppSpec:
        """The Serve application ``record`` describes."""
        versions = self._versions(record)
        if versions:
            workloads = [
                ap.Workload(str(v["bundle_path"]), str(v["name"]), _settings(str(v["bundle_path"])))
                for v in versions
            ]
            weights = {str(v["name"]): int(v["weight"]) for v in versions}
        else:
            workloads = [ap.Workload(str(record.bundle_path), None, _settings(record.bundle_path))]
            weights = None
        cfg = self._cfg(record)
        home = record.config.get("user_home")
        return ap.build(
            str(record.config.get("app") or record.name),
            cfg,
            workloads,
            auth=self._auth(record),
            weights=weights,
            proxy_host=str((record.config.get("proxy") or [cfg.host])[0]),
            env={"HOME": str(home)} if home else None,
            max_request_bytes=int(
                _settings(record.bundle_path).get("max_request_bytes", 100 * 1024 * 1024)
            ),
        )

    def _requests(self, record: ServiceRecord) -> dict[str, dict[str, float]]:
        """Each deployment's per-replica resource request."""
        spec = self._spec(record)
        return {d.name: request_of(d.options["ray_actor_options"]) for d in spec.deployments}

    def _embedded(self) -> EmbeddedCluster:
        return EmbeddedCluster(self.workspace.run_dir)

    @contextlib.contextmanager
    def _connect(self, cfg: RayConfig, *, start: bool = False, show: bool = False) -> Iterator[Any]:
        """This process connected to the service's cluster (the embedded one started
        when ``start``); the session module."""
        from . import session

        if cfg.embedded:
            cluster = self._embedded()
            head = cluster.ensure(show_output=show) if start else cluster.current()
            if head is None:
                raise TargetUnavailableError(
                    "the workspace's Ray cluster is not running (it was stopped, or the "
                    "machine restarted); its services are gone",
                    hint="deploy the service again: a new cluster starts",
                )
            session.connect(head.address, head.driver_env())
        else:
            session.connect(str(cfg.address))
        yield session

    def _proxy(self, session: Any, cfg: RayConfig) -> tuple[str, int]:
        port = cfg.port
        if port is None:
            free = not cfg.embedded or check_port_free(cfg.host, DEFAULT_PORT)
            port = DEFAULT_PORT if free else free_port()
        host, bound = session.ensure_serve(cfg.host, port, cfg.proxy_location)
        return str(host), int(bound)

    def _base_url(self, cfg: RayConfig, proxy: tuple[str, int]) -> str:
        if cfg.public_url:
            return cfg.public_url
        host, port = proxy
        if host in ("0.0.0.0", "::") and not is_local_address(cfg.address):
            address = str(cfg.address).removeprefix("ray://")
            host = address.rsplit(":", 1)[0].strip("[]")
        elif host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return uri(host, port, "")

    def _with_uris(self, record: ServiceRecord, proxy: tuple[str, int]) -> ServiceRecord:
        cfg = self._cfg(record)
        base = self._base_url(cfg, proxy) + cfg.prefix_for(record.name)
        return record.replace(
            scoring_uri=f"{base}/score",
            swagger_uri=f"{base}/swagger.json",
            config={**record.config, "proxy": [proxy[0], proxy[1]]},
        )

    def _observe(self, session: Any, record: ServiceRecord) -> Observation:
        app = session.application_details(str(record.config.get("app") or record.name))
        return observe(
            app, self._requests(record), session.cluster_nodes(), session.resources_available()
        )

    def _await(
        self, session: Any, record: ServiceRecord, deadline: float, show_output: bool
    ) -> Observation:
        """Poll until the application leaves ``Transitioning`` (an ``Unschedulable``
        seen twice, a second apart: a replica is placed a moment after it is asked
        for) or time runs out, printing how the replicas come up."""
        last = ""
        delay = 0.05
        doubtful: float | None = None
        while True:
            seen = self._observe(session, record)
            if show_output:
                line = seen.progress or seen.state.value
                if seen.state is ServiceState.UNSCHEDULABLE:
                    line = f"Unschedulable: {seen.reason}"
                if line != last:
                    print(f"{record.name}: {line}", flush=True)
                    last = line
            now = time.monotonic()
            if seen.state is ServiceState.UNSCHEDULABLE:
                doubtful = doubtful or now
                if now - doubtful >= 1.0 or now >= deadline:
                    return seen
            elif seen.state is not ServiceState.TRANSITIONING or now >= deadline:
                return seen
            else:
                doubtful = None
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _converge(
        self, session: Any, record: ServiceRecord, deadline: float | None, show_output: bool
    ) -> Observation:
        """Hand the application ``record`` describes to Serve; with a ``deadline``,
        wait for it (see the module docstring). The last observation."""
        session.deploy_application(self._spec(record))
        if deadline is None:
            return Observation(ServiceState.TRANSITIONING, None)
        return self._await(session, record, deadline, show_output)

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
        """Run the bundle as a Serve application on the cluster (the workspace's
        embedded one, started if needed, unless ``address`` names another) and wait
        for its replicas.

        Raises
        ------
        TargetUnavailableError
            Ray is not installed, or the cluster cannot be reached.
        ServiceExistsError
            The cluster has an application of that name (or on that route prefix)
            this workspace did not make.
        DeploymentError
            The replicas failed (``Failed`` with ``init()``'s error, or
            ``Unschedulable`` with the resource no node has).

        Examples
        --------
        >>> target.deploy("iris", bundle, RayConfig(num_replicas=2))  # doctest: +SKIP
        """
        loaded = Bundle.load(path)
        store = self.workspace.services
        record = ServiceRecord(
            name,
            self.name,
            ServiceState.TRANSITIONING,
            models=tuple(m.ref for m in loaded.models),
            bundle_path=str(path),
            config={
                **cfg.to_dict(),
                "app": name,
                "auth_mode": _auth_mode(loaded),
                "user_home": os.path.expanduser("~") if cfg.embedded else None,
            },
        )
        if existing is not None:
            record = record.replace(created=existing.created)
        try:
            with self._connect(cfg, start=True, show=show_output) as session:
                if existing is None and name in session.application_names():
                    raise ServiceExistsError(
                        f"the Ray cluster already runs a Serve application {name!r} that "
                        "this workspace did not deploy",
                        hint="pick another service name, or delete that application first "
                        f"(serve.delete({name!r}))",
                    )
                record = store.put(self._with_uris(record, self._proxy(session, cfg)))
                deadline = time.monotonic() + cfg.timeout
                seen = self._converge(session, record, deadline if wait else None, show_output)
        except NbdeployError as exc:
            store.put(record.with_state(ServiceState.FAILED, exc.message))
            raise
        if not wait:
            return record
        return self._settle(record, seen, "deployment", cfg.timeout, show_output)

    def _reached(self, record: ServiceRecord) -> bool:
        return "proxy" in record.config

    def _look(self, record: ServiceRecord) -> Observation:
        cfg = self._cfg(record)
        try:
            with self._connect(cfg) as session:
                return self._observe(session, record)
        except TargetUnavailableError as exc:
            if not cfg.embedded:
                raise
            return Observation(ServiceState.FAILED, exc.message)

    def _refresh_existing(self, record: ServiceRecord) -> ServiceRecord:
        """:meth:`_refresh`, an unreachable cluster counting as ``Failed`` (a redeploy
        may replace it)."""
        try:
            return self._refresh(record)
        except TargetUnavailableError as exc:
            return record.with_state(ServiceState.FAILED, exc.message)

    def _stop(self, record: ServiceRecord) -> None:
        cfg = self._cfg(record)
        if "proxy" in record.config and (not cfg.embedded or self._embedded().current()):
            with self._connect(cfg) as session:
                session.delete_application(
                    str(record.config.get("app") or record.name), timeout=60.0 + _drain(record)
                )

    def _timed_out(self, limit: float, progress: str) -> str:
        return f"not ready within {limit:g} s ({progress or 'no replica started'})"

    def _failure_hint(self, record: ServiceRecord) -> str:
        return f"see nbdeploy.get_service({record.name!r}).get_logs()"

    def _update_config(self, record: ServiceRecord, config: Any) -> RayConfig:
        current = self._cfg(record)
        if config is None:
            return current
        cfg = RayConfig.coerce(config)
        if cfg.address != current.address or cfg.prefix_for(record.name) != current.prefix_for(
            record.name
        ):
            raise InvalidArgumentError(
                f"service {record.name!r} runs on {current.address or 'the embedded cluster'} "
                f"at {current.prefix_for(record.name)}; an update cannot move it",
                hint="delete the service and deploy it there",
            )
        return cfg

    def _next(
        self, conn: Any, record: ServiceRecord, cfg: Any, path: Path, show_output: bool
    ) -> ServiceRecord:
        """The record of the next generation (the primary version switched), with the
        URIs of the proxy it will be served by."""
        bundle = Bundle.load(path)
        models = tuple(m.ref for m in bundle.models)
        config = {**record.config, **cfg.to_dict(), "auth_mode": _auth_mode(bundle)}
        versions = self._versions(record)
        for version in versions:
            if version["name"] == record.config.get("primary"):
                version.update(models=list(models), bundle_path=str(path))
        if versions:
            config["versions"] = versions
            models = self._union(versions)
        new = record.replace(
            models=models, bundle_path=str(path), generation=record.generation + 1, config=config
        )
        return self._with_uris(new, self._proxy(conn, cfg))

    def logs(self, name: str, tail: int | None = None) -> str:
        """What the service's replicas wrote (``print`` in ``init()``/``run()``, the
        server's log, tracebacks), replica by replica, each under a ``== replica ...``
        line; replicas whose node is another machine say where their log is.

        Examples
        --------
        >>> print(target.logs("iris", tail=20))  # doctest: +SKIP
        """
        record = self._stored(name)
        with self._connect(self._cfg(record)) as session:
            app = session.application_details(str(record.config.get("app") or name))
            nodes = {n["id"]: n for n in session.cluster_nodes()}
        lines: builtins.list[str] = []
        names = self._spec(record).names()
        found = sorted(replicas(app, names), key=lambda r: float(r.get("start_time_s") or 0))
        for replica in found:
            lines += _replica_lines(replica, nodes.get(replica.get("node_id")), tail)
        return "\n".join(lines[-tail:] if tail else lines)

    def sync_auth(self, name: str) -> None:
        """Send the service's auth file to its replicas again (after ``regen_key``):
        Serve applies it in place, no replica restarts.

        Examples
        --------
        >>> target.sync_auth("iris")  # doctest: +SKIP
        """
        record = self._stored(name)
        if not record.config.get("auth_mode"):
            return
        cfg = self._cfg(record)
        with self._connect(cfg) as session:
            seen = self._converge(session, record, time.monotonic() + cfg.timeout, False)
        if seen.state is not ServiceState.HEALTHY:
            raise DeploymentError(
                f"new keys of Ray service {name!r} not applied: {seen.state.value}: {seen.reason}"
            )


def _settings(bundle_path: str | None) -> dict[str, Any]:
    """A bundle's settings (``{}`` when it cannot be read)."""
    if not bundle_path:
        return {}
    try:
        return dict(Bundle.load(Path(bundle_path)).settings or {})
    except (NbdeployError, OSError, ValueError):
        return {}


def _drain(record: ServiceRecord) -> float:
    """Seconds the service's replicas may take to answer what they accepted."""
    return drain_seconds(_settings(record.bundle_path))


def _auth_mode(bundle: Bundle) -> str | None:
    settings = bundle.settings or {}
    if settings.get("auth_enabled"):
        return "key"
    return "token" if settings.get("token_auth_enabled") else None


def _replica_lines(
    replica: Mapping[str, Any], node: Mapping[str, Any] | None, tail: int | None
) -> builtins.list[str]:
    """One replica's output (its worker's stderr file), Ray's own lines left out."""
    rid, pid = replica.get("replica_id"), replica.get("pid")
    where = f"node {replica.get('node_ip') or '?'}, pid {pid or '?'}"
    header = f"== replica {rid} ({where}) =="
    logs = (node or {}).get("logs_dir")
    worker = replica.get("worker_id")
    if not logs or not worker or not pid:
        if not pid:
            return [header, "(not started yet)"]
        return [
            header,
            f"(its log is on node {replica.get('node_ip')}: "
            f"ray logs actor --id {replica.get('actor_id')})",
        ]
    files = sorted(Path(logs).glob(f"worker-{worker}-*-{pid}.err"))
    text = read_log_tail(files[-1], None) if files else ""
    lines = [line for line in text.splitlines() if not _RAY_LINE.match(line)]
    return [header, *(lines[-tail:] if tail else lines)]
