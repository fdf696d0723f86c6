"""Keeping a service's record in step the same way in every target.

The targets start a server, poll it until it is ready, and record the outcome alike:
a wait first looks at the live state, and a wait's outcome becomes ``Healthy`` or
``Failed`` (with the server stopped) in the same words. How a server is started,
polled and stopped stays in each target and is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import DeploymentError

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = [
    "Outcome",
    "conclude_wait",
    "logs_hint",
    "settled",
    "uri",
]


class _HasWorkspace(Protocol):
    @property
    def workspace(self) -> Workspace: ...


@dataclass
class Outcome:
    """How waiting for a starting server ended.

    ``ready`` when it answers; otherwise ``reason`` says why it failed, and ``None``
    means the deadline passed with no failure seen.

    Examples
    --------
    >>> Outcome(False).reason is None
    True
    """

    ready: bool
    reason: str | None = None


def uri(host: str, port: int, path: str) -> str:
    """The HTTP URL of ``path`` on ``host:port`` (IPv6 hosts in brackets).

    Examples
    --------
    >>> uri("::1", 8890, "/score")
    'http://[::1]:8890/score'
    """
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def logs_hint(name: str, what: str = "see the full output with") -> str:
    """A hint that names the calls that really show a service's log.

    Examples
    --------
    >>> logs_hint("iris")
    "see the full output with nbdeploy.get_service('iris').get_logs() (or %logs iris)"
    """
    return f"{what} nbdeploy.get_service({name!r}).get_logs() (or %logs {name})"


def settled(
    record: ServiceRecord,
    refresh: Callable[[ServiceRecord], ServiceRecord],
    show_output: bool,
) -> ServiceRecord | None:
    """The live record when the service is past ``Transitioning``; ``None`` while it
    still is (the caller then waits for its server).

    Raises
    ------
    DeploymentError
        The service is ``Failed`` (with its recorded reason).

    Examples
    --------
    >>> settled(record, target._refresh, show_output=False)  # doctest: +SKIP
    """
    if record.state is ServiceState.TRANSITIONING:
        return None
    record = refresh(record)
    if record.state is ServiceState.TRANSITIONING:
        return None
    if show_output:
        print(f"{record.name}: {record.state.value}", flush=True)
    if record.state is ServiceState.FAILED:
        raise DeploymentError(f"service {record.name!r} failed: {record.error}")
    return record


def conclude_wait(
    target: _HasWorkspace,
    record: ServiceRecord,
    outcome: Outcome,
    limit: float,
    show_output: bool,
    stop: Callable[[], object],
) -> ServiceRecord:
    """Store the end of a wait: ``Healthy``, or ``stop()`` the server and ``Failed``.

    Raises
    ------
    DeploymentError
        The server failed or did not become healthy within ``limit`` seconds.

    Examples
    --------
    >>> conclude_wait(target, record, Outcome(True), 60.0, False, lambda: None)  # doctest: +SKIP
    """
    name = record.name
    store = target.workspace.services
    if outcome.ready:
        record = store.put(record.with_state(ServiceState.HEALTHY))
        if show_output:
            print(f"{name}: {record.state.value} at {record.scoring_uri}", flush=True)
        return record
    reason = outcome.reason or (
        f"the service did not become healthy within {limit:g} s (see its logs)"
    )
    stop()
    record = store.put(record.with_state(ServiceState.FAILED, reason))
    if show_output:
        print(f"{name}: {record.state.value}: {reason}", flush=True)
    raise DeploymentError(
        f"service {name!r} failed to start: {reason}",
        hint=logs_hint(name),
    )
