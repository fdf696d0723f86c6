"""From Kubernetes API objects to an nbdeploy state and the reason for it: pure.

The inputs are the JSON the API returns (dicts): a Deployment, its pods and the
namespace's events. Rules, first match wins:

``Failed``
    A current pod's container (or init container) waits in ``CrashLoopBackOff``,
    ``ImagePullBackOff``, ``ErrImagePull``, ``CreateContainerConfigError`` ... — the
    reason carries the container's last message (its termination message: with
    ``FallbackToLogsOnError`` the server's ``NBDEPLOY-INIT-FAILED`` line) — or the
    Deployment's rollout exceeded its progress deadline / cannot create pods.
``Unschedulable``
    A current pod has ``PodScheduled=False`` with reason ``Unschedulable``: the
    scheduler's message (``0/3 nodes are available: 3 Insufficient cpu.``).
``Healthy``
    The rollout is complete (``kubectl rollout status``'s rule: the new spec was
    observed, every replica is updated and available, no old replica is left).
``Unhealthy``
    Every replica runs the current spec, a current container started (its startup
    probe passed) but is not ready, and the kubelet reports its readiness probe
    failing (a ``Readiness probe failed`` event): the probe's message.
``Transitioning``
    Anything else: the rollout progresses (the message says how far).

"Current" pods are those of the service's generation (the ``nbdeploy.io/generation``
pod label), so a crash of the new version is seen while the old one still serves.

Examples
--------
>>> observe(None, []).state
<ServiceState.FAILED: 'Failed'>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nbdeploy.core.services import ServiceState
from nbdeploy.targets.observation import Observation, worst_of

__all__ = ["combine", "event_line", "observe", "pod_problem", "rollout_status"]

#: Container waiting reasons that mean the pod will not come up without a change.
FAILING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
_INIT_FAILED = "NBDEPLOY-INIT-FAILED"
#: Most pressing first (a rollout in progress before a probe failing).
_ORDER = (
    ServiceState.FAILED,
    ServiceState.UNSCHEDULABLE,
    ServiceState.TRANSITIONING,
    ServiceState.UNHEALTHY,
    ServiceState.HEALTHY,
)


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    current: Any = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in _get(obj, "status", "conditions") or ():
        if condition.get("type") == kind:
            return dict(condition)
    return None


def rollout_status(deployment: Mapping[str, Any]) -> tuple[bool, str, str | None]:
    """``(done, message, failure)`` of a Deployment's rollout — ``kubectl rollout
    status``'s rules.

    Examples
    --------
    >>> d = {"metadata": {"generation": 2}, "spec": {"replicas": 2},
    ...      "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
    ...                 "availableReplicas": 1}}
    >>> rollout_status(d)
    (False, 'Waiting for rollout to finish: 1 of 2 updated replicas are available', None)
    """
    name = _get(deployment, "metadata", "name") or "deployment"
    generation = _get(deployment, "metadata", "generation") or 0
    observed = _get(deployment, "status", "observedGeneration") or 0
    if generation > observed:
        return False, "Waiting for the deployment spec update to be observed", None
    progressing = _condition(deployment, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, "", f"{name} exceeded its progress deadline: {progressing.get('message')}"
    failure = _condition(deployment, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        return False, "", f"{name} cannot create pods: {failure.get('message')}"
    wanted = _get(deployment, "spec", "replicas")
    wanted = 1 if wanted is None else int(wanted)
    status = _get(deployment, "status") or {}
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return (
            False,
            f"Waiting for rollout to finish: {updated} out of {wanted} new replicas have "
            "been updated",
            None,
        )
    if replicas > updated:
        return (
            False,
            f"Waiting for rollout to finish: {replicas - updated} old replicas are pending "
            "termination",
            None,
        )
    if available < updated:
        return (
            False,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
            "available",
            None,
        )
    return True, f"{updated} of {wanted} updated replicas are available", None


def _last_message(status: Mapping[str, Any]) -> str:
    """The most telling words a container status has about why it stopped."""
    terminated = _get(status, "lastState", "terminated") or _get(status, "state", "terminated")
    if not terminated:
        return ""
    message = str(terminated.get("message") or "").strip()
    for line in reversed(message.splitlines()):
        if line.startswith(_INIT_FAILED):
            return line.split(":", 1)[1].strip()
    last = message.splitlines()[-1].strip() if message else ""
    reason = terminated.get("reason") or "Error"
    code = terminated.get("exitCode")
    words = f"exited with code {code} ({reason})"
    return f"{words}: {last[:500]}" if last else words


def pod_problem(pod: Mapping[str, Any]) -> tuple[ServiceState, str] | None:
    """Why a pod cannot serve, as ``(Failed | Unschedulable, reason)``; ``None`` if
    nothing is wrong with it (yet).

    Examples
    --------
    >>> pending = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
    ...     {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
    ...      "message": "0/1 nodes are available: 1 Insufficient cpu."}]}}
    >>> state, reason = pod_problem(pending)
    >>> state.value, reason
    ('Unschedulable', 'pod p: 0/1 nodes are available: 1 Insufficient cpu.')
    """
    name = _get(pod, "metadata", "name") or "pod"
    statuses = [
        *(("init container", s) for s in _get(pod, "status", "initContainerStatuses") or ()),
        *(("container", s) for s in _get(pod, "status", "containerStatuses") or ()),
    ]
    for what, status in statuses:
        waiting = _get(status, "state", "waiting") or {}
        reason = waiting.get("reason")
        if reason in FAILING_REASONS:
            detail = _last_message(status) or str(waiting.get("message") or "").strip()
            text = f"pod {name}: {what} {status.get('name')} {reason}"
            return ServiceState.FAILED, f"{text}: {detail}" if detail else text
        terminated = _get(status, "state", "terminated")
        if what == "init container" and terminated and terminated.get("exitCode"):
            return ServiceState.FAILED, f"pod {name}: init container {status.get('name')} " + (
                _last_message(status)
            )
    if _get(pod, "status", "phase") == "Failed":
        message = _get(pod, "status", "message") or _get(pod, "status", "reason") or "failed"
        return ServiceState.FAILED, f"pod {name}: {message}"
    scheduled = _condition(pod, "PodScheduled")
    if (
        scheduled
        and scheduled.get("status") == "False"
        and scheduled.get("reason") == "Unschedulable"
    ):
        return ServiceState.UNSCHEDULABLE, f"pod {name}: {scheduled.get('message')}"
    return None


def _not_ready(pod: Mapping[str, Any]) -> str | None:
    """Why a started container is not ready (its readiness probe fails), if so."""
    for status in _get(pod, "status", "containerStatuses") or ():
        if status.get("started") and not status.get("ready"):
            return (
                f"pod {_get(pod, 'metadata', 'name')}: container {status.get('name')} is not ready"
            )
    return None


def observe(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]] = (),
) -> Observation:
    """The state of one Deployment from it, its current pods and recent events.

    ``pods`` are the pods of the current generation; ``events`` (optional) add the
    probe's own words to an ``Unhealthy`` reason.

    Examples
    --------
    >>> d = {"metadata": {"name": "iris", "generation": 1}, "spec": {"replicas": 1},
    ...      "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
    ...                 "availableReplicas": 1}}
    >>> observe(d, []).state
    <ServiceState.HEALTHY: 'Healthy'>
    """
    if deployment is None:
        return Observation(ServiceState.FAILED, "its Deployment no longer exists")
    for pod in sorted(pods, key=lambda p: str(_get(p, "metadata", "name"))):
        problem = pod_problem(pod)
        if problem is not None and problem[0] is ServiceState.FAILED:
            return Observation(problem[0], problem[1])
    done, message, failure = rollout_status(deployment)
    if failure is not None:
        return Observation(ServiceState.FAILED, failure)
    for pod in pods:
        problem = pod_problem(pod)
        if problem is not None:
            return Observation(problem[0], problem[1], message)
    if done:
        return Observation(ServiceState.HEALTHY, None, message)
    unready = {str(_get(p, "metadata", "name")): r for p in pods if (r := _not_ready(p))}
    probe = _probe_message(events, set(unready))
    if probe and _only_availability_missing(deployment):
        return Observation(
            ServiceState.UNHEALTHY, f"{next(iter(unready.values()))}: {probe}", message
        )
    return Observation(ServiceState.TRANSITIONING, None, message)


def _only_availability_missing(deployment: Mapping[str, Any]) -> bool:
    """Every replica runs the current spec; only their readiness is missing."""
    wanted = _get(deployment, "spec", "replicas")
    status = _get(deployment, "status") or {}
    updated = int(status.get("updatedReplicas") or 0)
    return (
        updated >= (1 if wanted is None else int(wanted))
        and int(status.get("replicas") or 0) <= updated
    )


def _probe_message(events: Iterable[Mapping[str, Any]], pods: set[str]) -> str | None:
    """The last readiness-probe failure the kubelet reported for one of ``pods``."""
    found = None
    for event in events:
        message = " ".join(str(event.get("message") or "").split())
        if (
            _get(event, "involvedObject", "name") in pods
            and event.get("reason") == "Unhealthy"
            and message.startswith("Readiness probe failed")
        ):
            found = message
    return found


def combine(parts: Mapping[str, Observation]) -> Observation:
    """One state for several Deployments (versions, router): the most pressing one,
    its reason prefixed with the part's name.

    Examples
    --------
    >>> combine({"v1": Observation(ServiceState.HEALTHY, None),
    ...          "v2": Observation(ServiceState.FAILED, "pod x: boom")}).reason
    'v2: pod x: boom'
    """
    return worst_of(parts, _ORDER, "no Deployment")


def event_line(event: Mapping[str, Any]) -> str:
    """An event as one line: ``Kind/name Reason: message``.

    Examples
    --------
    >>> event_line({"type": "Normal", "reason": "Pulled", "message": "pulled",
    ...             "involvedObject": {"kind": "Pod", "name": "iris-1"}})
    'Pod/iris-1 Pulled: pulled'
    """
    kind = _get(event, "involvedObject", "kind") or "?"
    name = _get(event, "involvedObject", "name") or "?"
    warning = "Warning " if event.get("type") == "Warning" else ""
    message = " ".join(str(event.get("message") or "").split())
    return f"{kind}/{name} {warning}{event.get('reason')}: {message}"
