"""What a look at a service's live objects found, for the targets that converge a
cluster to the state a service record describes (Kubernetes, Ray)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nbdeploy.core.services import ServiceState

__all__ = ["Observation", "worst_of"]


@dataclass(frozen=True)
class Observation:
    """A state, why (``None`` when healthy) and how far the rollout is.

    Examples
    --------
    >>> Observation(ServiceState.HEALTHY, None, "2 of 2 replicas running").state
    <ServiceState.HEALTHY: 'Healthy'>
    """

    state: ServiceState
    reason: str | None
    progress: str = ""


def worst_of(
    parts: Mapping[str, Observation], order: Sequence[ServiceState], missing: str
) -> Observation:
    """One state for several parts of a service (versions, router): the first of
    ``order`` any part is in, its reason prefixed with the part's name; ``Failed``
    with ``missing`` when there is no part.

    Examples
    --------
    >>> order = (ServiceState.FAILED, ServiceState.HEALTHY)
    >>> worst_of({"v1": Observation(ServiceState.HEALTHY, None),
    ...           "v2": Observation(ServiceState.FAILED, "boom")}, order, "none").reason
    'v2: boom'
    """
    if not parts:
        return Observation(ServiceState.FAILED, missing)
    if len(parts) == 1:
        return next(iter(parts.values()))
    name, worst = min(parts.items(), key=lambda item: order.index(item[1].state))
    reason = f"{name}: {worst.reason}" if worst.reason else None
    progress = "; ".join(f"{n}: {o.progress}" for n, o in parts.items() if o.progress)
    return Observation(worst.state, reason, progress)
