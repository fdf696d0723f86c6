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
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbdeploy.core.auth import auth_file_path, read_auth_file
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.core.serving import drain_seconds
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
    ServiceExistsError,
    ServiceNotFoundError,
    TargetUnavailableError,
)
from nbdeploy.targets.base import Target, bundle_folder
from nbdeploy.targets.observation import Observation
from nbdeploy.targets.process.processes import check_port_free
from nbdeploy.targets.records import uri
from nbdeploy.targets.weights import check_weight, rescale

from . import application as ap
from ._support import read_tail
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


class RayTarget(Target):
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

    @staticmethod
    def _cfg(record: ServiceRecord) -> RayConfig:
        return RayConfig.from_record_config(record.config)

    @staticmethod
    def _versions(record: ServiceRecord) -> builtins.list[dict[str, Any]]:
        raw = record.config.get("versions")
        return [dict(v) for v in raw] if isinstance(raw, list) else []

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
    def _session(self, cfg: RayConfig, *, start: bool = False, show: bool = False) -> Iterator[Any]:
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

    def _settle(
        self, record: ServiceRecord, seen: Observation, what: str, limit: float, show: bool
    ) -> ServiceRecord:
        """Store how a wait ended; raise unless ``Healthy``."""
        store = self.workspace.services
        if seen.state is ServiceState.HEALTHY:
            record = store.put(record.with_state(ServiceState.HEALTHY))
            if show:
                print(f"{record.name}: Healthy at {record.scoring_uri}", flush=True)
            return record
        if seen.state is ServiceState.TRANSITIONING:
            seen = Observation(
                ServiceState.FAILED,
                f"not ready within {limit:g} s ({seen.progress or 'no replica started'})",
            )
        record = store.put(record.with_state(seen.state, seen.reason))
        if show:
            print(f"{record.name}: {seen.state.value}: {seen.reason}", flush=True)
        raise DeploymentError(
            f"{what} of Ray service {record.name!r}: {seen.state.value}: {seen.reason}",
            hint=f"see nbdeploy.get_service({record.name!r}).get_logs()",
        )

    def deploy(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Run ``bundle`` as a Serve application on the cluster (the workspace's
        embedded one, started if needed, unless ``address`` names another) and wait
        for its replicas.

        Raises
        ------
        TargetUnavailableError
            Ray is not installed, or the cluster cannot be reached.
        ServiceExistsError
            A live service of that name exists, or the cluster has an application of
            that name (or on that route prefix) this workspace did not make.
        DeploymentError
            The replicas failed (``Failed`` with ``init()``'s error, or
            ``Unschedulable`` with the resource no node has).

        Examples
        --------
        >>> target.deploy("iris", bundle, RayConfig(num_replicas=2))  # doctest: +SKIP
        """
        check_name(name, "service")
        cfg = RayConfig.coerce(config)
        path = bundle_folder(bundle)
        existing = self._replaceable(name)
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
            with self._session(cfg, start=True, show=show_output) as session:
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

    def _replaceable(self, name: str) -> ServiceRecord | None:
        """The stored record a deploy of ``name`` may replace: none, or a ``Failed``
        Ray service (a live one is updated with ``update()``, not redeployed).

        Raises
        ------
        ServiceExistsError
            The name belongs to another target's service, or to a live Ray service.
        """
        try:
            existing = self.workspace.services.get(name)
        except ServiceNotFoundError:
            return None
        if existing.target != self.name:
            raise ServiceExistsError(
                f"service {name!r} already runs on target {existing.target!r}",
                hint="delete it first, or pick another name",
            )
        if self._refresh_quiet(existing).state is not ServiceState.FAILED:
            raise ServiceExistsError(
                f"Ray service {name!r} already exists and is running",
                hint="update it with update(), or delete it first",
            )
        return existing

    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` leaves ``Transitioning``, printing how its
        replicas come up with ``show_output``; its record.

        Raises
        ------
        DeploymentError
            It ended ``Failed``, ``Unschedulable`` or ``Unhealthy``, or timed out.

        Examples
        --------
        >>> target.wait("iris", 300, show_output=True)  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        cfg = self._cfg(record)
        limit = float(timeout if timeout is not None else cfg.timeout)
        with self._session(cfg) as session:
            seen = self._await(session, record, time.monotonic() + limit, show_output)
        return self._settle(record, seen, "wait", limit, show_output)

    def update(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """A rolling update of service ``name`` (its primary version, when it has
        several) to ``bundle`` and ``config``: Serve starts the new replicas next to
        the old ones, which keep serving until the new ones run. If the new replicas
        fail, the service converges back to the previous generation.

        Raises
        ------
        DeploymentError
            The new generation failed (the previous one keeps serving).

        Examples
        --------
        >>> target.update("iris", "bundles/iris/2")  # doctest: +SKIP
        """
        del wait  # the rollout completes (or is undone) in this call
        record = self.workspace.services.get(name)
        self._check_mine(record)
        cfg = self._update_config(record, config)
        path = bundle_folder(bundle)
        loaded = Bundle.load(path)
        new = self._next(record, cfg, loaded, path)
        with self._session(cfg, start=True, show=show_output) as session:
            if show_output:
                print(f"{name}: rolling update to generation {new.generation}", flush=True)
            new = self._with_uris(new, self._proxy(session, cfg))
            seen = self._converge(session, new, time.monotonic() + cfg.timeout, show_output)
            if seen.state is not ServiceState.HEALTHY:
                self._converge(session, record, None, show_output)  # back to the old one
                reason = seen.reason or f"not ready within {cfg.timeout:g} s"
                raise DeploymentError(
                    f"update of Ray service {name!r} failed: {seen.state.value}: {reason}; "
                    f"rolled back, generation {record.generation} keeps serving",
                    hint="see get_logs() for the new replicas' output",
                )
        updated = self.workspace.services.put(new.with_state(ServiceState.HEALTHY))
        for old in self._bundles(record) - self._bundles(updated):
            self._remove_bundle(old)
        if show_output:
            print(f"{name}: Healthy (generation {updated.generation})", flush=True)
        return updated

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
        self, record: ServiceRecord, cfg: RayConfig, bundle: Bundle, path: Path
    ) -> ServiceRecord:
        """The record of the next generation (the primary version switched)."""
        models = tuple(m.ref for m in bundle.models)
        config = {**record.config, **cfg.to_dict(), "auth_mode": _auth_mode(bundle)}
        versions = self._versions(record)
        for version in versions:
            if version["name"] == record.config.get("primary"):
                version.update(models=list(models), bundle_path=str(path))
        if versions:
            config["versions"] = versions
            models = _union(versions)
        return record.replace(
            models=models, bundle_path=str(path), generation=record.generation + 1, config=config
        )

    def _bundles(self, record: ServiceRecord) -> set[str]:
        paths = {record.bundle_path, *(v.get("bundle_path") for v in self._versions(record))}
        return {str(p) for p in paths if p}

    def get(self, name: str) -> ServiceRecord:
        """The live record of service ``name`` (from Serve's status of its replicas).

        Examples
        --------
        >>> target.get("iris").state  # doctest: +SKIP
        <ServiceState.HEALTHY: 'Healthy'>
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        return self._refresh(record)

    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        if "proxy" not in record.config:  # never reached its cluster
            return record
        cfg = self._cfg(record)
        try:
            with self._session(cfg) as session:
                seen = self._observe(session, record)
        except TargetUnavailableError as exc:
            if not cfg.embedded:
                raise
            seen = Observation(ServiceState.FAILED, exc.message)
        if seen.state is record.state and seen.reason == record.error:
            return record
        return self.workspace.services.put(record.with_state(seen.state, seen.reason))

    def _refresh_quiet(self, record: ServiceRecord) -> ServiceRecord:
        """:meth:`_refresh`, an unreachable cluster counting as ``Failed`` (a redeploy
        may replace it)."""
        try:
            return self._refresh(record)
        except TargetUnavailableError as exc:
            return record.with_state(ServiceState.FAILED, exc.message)

    def list(self) -> builtins.list[ServiceRecord]:
        """Live records of every Ray service in the workspace (the stored record when
        its cluster cannot be reached).

        Examples
        --------
        >>> [r.name for r in target.list()]  # doctest: +SKIP
        ['iris']
        """
        records = []
        for record in self.workspace.services.list(target=self.name):
            try:
                records.append(self._refresh(record))
            except TargetUnavailableError:
                records.append(record)
        return records

    def logs(self, name: str, tail: int | None = None) -> str:
        """What the service's replicas wrote (``print`` in ``init()``/``run()``, the
        server's log, tracebacks), replica by replica, each under a ``== replica ...``
        line; replicas whose node is another machine say where their log is.

        Examples
        --------
        >>> print(target.logs("iris", tail=20))  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        with self._session(self._cfg(record)) as session:
            app = session.application_details(str(record.config.get("app") or name))
            nodes = {n["id"]: n for n in session.cluster_nodes()}
        lines: builtins.list[str] = []
        names = self._spec(record).names()
        found = sorted(replicas(app, names), key=lambda r: float(r.get("start_time_s") or 0))
        for replica in found:
            lines += _replica_lines(replica, nodes.get(replica.get("node_id")), tail)
        return "\n".join(lines[-tail:] if tail else lines)

    def delete(self, name: str) -> None:
        """Delete the service's Serve application (its replicas stop), then its
        record, bundles and runtime files. Nothing happens if it does not exist.

        Raises
        ------
        TargetUnavailableError
            An existing cluster cannot be reached (the record is kept, so a later
            delete can finish the job).

        Examples
        --------
        >>> target.delete("iris")  # doctest: +SKIP
        """
        try:
            record = self.workspace.services.get(name)
        except ServiceNotFoundError:
            return
        self._check_mine(record)
        cfg = self._cfg(record)
        if "proxy" in record.config and (not cfg.embedded or self._embedded().current()):
            with self._session(cfg) as session:
                session.delete_application(
                    str(record.config.get("app") or name), timeout=60.0 + _drain(record)
                )
        self.workspace.services.delete(name)
        for bundle in self._bundles(record):
            self._remove_bundle(bundle)
        shutil.rmtree(self._service_dir(name), ignore_errors=True)

    def sync_auth(self, name: str) -> None:
        """Send the service's auth file to its replicas again (after ``regen_key``):
        Serve applies it in place, no replica restarts.

        Examples
        --------
        >>> target.sync_auth("iris")  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        if not record.config.get("auth_mode"):
            return
        cfg = self._cfg(record)
        with self._session(cfg) as session:
            seen = self._converge(session, record, time.monotonic() + cfg.timeout, False)
        if seen.state is not ServiceState.HEALTHY:
            raise DeploymentError(
                f"new keys of Ray service {name!r} not applied: {seen.state.value}: {seen.reason}"
            )

    def traffic(self, name: str) -> dict[str, int]:
        """``{version: weight}``; empty while the service has a single version."""
        record = self.workspace.services.get(name)
        return {str(v["name"]): int(v["weight"]) for v in self._versions(record)}

    def _live(self, name: str) -> ServiceRecord:
        record = self.get(name)
        if record.state is ServiceState.FAILED:
            raise DeploymentError(
                f"service {name!r} is Failed ({record.error}); its versions cannot change",
                hint="deploy it again, or delete it",
            )
        return record

    def _change(
        self, record: ServiceRecord, new: ServiceRecord, what: str, show_output: bool
    ) -> ServiceRecord:
        """Converge to ``new`` and store it; converge back to ``record`` on failure."""
        cfg = self._cfg(new)
        with self._session(cfg) as session:
            seen = self._converge(session, new, time.monotonic() + cfg.timeout, show_output)
            if seen.state is not ServiceState.HEALTHY:
                self._converge(session, record, None, show_output)
                raise DeploymentError(
                    f"{what} of service {record.name!r} failed: {seen.state.value}: "
                    f"{seen.reason or 'timed out'}; the endpoint is unchanged",
                    hint="see get_logs()",
                )
        return self.workspace.services.put(new.with_state(ServiceState.HEALTHY))

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
        """Serve ``bundle`` as version ``version`` with ``weight`` % of the traffic
        (the others' weights shrink to make room). The first call names the running
        version ``current_name`` and puts the router in front: same scoring URI.

        Examples
        --------
        >>> target.add_version("iris", "v2", "bundles/iris/3", weight=10)  # doctest: +SKIP
        """
        check_name(version, "version")
        weight = check_weight(weight, f"version {version!r}")
        check_name(current_name, "version")
        record = self._live(name)
        versions = self._versions(record) or [
            {
                "name": current_name,
                "models": list(record.models),
                "bundle_path": record.bundle_path,
                "weight": 100,
            }
        ]
        if any(v["name"] == version for v in versions):
            raise InvalidArgumentError(
                f"service {name!r} already has a version {version!r}", hint="pick another name"
            )
        path = bundle_folder(bundle)
        loaded = Bundle.load(path)
        scaled = rescale({v["name"]: v["weight"] for v in versions}, 100 - weight)
        for entry in versions:
            entry["weight"] = scaled[entry["name"]]
        versions.append(
            {
                "name": version,
                "models": [m.ref for m in loaded.models],
                "bundle_path": str(path),
                "weight": weight,
            }
        )
        new = self._with_versions(record, versions, record.config.get("primary") or current_name)
        return self._change(record, new, f"adding version {version!r}", show_output)

    def _with_versions(
        self, record: ServiceRecord, versions: builtins.list[dict[str, Any]], primary: str
    ) -> ServiceRecord:
        return record.replace(
            models=_union(versions),
            config={
                **record.config,
                "versions": versions,
                "primary": primary,
                "routes_generation": int(record.config.get("routes_generation", 0)) + 1,
            },
        )

    def _find(self, record: ServiceRecord, version: str) -> dict[str, Any]:
        versions = self._versions(record)
        if not versions:
            raise InvalidArgumentError(
                f"service {record.name!r} has a single version and no traffic split",
                hint="add a second version first: service.add_version('v2', models=..., weight=10)",
            )
        for entry in versions:
            if entry["name"] == version:
                return entry
        raise InvalidArgumentError(
            f"service {record.name!r} has no version {version!r}",
            hint=f"its versions: {', '.join(v['name'] for v in versions)}",
        )

    def set_traffic(self, name: str, weights: Mapping[str, int]) -> ServiceRecord:
        """New weights (percent, adding up to 100; versions left out get 0), applied
        by the router in place. Returns once every router replica uses them.

        Examples
        --------
        >>> target.set_traffic("iris", {"v1": 50, "v2": 50})  # doctest: +SKIP
        """
        if not isinstance(weights, Mapping) or not weights:
            raise InvalidArgumentError(
                f"traffic weights must be a non-empty dict, got {weights!r}",
                hint="e.g. {'v1': 90, 'v2': 10}",
            )
        record = self._live(name)
        for version, weight in weights.items():
            self._find(record, str(version))
            check_weight(weight, f"version {version!r}")
        if sum(weights.values()) != 100:
            raise InvalidArgumentError(
                f"traffic weights {dict(weights)} add up to {sum(weights.values())}, not 100",
                hint="give percentages that add up to 100; versions left out get 0",
            )
        versions = self._versions(record)
        for entry in versions:
            entry["weight"] = int(weights.get(entry["name"], 0))
        new = self._with_versions(record, versions, str(record.config["primary"]))
        return self._change(record, new, "the traffic change", False)

    def remove_version(self, name: str, version: str) -> ServiceRecord:
        """Delete version ``version`` (it must get no traffic); if it was the primary,
        the remaining version with the most traffic becomes primary.

        Examples
        --------
        >>> target.remove_version("iris", "v2")  # doctest: +SKIP
        """
        record = self._live(name)
        gone = self._find(record, version)
        versions = self._versions(record)
        if len(versions) == 1:
            raise InvalidArgumentError(
                f"version {version!r} is the last version of service {name!r}",
                hint="delete the service instead",
            )
        if gone["weight"] > 0:
            raise InvalidArgumentError(
                f"version {version!r} of service {name!r} still gets {gone['weight']}% of "
                "the traffic",
                hint="shift it away first: service.set_traffic({...}), or service.rollback()",
            )
        keep = [v for v in versions if v["name"] != version]
        primary = str(record.config["primary"])
        if primary == version:
            primary = str(max(keep, key=lambda v: v["weight"])["name"])
        new = self._change(record, self._with_versions(record, keep, primary), "removal", False)
        self._remove_bundle(gone.get("bundle_path"))
        return new

    def rollback(self, name: str) -> ServiceRecord:
        """All traffic back to the primary version; the other versions are deleted.

        Examples
        --------
        >>> target.rollback("iris").config["primary"]  # doctest: +SKIP
        'v1'
        """
        record = self._live(name)
        primary = self._find(record, str(record.config["primary"]))
        others = [v for v in self._versions(record) if v["name"] != primary["name"]]
        new = self._with_versions(record, [{**primary, "weight": 100}], primary["name"])
        new = self._change(record, new, "the rollback", False)
        for entry in others:
            self._remove_bundle(entry.get("bundle_path"))
        return new


def _union(versions: builtins.list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(m) for v in versions for m in v["models"]))


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
    text = read_tail(files[-1], None) if files else ""
    lines = [line for line in text.splitlines() if not _RAY_LINE.match(line)]
    return [header, *(lines[-tail:] if tail else lines)]
