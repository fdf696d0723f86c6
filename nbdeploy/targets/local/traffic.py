"""Several versions behind one local endpoint: add, weigh, update, remove, roll back.

A local service starts as one server process on its port (no extra hop). The first
:func:`add_version` turns it into an endpoint with versions, without a gap:

1. the current bundle starts again as version ``current_name`` (``"v1"``) on a fresh
   loopback port, and the new bundle as the new version on another;
2. once both answer, the router (:mod:`nbdeploy.targets.process.router`) starts on the
   endpoint's port with ``SO_REUSEPORT`` next to the original process, with the
   weights in its routes file, and confirms it applied them;
3. the original process gets SIGTERM and finishes its requests in flight, so the
   scoring URI keeps answering throughout.

From then on the service record's ``config`` holds ``"versions"`` (name, bundle,
models, port, weight, process of each), ``"primary"`` and the router as
``"process"``. Weight changes (:func:`set_traffic`) rewrite the routes file
(``services/<name>/routes.json``), send the router ``SIGHUP`` and wait until it has
confirmed the new generation — the change is in effect for every request sent after
the call returns, and requests in flight are not touched. A version leaves
(:func:`remove_version`, :func:`rollback`) only after the router stopped sending it
traffic, then finishes its own requests in flight. :func:`update_version` replaces one
version's process the same way (new process, switch, retire the old one).

The router stays for the life of the endpoint, also when one version is left.

Examples
--------
>>> record = add_version(target, "churn", "v2", bundle, weight=10)  # doctest: +SKIP
>>> set_traffic(target, "churn", {"v1": 50, "v2": 50}).config["versions"][1]["weight"]
... # doctest: +SKIP
50
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.core.serving import drain_seconds
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError, TargetUnavailableError
from nbdeploy.targets.base import Target
from nbdeploy.targets.probe import PROBE_TIMEOUT, probe
from nbdeploy.targets.process.router import ROUTER_SCRIPT, Route, Routes, read_applied
from nbdeploy.targets.process.supervisor import (
    LaunchError,
    ProcessId,
    launch,
    terminate,
    terminate_all,
)
from nbdeploy.targets.records import logs_hint
from nbdeploy.targets.weights import check_weight, rescale

from .bundles import bundle_models, bundle_path, bundle_settings
from .config import LocalConfig
from .replicas import Replicas
from .servers import servers_of

__all__ = [
    "DEFAULT_VERSION",
    "Version",
    "add_version",
    "remove_version",
    "rollback",
    "set_traffic",
    "traffic_of",
    "update_version",
    "versions_of",
]

#: The name the service's first version gets when a second one is added.
DEFAULT_VERSION = "v1"
#: Seconds the router may take to confirm new routes (it usually takes < 10 ms).
ACK_TIMEOUT = 10.0
#: The servers' default ``max_request_bytes`` (the router enforces the same limit).
DEFAULT_BODY = 100 * 1024 * 1024
#: Seconds the router process may take to start listening.
ROUTER_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Version:
    """One version of an endpoint: its bundle, models, server process and weight.

    Examples
    --------
    >>> v = Version("v1", "/b", ("iris:1",), 8001, 90, ProcessId(1, 2), "warm")
    >>> Version.from_dict(v.to_dict()) == v
    True
    """

    name: str
    bundle_path: str
    models: tuple[str, ...]
    port: int
    weight: int
    process: ProcessId
    mode: str
    replicas: tuple[ProcessId, ...] = ()

    @property
    def processes(self) -> list[ProcessId]:
        """Every server process of this version (its replicas share one socket)."""
        return [self.process, *self.replicas]

    def alive(self) -> bool:
        """Whether every server process of this version runs."""
        return all(p.alive() for p in self.processes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bundle_path": self.bundle_path,
            "models": list(self.models),
            "port": self.port,
            "weight": self.weight,
            "process": self.process.to_dict(),
            "mode": self.mode,
            "replicas": [p.to_dict() for p in self.replicas],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Version:
        return cls(
            name=str(data["name"]),
            bundle_path=str(data["bundle_path"]),
            models=tuple(str(m) for m in data.get("models", ())),
            port=int(data["port"]),
            weight=int(data["weight"]),
            process=ProcessId.from_dict(data["process"]),
            mode=str(data.get("mode", "")),
            replicas=tuple(ProcessId.from_dict(p) for p in data.get("replicas") or ()),
        )


def versions_of(record: ServiceRecord) -> list[Version]:
    """The versions of a service record (empty for a plain one-process service)."""
    raw = record.config.get("versions")
    if not isinstance(raw, list):
        return []
    return [Version.from_dict(v) for v in raw]


def traffic_of(record: ServiceRecord) -> dict[str, int]:
    """``{version: weight}`` of a service record (empty for a plain service).

    Examples
    --------
    >>> traffic_of(ServiceRecord("s", "local", "Healthy"))
    {}
    """
    return {v.name: v.weight for v in versions_of(record)}


def _service_dir(target: Target, name: str) -> Path:
    return target._service_dir(name)


def _routes_file(target: Target, name: str) -> Path:
    return _service_dir(target, name) / "routes.json"


def _applied_file(target: Target, name: str) -> Path:
    return _service_dir(target, name) / "routes.applied.json"


def _config(record: ServiceRecord) -> LocalConfig:
    return LocalConfig.from_record(record)


def _live_record(target: Target, name: str) -> ServiceRecord:
    record = target.get(name)  # ServiceNotFoundError, wrong target: InvalidArgumentError
    if record.state is ServiceState.FAILED:
        raise DeploymentError(
            f"service {name!r} is Failed ({record.error}); its versions cannot change",
            hint="deploy it again (nbdeploy.deploy(..., name=...)) or delete it",
        )
    return record


def _union(versions: Iterable[Version]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for version in versions:
        for model in version.models:
            seen.setdefault(model, None)
    return tuple(seen)


def _routes(versions: Iterable[Version], host: str, generation: int) -> Routes:
    return Routes(generation, tuple(Route(v.name, host, v.port, v.weight) for v in versions))


def _start_backend(
    target: Target,
    name: str,
    version: str,
    bundle: Path,
    cfg: LocalConfig,
    show_output: bool,
) -> tuple[list[ProcessId], int, str]:
    """Start one version's servers (its replicas) on a fresh port; wait until they
    answer."""
    if show_output:
        print(f"{name}: starting version {version}", flush=True)
    servers, port, mode, outcome = Replicas(target.workspace).start(
        name, bundle, cfg, 0, cfg.replica_count, show_output
    )
    if not outcome.ready:
        reason = outcome.reason or f"not ready within {cfg.timeout:g} s"
        raise DeploymentError(
            f"version {version!r} of service {name!r} failed to start: {reason}; "
            "the endpoint is unchanged",
            hint=logs_hint(name),
        )
    return [s.process for s in servers], port, mode


def _start_version(
    target: Target, name: str, version: str, bundle: Path, cfg: LocalConfig, show_output: bool
) -> Version:
    """:func:`_start_backend` as a :class:`Version` (no traffic yet, its models read
    from the bundle)."""
    procs, port, mode = _start_backend(target, name, version, bundle, cfg, show_output)
    return Version(
        version, str(bundle), bundle_models(bundle), port, 0, procs[0], mode, tuple(procs[1:])
    )


def _wait_applied(
    target: Target, name: str, router: ProcessId, generation: int, timeout: float
) -> None:
    applied = _applied_file(target, name)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        data = read_applied(applied)
        if (
            data is not None
            and data.get("pid") == router.pid
            and data.get("generation") == generation
        ):
            return
        if not router.alive():
            raise DeploymentError(
                f"the router of service {name!r} stopped: "
                + Replicas(target.workspace).death_reason(name, router),
                hint=logs_hint(name, "delete the service and deploy it again; the reason is in"),
            )
        if time.monotonic() >= deadline:
            raise TargetUnavailableError(
                f"the router of service {name!r} (pid {router.pid}) did not confirm routes "
                f"generation {generation} within {timeout:g} s",
                hint=logs_hint(name, "see"),
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _apply(target: Target, record: ServiceRecord, routes: Routes) -> None:
    """Give the running router new routes and wait until it uses them."""
    router = ProcessId.from_dict(record.config["process"])
    routes.write(_routes_file(target, record.name))
    if not router.signal(signal.SIGHUP):
        raise DeploymentError(
            f"the router of service {record.name!r} (pid {router.pid}) is not running",
            hint="delete the service and deploy it again",
        )
    _wait_applied(target, record.name, router, routes.generation, ACK_TIMEOUT)


def _start_router(
    target: Target,
    name: str,
    cfg: LocalConfig,
    routes: Routes,
    *,
    take_over: str | None = None,
) -> ProcessId:
    """Start the router on the endpoint's port.

    With ``take_over`` (the single server's hand-over socket) the router serves on that
    server's own listening socket, so no connection queued for it is lost in the switch.
    """
    service_dir = _service_dir(target, name)
    record = target.workspace.services.get(name)
    # The endpoint's versions share its settings (auth, CORS, limits).
    max_body = int(bundle_settings(record.bundle_path).get("max_request_bytes") or DEFAULT_BODY)
    routes.write(_routes_file(target, name))
    with contextlib.suppress(OSError):
        _applied_file(target, name).unlink()
    program = [
        str(ROUTER_SCRIPT),
        "--routes",
        str(_routes_file(target, name)),
        "--applied",
        str(_applied_file(target, name)),
        "--host",
        cfg.bind_host,
        "--port",
        str(cfg.port),
        "--max-body-bytes",
        str(max_body),
        *(["--take-over", take_over] if take_over else []),
    ]
    try:
        # isolated: stdlib (+ uvloop) only, no nbdeploy, numpy or pandas to import
        router = launch(
            program,
            log_file=Replicas(target.workspace).log_file(name),
            exit_dir=service_dir,
            cwd=service_dir,
            isolated=True,
        )
    except LaunchError as exc:
        raise DeploymentError(f"could not start the router of service {name!r}: {exc}") from None
    try:
        _wait_applied(target, name, router, routes.generation, ROUTER_START_TIMEOUT)
    except BaseException:
        terminate(router, 5.0)
        raise
    return router


def _store(
    target: Target,
    record: ServiceRecord,
    versions: list[Version],
    primary: str,
    generation: int,
    **config: Any,
) -> ServiceRecord:
    main = next(v for v in versions if v.name == primary)
    return target.workspace.services.put(
        record.replace(
            state=ServiceState.HEALTHY,
            error=None,
            models=_union(versions),
            bundle_path=main.bundle_path,
            generation=record.generation + 1,
            config={
                **{k: v for k, v in record.config.items() if k not in ("servers", "restarts")},
                **config,
                "versions": [v.to_dict() for v in versions],
                "primary": primary,
                "routes_generation": generation,
            },
        )
    )


def _retire(target: Target, name: str, old: Version, keep: Iterable[Version]) -> None:
    """Stop a version's processes (they finish their requests) and drop its bundle."""
    grace = max(10.0, drain_seconds(bundle_settings(old.bundle_path)))
    terminate_all(old.processes, grace)
    for proc in old.processes:
        with contextlib.suppress(OSError):
            (_service_dir(target, name) / f"exit-{proc.pid}.json").unlink()
    if all(v.bundle_path != old.bundle_path for v in keep):
        target._remove_bundle(old.bundle_path)


def _check_serving(target: Target, record: ServiceRecord, version: Version) -> None:
    """Refuse to send traffic to a version that is not running or not answering."""
    dead = next((p for p in version.processes if not p.alive()), None)
    if dead is not None:
        why = Replicas(target.workspace).death_reason(record.name, dead)
    elif probe(_config(record).bind_host, version.port, timeout=PROBE_TIMEOUT) != 200:
        why = "it does not answer GET / with 200"
    else:
        return
    raise DeploymentError(
        f"version {version.name!r} of service {record.name!r} is not serving ({why}); "
        "no traffic was moved",
        hint=f"give it weight 0, update it (service.update_version({version.name!r}, ...)) "
        "or remove it",
    )


def _find(versions: list[Version], version: str, service: str) -> Version:
    for v in versions:
        if v.name == version:
            return v
    known = ", ".join(v.name for v in versions) or "none (a plain service)"
    raise InvalidArgumentError(
        f"service {service!r} has no version {version!r}; its versions: {known}",
        hint="see service.traffic for the versions and their weights",
    )


def _need_versions(record: ServiceRecord) -> list[Version]:
    versions = versions_of(record)
    if not versions:
        raise InvalidArgumentError(
            f"service {record.name!r} has a single version and no traffic split",
            hint="add a second version first: service.add_version('v2', models=..., weight=10)",
        )
    return versions


def add_version(
    target: Target,
    name: str,
    version: str,
    bundle: Any,
    weight: int = 0,
    *,
    current_name: str = DEFAULT_VERSION,
    show_output: bool = False,
) -> ServiceRecord:
    """Serve ``bundle`` as version ``version`` of endpoint ``name`` with ``weight`` %.

    The other versions' weights are scaled down to make room. On a plain service the
    running bundle becomes version ``current_name`` and the router takes the port (see
    the module docstring); the scoring URI does not change.

    Raises
    ------
    InvalidArgumentError
        A bad version name or weight, or a version of that name exists.
    DeploymentError
        The new version (or the router) did not start; the endpoint is unchanged.

    Examples
    --------
    >>> add_version(target, "churn", "v2", "bundles/churn/2", weight=10)  # doctest: +SKIP
    """
    check_name(version, "version")
    weight = check_weight(weight, f"version {version!r}")
    record = _live_record(target, name)
    path = bundle_path(bundle)
    models = bundle_models(path)
    cfg = _config(record)
    versions = versions_of(record)
    if not versions:
        return _split(target, record, cfg, version, path, models, weight, current_name, show_output)
    if any(v.name == version for v in versions):
        raise InvalidArgumentError(
            f"service {name!r} already has a version {version!r}",
            hint="pick another name, or update it with service.update_version(...)",
        )
    procs, port, mode = _start_backend(target, name, version, path, cfg, show_output)
    scaled = rescale({v.name: v.weight for v in versions}, 100 - weight)
    new = [replace(v, weight=scaled[v.name]) for v in versions]
    new.append(Version(version, str(path), models, port, weight, procs[0], mode, tuple(procs[1:])))
    generation = int(record.config.get("routes_generation", 0)) + 1
    try:
        _apply(target, record, _routes(new, cfg.bind_host, generation))
    except BaseException:
        terminate_all(procs, 10.0)
        raise
    return _store(target, record, new, str(record.config.get("primary")), generation)


def _split(
    target: Target,
    record: ServiceRecord,
    cfg: LocalConfig,
    version: str,
    path: Path,
    models: tuple[str, ...],
    weight: int,
    current_name: str,
    show_output: bool,
) -> ServiceRecord:
    """A plain service gets its second version: two backends, the router, hand-over."""
    name = record.name
    check_name(current_name, "version")
    if current_name == version:
        raise InvalidArgumentError(
            f"the new version and the current one are both called {version!r}",
            hint="pick another name for one of them (current_name=...)",
        )
    if not record.bundle_path:
        raise DeploymentError(f"service {name!r} has no recorded bundle to keep serving")
    old = servers_of(record)
    first = _start_version(target, name, current_name, Path(record.bundle_path), cfg, show_output)
    try:
        second = _start_version(target, name, version, path, cfg, show_output)
    except BaseException:
        terminate_all(first.processes, 10.0)
        raise
    versions = [
        replace(first, bundle_path=record.bundle_path, models=record.models, weight=100 - weight),
        replace(second, models=models, weight=weight),
    ]
    try:
        handover = record.config.get("handover")
        router = _start_router(
            target,
            name,
            cfg,
            _routes(versions, cfg.bind_host, 1),
            take_over=str(handover) if handover else None,
        )
    except BaseException:
        terminate_all(first.processes + second.processes, 10.0)
        raise
    if show_output:
        print(f"{name}: router on port {cfg.port}; retiring the single server", flush=True)
    # Both listen on the endpoint's port now; the old server finishes its requests.
    Replicas(target.workspace).retire(name, old, bundle_settings(record.bundle_path))
    return _store(
        target, record, versions, current_name, 1, mode="router", process=router.to_dict()
    )


def set_traffic(target: Target, name: str, weights: Mapping[str, int]) -> ServiceRecord:
    """Give the versions of endpoint ``name`` new weights (percent, adding up to 100).

    Versions left out get 0. The change holds for every request sent after this returns;
    requests in flight finish where they are.

    Raises
    ------
    InvalidArgumentError
        A plain service, an unknown version, a weight outside 0-100, or a total that is
        not 100.

    Examples
    --------
    >>> set_traffic(target, "churn", {"v1": 90, "v2": 10})  # doctest: +SKIP
    """
    if not isinstance(weights, Mapping) or not weights:
        raise InvalidArgumentError(
            f"traffic weights must be a non-empty dict, got {weights!r}",
            hint="e.g. {'v1': 90, 'v2': 10}",
        )
    record = _live_record(target, name)
    versions = _need_versions(record)
    known = {v.name for v in versions}
    for version, weight in weights.items():
        if version not in known:
            _find(versions, str(version), name)
        check_weight(weight, f"version {version!r}")
    total = sum(weights.values())
    if total != 100:
        raise InvalidArgumentError(
            f"traffic weights {dict(weights)} add up to {total}, not 100",
            hint="give percentages that add up to 100; versions left out get 0",
        )
    new = [replace(v, weight=int(weights.get(v.name, 0))) for v in versions]
    for changed in new:
        if changed.weight > 0:
            _check_serving(target, record, changed)
    generation = int(record.config.get("routes_generation", 0)) + 1
    _apply(target, record, _routes(new, _config(record).bind_host, generation))
    return _store(target, record, new, str(record.config.get("primary")), generation)


def remove_version(target: Target, name: str, version: str) -> ServiceRecord:
    """Stop version ``version`` of endpoint ``name``; it must have weight 0 (shift its
    traffic first with :func:`set_traffic`, or use :func:`rollback`).

    If it was the primary version, the remaining version with the most traffic
    becomes primary.

    Raises
    ------
    InvalidArgumentError
        No such version, it still gets traffic, or it is the last one.

    Examples
    --------
    >>> remove_version(target, "churn", "v2")  # doctest: +SKIP
    """
    record = _live_record(target, name)
    versions = _need_versions(record)
    old = _find(versions, version, name)
    if len(versions) == 1:
        raise InvalidArgumentError(
            f"version {version!r} is the last version of service {name!r}",
            hint="delete the service instead",
        )
    if old.weight > 0:
        raise InvalidArgumentError(
            f"version {version!r} of service {name!r} still gets {old.weight}% of the traffic",
            hint="shift it away first: service.set_traffic({...}), or service.rollback()",
        )
    keep = [v for v in versions if v.name != version]
    primary = str(record.config.get("primary"))
    if primary == version:
        primary = max(keep, key=lambda v: v.weight).name
    generation = int(record.config.get("routes_generation", 0)) + 1
    _apply(target, record, _routes(keep, _config(record).bind_host, generation))
    _retire(target, name, old, keep)
    return _store(target, record, keep, primary, generation)


def rollback(target: Target, name: str) -> ServiceRecord:
    """Send all traffic of endpoint ``name`` back to its primary version and stop every
    other version.

    The primary version is the one that served the endpoint before versions were added
    (or, once it was removed, the one that then had the most traffic).

    Examples
    --------
    >>> rollback(target, "churn").config["primary"]  # doctest: +SKIP
    'v1'
    """
    record = _live_record(target, name)
    versions = _need_versions(record)
    primary = _find(versions, str(record.config.get("primary")), name)
    keep = [replace(primary, weight=100)]
    generation = int(record.config.get("routes_generation", 0)) + 1
    _apply(target, record, _routes(keep, _config(record).bind_host, generation))
    for old in versions:
        if old.name != primary.name:
            _retire(target, name, old, keep)
    return _store(target, record, keep, primary.name, generation)


def update_version(
    target: Target,
    name: str,
    version: str | None,
    bundle: Any,
    *,
    show_output: bool = False,
) -> ServiceRecord:
    """Switch version ``version`` (``None``: the primary) of endpoint ``name`` to
    ``bundle``, keeping its weight: a new process starts, the router switches to it,
    the old one finishes its requests and stops.

    Examples
    --------
    >>> update_version(target, "churn", "v2", "bundles/churn/3")  # doctest: +SKIP
    """
    record = _live_record(target, name)
    versions = _need_versions(record)
    old = _find(versions, version or str(record.config.get("primary")), name)
    path = bundle_path(bundle)
    cfg = _config(record)
    procs, port, mode = _start_backend(target, name, old.name, path, cfg, show_output)
    fresh = replace(
        old,
        bundle_path=str(path),
        models=bundle_models(path),
        port=port,
        process=procs[0],
        replicas=tuple(procs[1:]),
        mode=mode,
    )
    new = [fresh if v.name == old.name else v for v in versions]
    generation = int(record.config.get("routes_generation", 0)) + 1
    try:
        _apply(target, record, _routes(new, cfg.bind_host, generation))
    except BaseException:
        terminate_all(procs, 10.0)
        raise
    _retire(target, name, old, new)
    return _store(target, record, new, str(record.config.get("primary")), generation)


def version_processes(record: ServiceRecord) -> list[ProcessId]:
    """The server processes of a record's versions (for stopping them)."""
    return [p for v in versions_of(record) for p in v.processes]


def version_bundles(record: ServiceRecord) -> list[str]:
    """The bundle folders of a record's versions."""
    return [v.bundle_path for v in versions_of(record)]
