"""Mechanics the process-based targets share (local processes, Docker containers).

Both targets start a server, poll it until it is ready, and keep the workspace's
record in step the same way: a redeploy is refused while the old service lives, a
wait first looks at the live state, and a wait's outcome becomes ``Healthy`` or
``Failed`` (with the server stopped) in the same words. The parts that differ — how
a server is started, polled and stopped — stay in each target and are passed in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    ServiceExistsError,
    ServiceNotFoundError,
)

if TYPE_CHECKING:
    from .base import Target

__all__ = [
    "Outcome",
    "TargetConfig",
    "conclude_wait",
    "existing_for_redeploy",
    "logs_hint",
    "settled",
    "uri",
]

C = TypeVar("C", bound="TargetConfig")


class TargetConfig:
    """What the targets' deployment configurations share: dict and mapping input.

    Subclasses are frozen dataclasses naming their ``target``, a ``label`` for
    messages and a ``coerce_hint`` saying how to make one.
    """

    target: ClassVar[str]
    label: ClassVar[str]
    coerce_hint: ClassVar[str]

    def __init__(self, **values: Any) -> None:  # replaced by each dataclass's own
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build a config from its ``to_dict()`` output (unknown keys are an error)."""
        values = dict(data)
        given = values.pop("target", cls.target)
        if given != cls.target:
            raise InvalidArgumentError(
                f"configuration for target {given!r} given to the {cls.target} target"
            )
        known = set(inspect.signature(cls).parameters)
        unknown = set(values) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown {cls.label} deployment setting(s): {', '.join(sorted(unknown))}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        return cls(**values)

    @classmethod
    def coerce(cls: type[C], config: Any) -> C:
        """``config`` as this configuration (from ``None``, a mapping or itself)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        raise InvalidArgumentError(
            f"expected a {cls.__name__} for the {cls.target} target, got {type(config).__name__}",
            hint=cls.coerce_hint,
        )


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


def existing_for_redeploy(
    target: Target,
    name: str,
    refresh: Callable[[ServiceRecord], ServiceRecord],
    kind: str,
) -> ServiceRecord | None:
    """The stored record of service ``name`` a deploy may replace (``None`` if none).

    Raises
    ------
    ServiceExistsError
        The name belongs to another target's service, or to a live (not ``Failed``)
        service of ``target`` (``kind`` names it in the message, e.g. ``"Docker"``).

    Examples
    --------
    >>> existing_for_redeploy(target, "diabetes", target._refresh, "local")  # doctest: +SKIP
    """
    try:
        existing: ServiceRecord | None = target.workspace.services.get(name)
    except ServiceNotFoundError:
        existing = None
    if existing is not None:
        if existing.target != target.name:
            raise ServiceExistsError(
                f"service {name!r} already runs on target {existing.target!r}",
                hint="delete it first, or pick another name",
            )
        if refresh(existing).state is not ServiceState.FAILED:
            raise ServiceExistsError(
                f"{kind} service {name!r} already exists and is running",
                hint="update it with update(), or delete it first",
            )
    return existing


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
    target: Target,
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
