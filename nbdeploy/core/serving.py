"""How much one server process (a replica) takes on at once, and for how long.

The three settings keep the reference's names (Azure ML's
``AksWebservice.deploy_configuration``) and live in the bundle's ``settings``, so the
scoring server enforces them the same way on every target:

``replica_max_concurrent_requests`` (default 1)
    How many ``run()`` calls one replica makes at once. 1 keeps the contract that
    ``init()`` and ``run()`` share one thread (scripts are rarely thread-safe); a
    larger number runs ``run()`` on that many threads (useful for models that release
    the GIL), so the script must then be thread-safe.
``max_request_wait_time`` (milliseconds, default 5000)
    How long a request may wait for one of those slots; then it gets ``503`` with a
    message saying the replica is busy. (The reference's default is 500 ms behind a
    load balancer; a local service on a shared machine gets more slack.)
``scoring_timeout_ms`` (milliseconds, default 60000, the reference's)
    How long a request waits for ``run()``; then it gets ``504``. Python cannot stop
    a running function: ``run()`` goes on in its thread and keeps its slot until it
    returns, so later requests see the replica as busy rather than pile up.

Targets size replicas with :func:`usable_cores` and give a stopping server
:func:`drain_seconds` to finish what it accepted.

This module imports only the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError

__all__ = [
    "DEFAULTS",
    "MAX_REPLICAS",
    "SERVING_SETTINGS",
    "check_serving_settings",
    "drain_seconds",
    "serving_settings",
    "usable_cores",
]

#: The settings' names, as the reference spells them.
SERVING_SETTINGS: tuple[str, ...] = (
    "replica_max_concurrent_requests",
    "max_request_wait_time",
    "scoring_timeout_ms",
)
#: Their defaults.
DEFAULTS: Mapping[str, int] = {
    "replica_max_concurrent_requests": 1,
    "max_request_wait_time": 5000,
    "scoring_timeout_ms": 60000,
}
_LIMITS: Mapping[str, tuple[int, int]] = {
    "replica_max_concurrent_requests": (1, 1000),
    "max_request_wait_time": (0, 3_600_000),
    "scoring_timeout_ms": (1, 3_600_000),
}
#: The most server processes one local service may run.
MAX_REPLICAS = 64


def check_serving_settings(values: Any) -> None:
    """Refuse bad values of :data:`SERVING_SETTINGS` on ``values`` (an object with
    those attributes; ``None`` means "the default").

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> check_serving_settings(SimpleNamespace(replica_max_concurrent_requests=0,
    ...     max_request_wait_time=None, scoring_timeout_ms=None))
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid replica_max_concurrent_requests 0
    Hint: give a whole number from 1 to 1000
    """
    for name in SERVING_SETTINGS:
        value = getattr(values, name)
        low, high = _LIMITS[name]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            unit = "" if name == "replica_max_concurrent_requests" else " (milliseconds)"
            raise InvalidArgumentError(
                f"invalid {name} {value!r}",
                hint=f"give a whole number from {low} to {high}{unit}",
            )


def serving_settings(config: Any, current: Mapping[str, Any] | None = None) -> dict[str, int]:
    """The serving settings a bundle gets: those ``config`` sets (not ``None``), else
    those of the running bundle's ``current`` settings (an update keeps them).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> serving_settings(SimpleNamespace(scoring_timeout_ms=2000), {"max_request_wait_time": 9})
    {'max_request_wait_time': 9, 'scoring_timeout_ms': 2000}
    """
    values: dict[str, int] = {}
    for name in SERVING_SETTINGS:
        value = getattr(config, name, None)
        if value is None and current is not None:
            value = current.get(name)
        if value is not None:
            values[name] = int(value)
    return values


def drain_seconds(settings: Mapping[str, Any] | None) -> float:
    """Seconds a stopping server needs at most to answer what it accepted: a request
    waits up to ``max_request_wait_time`` for a slot and ``run()`` up to
    ``scoring_timeout_ms``, plus a few seconds to send the answers.

    Examples
    --------
    >>> drain_seconds({"max_request_wait_time": 1000, "scoring_timeout_ms": 4000})
    10.0
    """
    given = settings or {}
    wait = int(given.get("max_request_wait_time") or DEFAULTS["max_request_wait_time"])
    timeout = int(given.get("scoring_timeout_ms") or DEFAULTS["scoring_timeout_ms"])
    return (wait + timeout) / 1000 + 5.0


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity; ``replicas="auto"``).

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - no affinity on this platform
        return max(1, os.cpu_count() or 1)
