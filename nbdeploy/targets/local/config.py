"""The deployment configuration of the local target."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nbdeploy.core.auth import CorsPolicy
from nbdeploy.core.services import ServiceRecord
from nbdeploy.core.serving import (
    MAX_REPLICAS,
    SERVING_SETTINGS,
    check_serving_settings,
    usable_cores,
)
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.targets.config import TargetConfig, check_host, check_port

__all__ = ["LocalConfig"]


@dataclass(frozen=True)
class LocalConfig(TargetConfig):
    """Deployment configuration of the local target.

    Parameters
    ----------
    port:
        TCP port to bind; ``0`` picks a free one (kept across updates).
    host:
        Interface to bind: an IP address (``127.0.0.1`` by default — loopback only)
        or ``"localhost"``. Any other address must be given on purpose.
    warm_start:
        Fork the service from the pre-imported warm-start server (fast); ``False``
        starts a plain ``python -m nbdeploy.server`` process.
    timeout:
        Seconds to wait for the service to become ``Healthy``.
    auth_enabled, token_auth_enabled:
        Key auth or token auth for ``/score`` (not both; local services default to
        none). The server enforces them; see :mod:`nbdeploy.core.auth`.
    cors:
        Browser origins allowed to call the service: a
        :class:`~nbdeploy.core.auth.CorsPolicy`, a list of origins or a dict of its
        settings; ``None`` for no CORS.
    replicas:
        Server processes serving the one port (1 to 64), or ``"auto"`` for one per
        usable CPU core. They accept from one shared listening socket, so a replica
        that stops, crashes or is replaced never strands a queued connection.
    replica_max_concurrent_requests, max_request_wait_time, scoring_timeout_ms:
        Each replica's ``run()`` slots, queue wait (ms, then 503) and scoring timeout
        (ms, then 504), the reference's names; ``None`` keeps the server's defaults
        (1, 5000, 60000). They go into the bundle's settings: see
        :mod:`nbdeploy.core.serving`.

    Examples
    --------
    >>> LocalConfig(port=8890)  # doctest: +NORMALIZE_WHITESPACE
    LocalConfig(port=8890, host='127.0.0.1', warm_start=True, timeout=120.0,
                auth_enabled=False, token_auth_enabled=False)
    >>> LocalConfig.from_dict(LocalConfig(port=8890).to_dict()) == LocalConfig(port=8890)
    True
    >>> LocalConfig(port=70000)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid port 70000 for a local service
    Hint: use a port between 1 and 65535, or 0 to pick a free one
    """

    port: int = 0
    host: str = "127.0.0.1"
    warm_start: bool = True
    timeout: float = 120.0
    auth_enabled: bool = False
    token_auth_enabled: bool = False
    cors: CorsPolicy | None = field(default=None, repr=False)
    replicas: int | str = field(default=1, repr=False)
    replica_max_concurrent_requests: int | None = field(default=None, repr=False)
    max_request_wait_time: int | None = field(default=None, repr=False)
    scoring_timeout_ms: int | None = field(default=None, repr=False)

    target: ClassVar[str] = "local"
    label: ClassVar[str] = "local"
    coerce_hint: ClassVar[str] = "use LocalConfig(port=..., host=...)"

    def __post_init__(self) -> None:
        check_port(self.port, self.label)
        check_host(
            self.host, self.label, "use '127.0.0.1' (loopback), 'localhost' or an IP address"
        )
        if not isinstance(self.warm_start, bool):
            raise InvalidArgumentError(f"warm_start must be True or False, got {self.warm_start!r}")
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, (int, float))
            or not self.timeout > 0
        ):
            raise InvalidArgumentError(
                f"invalid timeout {self.timeout!r} for a local service",
                hint="give the seconds to wait for the service, e.g. 120",
            )
        self._set("timeout", float(self.timeout))
        if not isinstance(self.auth_enabled, bool) or not isinstance(self.token_auth_enabled, bool):
            raise InvalidArgumentError("auth_enabled and token_auth_enabled must be True or False")
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidArgumentError(
                "auth_enabled and token_auth_enabled cannot both be True",
                hint="choose key auth (auth_enabled) or token auth (token_auth_enabled)",
            )
        self._set("cors", CorsPolicy.from_value(self.cors))
        if self.replicas != "auto" and (
            isinstance(self.replicas, bool)
            or not isinstance(self.replicas, int)
            or not 1 <= self.replicas <= MAX_REPLICAS
        ):
            raise InvalidArgumentError(
                f"invalid replicas {self.replicas!r} for a local service",
                hint=f"give a number of server processes from 1 to {MAX_REPLICAS}, or "
                "'auto' for one per usable CPU core",
            )
        check_serving_settings(self)

    @classmethod
    def from_record(cls, record: ServiceRecord) -> LocalConfig:
        """The configuration a service record was deployed with (runtime keys such as
        ``process`` are left out)."""
        known = set(inspect.signature(cls).parameters)
        return cls.from_dict({k: v for k, v in record.config.items() if k in known})

    @property
    def replica_count(self) -> int:
        """How many server processes to run (``"auto"``: the usable CPU cores)."""
        if self.replicas == "auto":
            return usable_cores()
        return int(self.replicas)

    @property
    def bind_host(self) -> str:
        """The address the socket binds (``localhost`` is ``127.0.0.1``)."""
        return "127.0.0.1" if self.host == "localhost" else self.host

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with ``"target": "local"``); :meth:`from_dict` reverses it."""
        return {
            "target": self.target,
            "port": self.port,
            "host": self.host,
            "warm_start": self.warm_start,
            "timeout": self.timeout,
            "auth_enabled": self.auth_enabled,
            "token_auth_enabled": self.token_auth_enabled,
            "cors": None if self.cors is None else self.cors.to_dict(),
            "replicas": self.replicas,
            **{key: getattr(self, key) for key in SERVING_SETTINGS},
        }
