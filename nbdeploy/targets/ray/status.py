"""From Ray Serve's view of an application to an nbdeploy state and its reason: pure.

The inputs are plain dicts: the application's details as Serve's controller reports
them (status, and per deployment its status, message, target replica count and
replicas with their state and node), the resources one replica asks for, the alive
nodes' total resources and the cluster's free resources. Rules, first match wins,
per deployment:

``Failed``
    The deployment is ``DEPLOY_FAILED`` (its replicas failed to start, Serve gave
    up): the reason is the replica's own words — the ``NBDEPLOY-INIT-FAILED: <Type>:
    <message>`` line of a bundle or ``init()`` that raised, else the last line of
    Serve's message. Also an application that is gone.
``Unschedulable``
    A replica waits for a node: no node is big enough for one replica (``no node has
    8 CPU``), or Serve says replicas have waited long to be scheduled (then with the
    resource that is short: ``waiting for CPU: ...``).
``Unhealthy``
    Serve reports the deployment ``UNHEALTHY`` (replicas failing their health checks
    or dying after they started).
``Healthy``
    The deployment is ``HEALTHY``, or scaling by its autoscaler while serving.
``Transitioning``
    Anything else (replicas starting, an update rolling).

Examples
--------
>>> observe(None, {}).state
<ServiceState.FAILED: 'Failed'>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nbdeploy.core.services import ServiceState
from nbdeploy.targets.observation import Observation, worst_of

from .replica import INIT_FAILED

__all__ = ["combine", "failure_reason", "observe", "request_of", "unschedulable"]

_SERVING = {"HEALTHY", "UPSCALING", "DOWNSCALING"}
#: Most pressing first: one failed part makes the whole service failed.
_ORDER = (
    ServiceState.FAILED,
    ServiceState.UNSCHEDULABLE,
    ServiceState.UNHEALTHY,
    ServiceState.TRANSITIONING,
    ServiceState.HEALTHY,
)


def combine(parts: Mapping[str, Observation]) -> Observation:
    """One state for several deployments (versions, router): the most pressing one,
    its reason prefixed with the deployment's name.

    Examples
    --------
    >>> combine({"v1": Observation(ServiceState.HEALTHY, None),
    ...          "v2": Observation(ServiceState.FAILED, "boom")}).reason
    'v2: boom'
    """
    return worst_of(parts, _ORDER, "no deployment")


def _status(value: Any) -> str:
    """``DeploymentStatus.HEALTHY`` / ``"HEALTHY"`` → ``"HEALTHY"``."""
    text = str(getattr(value, "value", value) or "")
    return text.rsplit(".", 1)[-1].upper()


def failure_reason(message: str) -> str:
    """The replica's own words in Serve's failure message.

    Examples
    --------
    >>> failure_reason("The deployment failed...\\nTraceback...\\n"
    ...                "ReplicaInitError: NBDEPLOY-INIT-FAILED: ValueError: no model")
    'ValueError: no model'
    >>> failure_reason("boom\\nRuntimeError: out of memory")
    'RuntimeError: out of memory'
    """
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    for line in reversed(lines):
        if INIT_FAILED in line:
            return line.split(INIT_FAILED, 1)[1].lstrip(": ").strip()
    return lines[-1][:500] if lines else "its replicas failed to start"


def request_of(actor_options: Mapping[str, Any]) -> dict[str, float]:
    """The resources one replica asks for, in Ray's names (``CPU``, ``GPU``,
    ``memory`` in bytes, custom ones).

    Examples
    --------
    >>> request_of({"num_cpus": 0.5, "memory": 1e9, "resources": {"model": 1}})
    {'CPU': 0.5, 'memory': 1000000000.0, 'model': 1.0}
    """
    wanted: dict[str, float] = {}
    for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU"), ("memory", "memory")):
        if actor_options.get(key):
            wanted[name] = float(actor_options[key])
    for name, amount in (actor_options.get("resources") or {}).items():
        if amount:
            wanted[str(name)] = float(amount)
    return wanted


def _amount(resource: str, value: float) -> str:
    if resource == "memory":
        return f"{value / 1024**3:.2f} GiB memory"
    return f"{value:g} {resource}"


def unschedulable(
    wanted: Mapping[str, float],
    nodes: Sequence[Mapping[str, Any]],
    free: Mapping[str, float],
) -> str | None:
    """Why a replica asking for ``wanted`` cannot be placed now, or ``None``.

    ``nodes`` are the alive nodes (``{"resources": {...}}``, totals); ``free`` the
    cluster's free resources.

    Examples
    --------
    >>> nodes = [{"ip": "127.0.0.1", "resources": {"CPU": 2.0}}]
    >>> unschedulable({"CPU": 8}, nodes, {"CPU": 2.0})
    'no node has 8 CPU for a replica (the largest has 2 CPU)'
    >>> unschedulable({"CPU": 1}, nodes, {"CPU": 0.5})
    'waiting for CPU: a replica needs 1 CPU, the cluster has 0.5 CPU free'
    >>> unschedulable({"CPU": 1}, nodes, {"CPU": 2.0}) is None
    True
    """
    if not nodes:
        return "the cluster has no alive node"
    for resource, amount in wanted.items():
        largest = max(float(n.get("resources", {}).get(resource, 0.0)) for n in nodes)
        if largest < amount:
            have = _amount(resource, largest) if largest else f"no {resource} at all"
            return f"no node has {_amount(resource, amount)} for a replica (the largest has {have})"
    if not any(
        all(float(n.get("resources", {}).get(r, 0.0)) >= a for r, a in wanted.items())
        for n in nodes
    ):
        needs = ", ".join(_amount(r, a) for r, a in wanted.items())
        return f"no single node has all of {needs} for a replica"
    for resource, amount in wanted.items():
        if float(free.get(resource, 0.0)) + 1e-9 < amount:
            return (
                f"waiting for {resource}: a replica needs {_amount(resource, amount)}, the "
                f"cluster has {_amount(resource, float(free.get(resource, 0.0)))} free"
            )
    return None


def _progress(deployment: Mapping[str, Any]) -> str:
    replicas = deployment.get("replicas") or []
    states: dict[str, int] = {}
    for replica in replicas:
        state = _status(replica.get("state"))
        states[state] = states.get(state, 0) + 1
    running = states.pop("RUNNING", 0)
    wanted = deployment.get("target_num_replicas")
    text = f"{running} of {wanted} replicas running" if wanted is not None else f"{running} running"
    rest = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    return f"{text} ({rest})" if rest else text


def _pending(deployment: Mapping[str, Any]) -> bool:
    """Whether a replica of the deployment has not been placed on a node yet."""
    return any(
        _status(r.get("state")) == "STARTING" and not r.get("node_id")
        for r in deployment.get("replicas") or ()
    )


def observe_deployment(
    deployment: Mapping[str, Any] | None,
    wanted: Mapping[str, float],
    nodes: Sequence[Mapping[str, Any]],
    free: Mapping[str, float],
) -> Observation:
    """The state of one deployment (see the module docstring)."""
    if deployment is None:
        return Observation(ServiceState.TRANSITIONING, None, "creating the deployment")
    status = _status(deployment.get("status"))
    message = str(deployment.get("message") or "")
    progress = _progress(deployment)
    if status == "DEPLOY_FAILED":
        return Observation(ServiceState.FAILED, failure_reason(message), progress)
    if status == "UNHEALTHY":
        return Observation(ServiceState.UNHEALTHY, failure_reason(message), progress)
    if status in _SERVING and not _pending(deployment):
        return Observation(ServiceState.HEALTHY, None, progress)
    late = "to be scheduled" in message  # Serve's word for replicas unplaced > 30 s
    if _pending(deployment) or late:
        reason = unschedulable(wanted, nodes, free)
        if reason is None and late:
            reason = message.split(". Use `ray status`")[0].strip()
        # A resource that is there but taken may be taken by this very replica as it
        # is being placed: only Serve's own "late" makes it Unschedulable.
        if reason is not None and (late or not reason.startswith("waiting for")):
            return Observation(ServiceState.UNSCHEDULABLE, reason, progress)
    return Observation(ServiceState.TRANSITIONING, None, progress)


def observe(
    app: Mapping[str, Any] | None,
    wanted: Mapping[str, Mapping[str, float]],
    nodes: Sequence[Mapping[str, Any]] = (),
    free: Mapping[str, float] | None = None,
) -> Observation:
    """The state of a service's application: its deployments' (``wanted``: each
    expected deployment's per-replica request), the most pressing one winning.

    Examples
    --------
    >>> app = {"status": "RUNNING", "deployments": {"score": {
    ...     "status": "HEALTHY", "target_num_replicas": 1,
    ...     "replicas": [{"state": "RUNNING", "node_id": "n1"}]}}}
    >>> observe(app, {"score": {"CPU": 0.1}}).state
    <ServiceState.HEALTHY: 'Healthy'>
    """
    if app is None:
        return Observation(
            ServiceState.FAILED,
            "its Serve application no longer exists (deleted, or the cluster restarted)",
        )
    deployments = app.get("deployments") or {}
    parts = {
        name: observe_deployment(deployments.get(name), request, nodes, free or {})
        for name, request in wanted.items()
    }
    seen = combine(parts)
    if seen.state is ServiceState.HEALTHY and _status(app.get("status")) == "DEPLOYING":
        # Deployments of the previous layout are still being removed.
        return Observation(ServiceState.TRANSITIONING, None, seen.progress)
    return seen


def replica_nodes(app: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``{deployment: [node id of each running replica]}`` (placement).

    Examples
    --------
    >>> replica_nodes({"deployments": {"score": {"replicas": [
    ...     {"state": "RUNNING", "node_id": "a"}, {"state": "STARTING", "node_id": ""}]}}})
    {'score': ['a']}
    """
    placed: dict[str, list[str]] = {}
    for name, deployment in ((app or {}).get("deployments") or {}).items():
        placed[name] = [
            str(r.get("node_id"))
            for r in deployment.get("replicas") or ()
            if _status(r.get("state")) == "RUNNING"
        ]
    return placed


def replicas(app: Mapping[str, Any] | None, names: Iterable[str]) -> list[Mapping[str, Any]]:
    """Every replica (running or not) of the deployments ``names``."""
    found: list[Mapping[str, Any]] = []
    deployments = (app or {}).get("deployments") or {}
    for name in names:
        deployment = deployments.get(name) or {}
        found += list(deployment.get("replicas") or ())
        found += list(deployment.get("recent_dead_replicas") or ())
    return found
