"""Profile orchestration: find what the profiler needs from a service, or deploy a
model temporarily to profile it.

The measuring itself is :mod:`nbdeploy.profiling`; this module finds the
scoring URI, the serving processes (their PIDs) and the auth header from a service
record, and tears a temporary deployment down again even when the profile fails. The
public :func:`nbdeploy.profile` and ``Model.profile`` call it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbdeploy.core.services import ServiceRecord
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError
from nbdeploy.profiling import ProfileResult, run_profile
from nbdeploy.workflows.access import auth_headers
from nbdeploy.workflows.build import resolve_models
from nbdeploy.workflows.deploy import delete_service, deploy_models

if TYPE_CHECKING:
    from nbdeploy.core.bundle import InferenceConfig
    from nbdeploy.core.workspace import Workspace

__all__ = ["profile_models", "profile_service", "service_pids", "store_tags"]


def service_pids(record: ServiceRecord) -> list[int]:
    """The serving processes of the service of ``record`` that a profile samples (its children too).

    The local target records its server process in ``record.config["process"]``
    (``{"pid", "start_time"}``); a PID whose start time no longer matches belongs to
    another process now and is not returned. Targets that record no local process
    (a remote Docker engine, a cluster) give an empty list: the profile then
    measures latency and throughput only.

    Examples
    --------
    >>> service_pids(nbdeploy.get_service("diabetes-svc").record)   # doctest: +SKIP
    [48213]
    """
    config = record.config
    process = config.get("process")
    entries: list[Any] = []
    if isinstance(process, dict) and "pid" in process:
        entries.append(process)
    elif "pid" in config:
        entries.append({"pid": config["pid"]})
    pids: list[int] = []
    for entry in entries:
        try:
            pid = int(entry["pid"])
        except (TypeError, ValueError):
            continue
        start = entry.get("start_time")
        if start is not None:
            from nbdeploy.targets.process.supervisor import ProcessId

            if not ProcessId(pid, int(start)).alive():
                continue
        pids.append(pid)
    return pids


def profile_service(
    workspace: Workspace,
    record: ServiceRecord,
    bodies: Sequence[bytes],
    *,
    name: str,
    headers: dict[str, str] | None = None,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    target_rps: float | None = None,
    timeout: float = 60.0,
) -> ProfileResult:
    """Profile the running service of ``record`` (its live record, just refreshed)
    with ``bodies``; ``headers`` default to the service's auth header."""
    if record.state.value != "Healthy":
        raise DeploymentError(
            f"service {record.name!r} is {record.state.value}, not Healthy: cannot profile it",
            hint=f"see nbdeploy.get_service({record.name!r}).get_logs()",
        )
    if not record.scoring_uri:
        raise DeploymentError(f"service {record.name!r} has no scoring URI")
    return run_profile(
        record.scoring_uri,
        bodies,
        concurrency=concurrency,
        duration=duration,
        count=count,
        pids=service_pids(record),
        headers=auth_headers(workspace, record.name) if headers is None else headers,
        timeout=timeout,
        target_rps=target_rps,
        name=name,
        service=record.name,
        models=record.models,
    )


def store_tags(workspace: Workspace, models: Sequence[str], result: ProfileResult) -> None:
    tags = result.recommendation.as_tags()
    if not tags:
        raise InvalidArgumentError(
            f"profile {result.name!r} measured no serving process: no recommendation to store",
            hint="profile a local service (its process is sampled) to get one",
        )
    for ref in models:
        workspace.registry.add_tags(ref, tags)


def profile_models(
    workspace: Workspace,
    models: Any,
    inference_config: InferenceConfig | None,
    bodies: Sequence[bytes],
    *,
    name: str | None = None,
    store: bool = False,
    **options: Any,
) -> ProfileResult:
    """Deploy ``models`` on the local target under a temporary name, profile them with
    ``bodies`` (``options`` as :func:`profile_service`), and delete the deployment
    again, also when the profile fails."""
    from nbdeploy.targets import get_target

    versions = resolve_models(workspace, models)  # fail before deploying anything
    service_name = f"profile-{uuid.uuid4().hex[:12]}"
    deployed = False
    try:
        record = deploy_models(
            workspace, service_name, versions, inference_config, None, target="local"
        )
        deployed = True
        record = get_target(record.target, workspace).get(service_name)
        result = profile_service(workspace, record, bodies, name=name or service_name, **options)
    finally:
        if deployed:
            delete_service(workspace, record)
        else:  # a failed deploy may have left a record behind
            with contextlib.suppress(Exception):
                delete_service(workspace, workspace.services.get(service_name))
    if store:
        store_tags(workspace, [str(v.ref) for v in versions], result)
    return result
