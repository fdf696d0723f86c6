"""What the targets share whose service is a set of objects a cluster converges to
(Kubernetes, Ray): the record describes the desired state, and one operation —
:meth:`ConvergingTarget._converge` — makes the cluster hold it.

Deploy, update, traffic changes and rollback differ only in the record they converge
to; a failed update or new version converges back to the previous record, so the old
replicas keep serving. This module writes those operations once: the versions behind
one endpoint (``add_version``, ``set_traffic``, ``remove_version``, ``rollback``,
``traffic``), ``wait``, the live state, and ``update`` as the shared update algorithm
(:class:`~nbdeploy.targets.rollout.Rollout`) whose start is a convergence. A target
supplies how it connects, converges, watches and names its next generation.
"""

from __future__ import annotations

import builtins
import time
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbdeploy.core.bundle import Bundle
from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError

from .base import Target, bundle_folder
from .observation import Observation
from .records import Outcome
from .rollout import Rollout
from .weights import check_weight, rescale

__all__ = ["ConvergingTarget"]


class ConvergingTarget(Target):
    """A target whose services a cluster converges to (see the module docstring)."""

    #: Who writes the output of a new generation, for the hint of a failed update.
    workers = "replicas"

    @abstractmethod
    def _cfg(self, record: ServiceRecord) -> Any:
        """The configuration stored in ``record``."""

    @abstractmethod
    def _connect(self, cfg: Any, *, start: bool = False, show: bool = False) -> Any:
        """A context manager connected to the service's cluster (started first when
        ``start`` and the target can start one); it yields the connection."""

    @abstractmethod
    def _converge(
        self, conn: Any, record: ServiceRecord, deadline: float | None, show_output: bool
    ) -> Observation:
        """Make the cluster hold what ``record`` describes; with a ``deadline``, wait
        until it does (or time runs out). The last observation."""

    @abstractmethod
    def _await(
        self, conn: Any, record: ServiceRecord, deadline: float, show_output: bool
    ) -> Observation:
        """Watch the service until it leaves ``Transitioning`` or time runs out."""

    @abstractmethod
    def _reached(self, record: ServiceRecord) -> bool:
        """Whether the service ever reached its cluster (else there is nothing to
        watch, and an update deploys it afresh)."""

    @abstractmethod
    def _look(self, record: ServiceRecord) -> Observation:
        """The service's live state, seen on its cluster."""

    @abstractmethod
    def _update_config(self, record: ServiceRecord, config: Any) -> Any:
        """The configuration an update runs with (refused when it would move the
        service to another cluster or address)."""

    @abstractmethod
    def _next(
        self, conn: Any, record: ServiceRecord, cfg: Any, path: Path, show_output: bool
    ) -> ServiceRecord:
        """The record of the next generation: the bundle at ``path`` (its primary
        version's, when it has several) with ``cfg``."""

    @abstractmethod
    def _timed_out(self, limit: float, progress: str) -> str:
        """Why a service that did not become ready within ``limit`` s failed."""

    @abstractmethod
    def _failure_hint(self, record: ServiceRecord) -> str:
        """Where to look when the service failed."""

    def _finish(self, conn: Any, record: ServiceRecord) -> ServiceRecord:
        """The record of a generation that converged (the scoring URI once the
        cluster gave an address, ...)."""
        del conn
        return record

    def _current_version_facts(self, record: ServiceRecord) -> dict[str, Any]:
        """What the target keeps about the running version when it becomes the first
        of several, besides name, models, bundle and weight."""
        del record
        return {}

    def _new_version_facts(
        self, record: ServiceRecord, version: str, bundle: Bundle, show_output: bool
    ) -> dict[str, Any]:
        """What the target keeps about a new version (and prepares for it: an image
        ...), besides name, models, bundle and weight."""
        del record, version, bundle, show_output
        return {}

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
            seen = Observation(ServiceState.FAILED, self._timed_out(limit, seen.progress))
        record = store.put(record.with_state(seen.state, seen.reason))
        if show:
            print(f"{record.name}: {seen.state.value}: {seen.reason}", flush=True)
        raise DeploymentError(
            f"{what} of {self.config_class.label} service {record.name!r}: "
            f"{seen.state.value}: {seen.reason}",
            hint=self._failure_hint(record),
        )

    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` leaves ``Transitioning``, printing how it comes
        up with ``show_output``; its record.

        Raises
        ------
        DeploymentError
            It ended ``Failed``, ``Unschedulable`` or ``Unhealthy``, or timed out.

        Examples
        --------
        >>> target.wait("iris", 300, show_output=True)  # doctest: +SKIP
        """
        record = self._stored(name)
        cfg = self._cfg(record)
        limit = float(timeout if timeout is not None else cfg.timeout)
        with self._connect(cfg) as conn:
            seen = self._await(conn, record, time.monotonic() + limit, show_output)
        return self._settle(record, seen, "wait", limit, show_output)

    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        if not self._reached(record):
            return record
        seen = self._look(record)
        if seen.state is record.state and seen.reason == record.error:
            return record
        return self.workspace.services.put(record.with_state(seen.state, seen.reason))

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
        several) to ``bundle`` and ``config``: the new replicas start next to the old
        ones, which keep serving until the new ones are ready. If the new ones fail,
        the service converges back to the previous generation.

        Raises
        ------
        DeploymentError
            The new generation failed: rolled back, the previous one keeps serving —
            or, when the previous one cannot be applied again, ``Failed`` with why.

        Examples
        --------
        >>> target.update("iris", "bundles/iris/2")  # doctest: +SKIP
        """
        del wait  # the rollout completes (or is undone) in this call
        record = self.get(name)
        cfg = self._update_config(record, config)
        path = bundle_folder(bundle)
        if not self._reached(record):
            fresh = self._deploy(name, path, cfg, record, wait=True, show_output=show_output)
            return self.workspace.services.put(fresh.replace(generation=record.generation + 1))
        with self._connect(cfg, start=True, show=show_output) as conn:
            return _ConvergingRollout(self, conn, record, path, cfg, show_output).run()

    @staticmethod
    def _versions(record: ServiceRecord) -> builtins.list[dict[str, Any]]:
        raw = record.config.get("versions")
        return [dict(v) for v in raw] if isinstance(raw, list) else []

    @staticmethod
    def _union(versions: builtins.list[dict[str, Any]]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(str(m) for v in versions for m in v["models"]))

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
        with self._connect(cfg) as conn:
            seen = self._converge(conn, new, time.monotonic() + cfg.timeout, show_output)
            if seen.state is not ServiceState.HEALTHY:
                self._converge(conn, record, None, show_output)
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
        version ``current_name`` and puts the router in front: the scoring URI does
        not change.

        Examples
        --------
        >>> target.add_version("iris", "v2", "bundles/iris/3", weight=10)  # doctest: +SKIP
        """
        check_name(version, "version")
        weight = check_weight(weight, f"version {version!r}")
        check_name(current_name, "version")
        record = self._live(name)
        versions = self._versions(record) or [self._first_version(record, current_name)]
        if any(v["name"] == version for v in versions):
            raise InvalidArgumentError(
                f"service {name!r} already has a version {version!r}", hint="pick another name"
            )
        path = bundle_folder(bundle)
        loaded = Bundle.load(path)
        facts = self._new_version_facts(record, version, loaded, show_output)
        scaled = rescale({v["name"]: v["weight"] for v in versions}, 100 - weight)
        for entry in versions:
            entry["weight"] = scaled[entry["name"]]
        versions.append(
            {
                "name": version,
                **facts,
                "models": [m.ref for m in loaded.models],
                "bundle_path": str(path),
                "weight": weight,
            }
        )
        new = self._with_versions(record, versions, record.config.get("primary") or current_name)
        return self._change(record, new, f"adding version {version!r}", show_output)

    def _first_version(self, record: ServiceRecord, current_name: str) -> dict[str, Any]:
        """The running service as the first of several versions."""
        return {
            "name": current_name,
            **self._current_version_facts(record),
            "models": list(record.models),
            "bundle_path": record.bundle_path,
            "weight": 100,
        }

    def _with_versions(
        self, record: ServiceRecord, versions: builtins.list[dict[str, Any]], primary: str
    ) -> ServiceRecord:
        return record.replace(
            models=self._union(versions),
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
        """New weights (percent, adding up to 100; versions left out get 0). Returns
        once every router uses them.

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
        new = self._with_versions(record, keep, primary)
        new = self._change(record, new, f"removing version {version!r}", False)
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


class _ConvergingRollout(Rollout):
    """The primitives of the update algorithm for a converging target: the cluster
    rolls the replicas itself (new ones next to the old ones), so starting the new
    generation is converging to its record and waiting; restoring the old one is
    converging to the old record again (its replicas never stopped serving)."""

    def __init__(
        self,
        target: ConvergingTarget,
        conn: Any,
        record: ServiceRecord,
        bundle: Path,
        config: Any,
        show_output: bool,
    ) -> None:
        super().__init__(target, record, bundle, timeout=config.timeout, show_output=show_output)
        self.converging = target
        self.conn = conn
        self.config = config
        self.new = record
        self.seen = Observation(ServiceState.TRANSITIONING, None)
        self.output_hint = f"see the new {target.workers}' output with"

    @property
    def kept(self) -> str:  # type: ignore[override]
        return f"rolled back, generation {self.record.generation} keeps serving"

    def prepare(self) -> None:
        self.new = self.converging._next(
            self.conn, self.record, self.config, self.bundle, self.show_output
        )

    def make_room(self) -> bool:
        return True  # a failed rollout is undone by converging to the old record again

    def start(self) -> None:
        deadline = time.monotonic() + self.config.timeout
        self.seen = self.converging._converge(self.conn, self.new, deadline, self.show_output)

    def wait_ready(self) -> Outcome:
        if self.seen.state is ServiceState.HEALTHY:
            return Outcome(True)
        reason = self.seen.reason or f"not rolled out within {self.config.timeout:g} s"
        return Outcome(False, f"{self.seen.state.value}: {reason}")

    def discard_new(self) -> None:
        if str(self.bundle) != self.record.bundle_path:
            self.converging._remove_bundle(str(self.bundle))

    def restore_old(self) -> None:
        self.converging._converge(self.conn, self.record, None, self.show_output)

    def stop_old(self) -> None:
        return None  # the cluster retired the old replicas in the rollout

    def commit(self) -> ServiceRecord:
        updated = self.converging._finish(self.conn, self.new).with_state(ServiceState.HEALTHY)
        return self.converging.workspace.services.put(updated)

    def retire_bundles(self, updated: ServiceRecord) -> None:
        for old in self.converging._bundles(self.record) - self.converging._bundles(updated):
            self.converging._remove_bundle(old)
