"""The Ray target's deployment configuration: where the cluster is, how many replicas,
what each one reserves, and the service's access settings.

Pure data and validation: no Ray import. Every setting is checked when the
configuration is made, so a typo fails in the cell that made it, with a hint — not
later in a replica. What each setting becomes in Ray Serve is in ``README.md``
("Ray Serve").

Examples
--------
>>> cfg = RayConfig(num_replicas=2)
>>> cfg.replica_range, cfg.autoscaling_config
((2, 2), None)
>>> RayConfig(autoscaling={"max_replicas": 4}).replica_range
(1, 4)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from urllib.parse import urlparse

from nbdeploy.core.auth import CorsPolicy
from nbdeploy.core.serving import check_serving_settings
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.profiling import replicas_for
from nbdeploy.targets.config import TargetConfig, optional_positive, positive

__all__ = ["AUTOSCALING_KEYS", "PROXY_LOCATIONS", "RayConfig", "is_local_address"]

#: The autoscaling settings a configuration may give (Ray Serve's names).
AUTOSCALING_KEYS = (
    "min_replicas",
    "max_replicas",
    "initial_replicas",
    "target_ongoing_requests",
    "upscale_delay_s",
    "downscale_delay_s",
)
#: Where Serve runs its HTTP proxies when nbdeploy starts Serve on a cluster.
PROXY_LOCATIONS = ("HeadOnly", "EveryNode")
#: ``ray_actor_options`` keys a replica's reservation may use.
ACTOR_OPTION_KEYS = ("num_cpus", "num_gpus", "memory", "resources", "accelerator_type")
#: Replicas the autoscaler may reach when neither ``max_replicas`` nor a load to size
#: for is given.
DEFAULT_MAX_REPLICAS = 4
#: The share of a replica's capacity the sizing helper aims at (the reference's 70 %).
SIZING_UTILIZATION = 0.7

_ADDRESS = re.compile(r"^(auto|ray://[^/\s]+:\d+|[A-Za-z0-9._-]+:\d+|\[[0-9a-fA-F:]+\]:\d+)$")
_PREFIX = re.compile(r"^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$")
_LOOPBACK = ("127.", "localhost", "[::1]")


def is_local_address(address: str | None) -> bool:
    """Whether a cluster address is on this machine (``None`` — the embedded cluster —,
    ``auto`` or a loopback host): its replicas can read the workspace's files.

    Examples
    --------
    >>> is_local_address(None), is_local_address("127.0.0.1:6379")
    (True, True)
    >>> is_local_address("ray://10.0.0.5:10001")
    False
    """
    if address is None or address == "auto":
        return True
    host = address.removeprefix("ray://")
    return host.startswith(_LOOPBACK)


def _actor_options(value: Any) -> dict[str, Any]:
    """``ray_actor_options`` checked: known keys, non-negative sizes."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"ray_actor_options must be a dict, got {value!r}",
            hint="e.g. {'num_cpus': 1, 'memory': 2 * 1024**3, 'resources': {'model': 1}}",
        )
    options = dict(value)
    unknown = sorted(set(options) - set(ACTOR_OPTION_KEYS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown ray_actor_options key(s): {', '.join(map(str, unknown))}",
            hint=f"use {', '.join(ACTOR_OPTION_KEYS)}",
        )
    for key in ("num_cpus", "num_gpus"):
        if key in options:
            options[key] = positive(options[key], f"ray_actor_options[{key!r}]", zero=True)
    if "memory" in options:
        options["memory"] = positive(options["memory"], "ray_actor_options['memory'] (bytes)")
    resources = options.get("resources")
    if resources is not None:
        if not isinstance(resources, Mapping) or not all(isinstance(k, str) for k in resources):
            raise InvalidArgumentError(
                f"ray_actor_options['resources'] must map resource names to amounts, "
                f"got {resources!r}"
            )
        options["resources"] = {
            k: positive(v, f"resource {k!r}", zero=True) for k, v in resources.items()
        }
    if "accelerator_type" in options and not isinstance(options["accelerator_type"], str):
        raise InvalidArgumentError("ray_actor_options['accelerator_type'] must be a string")
    return options


def _autoscaling(value: Any) -> dict[str, Any] | None:
    """``autoscaling`` as a dict of Ray Serve's settings (``True``: the defaults)."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"autoscaling must be True or a dict, got {value!r}",
            hint="e.g. autoscaling={'min_replicas': 1, 'max_replicas': 4, "
            "'target_ongoing_requests': 2}",
        )
    settings = dict(value)
    unknown = sorted(set(settings) - set(AUTOSCALING_KEYS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown autoscaling setting(s): {', '.join(map(str, unknown))}",
            hint=f"use {', '.join(AUTOSCALING_KEYS)}",
        )
    for key in ("min_replicas", "initial_replicas"):
        if key in settings:
            settings[key] = positive(settings[key], key, integer=True, zero=True)
    if "max_replicas" in settings:
        settings["max_replicas"] = positive(settings["max_replicas"], "max_replicas", integer=True)
    if "target_ongoing_requests" in settings:
        settings["target_ongoing_requests"] = positive(
            settings["target_ongoing_requests"], "target_ongoing_requests"
        )
    for key in ("upscale_delay_s", "downscale_delay_s"):
        if key in settings:
            settings[key] = positive(settings[key], key, zero=True)
    return settings


@dataclass(frozen=True, repr=False)
class RayConfig(TargetConfig):
    """Deployment configuration of the Ray target (a Ray Serve application).

    Parameters
    ----------
    address:
        The cluster. ``None`` (default): the workspace's embedded cluster, started on
        first use on this machine (127.0.0.1 only) and kept running after the kernel
        stops. ``"auto"``, ``"host:6379"`` (a cluster this machine is a node of) or
        ``"ray://host:10001"`` (Ray Client): an existing cluster.
    num_replicas:
        A fixed number of replicas (not with ``autoscaling``).
    autoscaling:
        ``True`` or a dict of Ray Serve's autoscaling settings: ``min_replicas``
        (default 1), ``max_replicas`` (default: the sizing helper's figure for
        ``target_rps``/``request_seconds``, else 4), ``initial_replicas``,
        ``target_ongoing_requests`` (requests in flight per replica it aims at),
        ``upscale_delay_s``, ``downscale_delay_s``.
    ray_actor_options:
        What each replica reserves: ``num_cpus`` (default 0.1, the reference's
        ``cpu_cores``), ``num_gpus``, ``memory`` (bytes), custom ``resources``
        (``{"name": amount}``), ``accelerator_type``. A replica no node can hold is
        reported ``Unschedulable``, naming the resource.
    max_ongoing_requests:
        Requests Serve sends one replica at once (Serve's default 5); the rest wait in
        the proxy.
    route_prefix:
        Where the service lives on the Serve proxy (default ``/<service name>``).
    auth_enabled, token_auth_enabled:
        Key auth (the default) or token auth; both ``False`` serves without auth.
    cors:
        Browser origins allowed to call the service.
    replica_max_concurrent_requests, max_request_wait_time, scoring_timeout_ms:
        The scoring server's limits, per replica (``run()`` calls at once, ms a request
        may wait for one, ms ``run()`` may take); ``None`` keeps the current ones.
    host, port:
        The Serve HTTP proxy's address when nbdeploy starts Serve on the cluster
        (127.0.0.1; port 8000, or a free port for the embedded cluster when 8000 is
        taken). A cluster already running Serve keeps its own.
    proxy_location:
        ``"HeadOnly"`` (default: one proxy, no port clash between nodes on one
        machine) or ``"EveryNode"`` when nbdeploy starts Serve.
    public_url:
        Where clients reach the proxy, when it is not ``http://<host>:<port>`` (a load
        balancer, a port-forward); the scoring URI is ``<public_url><route_prefix>/score``.
    runtime_env:
        Ray's runtime environment for the replicas (``pip``, ``env_vars`` ...), e.g. to
        install nbdeploy and the model's packages on a remote cluster.
    ship_bundle:
        Send the bundle to the replicas with the runtime environment (``working_dir``)
        instead of reading it from the workspace; ``None``: only for clusters on
        another machine.
    target_rps, request_seconds:
        Size the autoscaler's ``max_replicas`` with the reference's formula
        (:func:`~nbdeploy.profiling.replicas_for`, 70 % utilization).
    timeout:
        Seconds to wait for the replicas to be ready.

    Examples
    --------
    >>> RayConfig(autoscaling=True, target_rps=100, request_seconds=0.05).replica_range
    (1, 8)
    >>> RayConfig(num_replicas=2, autoscaling=True)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: give num_replicas or autoscaling, not both
    Hint: num_replicas is a fixed count; autoscaling={...} lets Serve choose
    """

    address: str | None = None
    num_replicas: int | None = None
    autoscaling: Any = None
    ray_actor_options: Mapping[str, Any] = field(default_factory=dict)
    max_ongoing_requests: int | None = None
    route_prefix: str | None = None
    auth_enabled: bool = True
    token_auth_enabled: bool = False
    cors: Any = None
    replica_max_concurrent_requests: int | None = None
    max_request_wait_time: int | None = None
    scoring_timeout_ms: int | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    proxy_location: str = "HeadOnly"
    public_url: str | None = None
    runtime_env: Mapping[str, Any] | None = None
    ship_bundle: bool | None = None
    target_rps: float | None = None
    request_seconds: float | None = None
    timeout: float = 600.0

    target: ClassVar[str] = "ray"
    label: ClassVar[str] = "Ray"
    coerce_hint: ClassVar[str] = "use RayWebservice.deploy_configuration(...) or RayConfig(...)"

    def __post_init__(self) -> None:
        self._check_cluster()
        self._check_scaling()
        self._check_access()
        self._check_proxy()

    def _check_cluster(self) -> None:
        if self.address is not None and (
            not isinstance(self.address, str) or not _ADDRESS.match(self.address)
        ):
            raise InvalidArgumentError(
                f"invalid Ray cluster address {self.address!r}",
                hint="use None (the workspace's own cluster), 'auto', 'host:6379' or "
                "'ray://host:10001'",
            )
        if self.runtime_env is not None and not isinstance(self.runtime_env, Mapping):
            raise InvalidArgumentError(
                f"runtime_env must be a dict, got {self.runtime_env!r}",
                hint="e.g. {'pip': ['nbdeploy', 'scikit-learn']}",
            )
        if self.runtime_env is not None:
            self._set("runtime_env", dict(self.runtime_env))
        if self.ship_bundle is not None and not isinstance(self.ship_bundle, bool):
            raise InvalidArgumentError("ship_bundle must be True, False or None")
        self._set("timeout", positive(self.timeout, "timeout"))

    def _check_scaling(self) -> None:
        self._set(
            "num_replicas", optional_positive(self.num_replicas, "num_replicas", integer=True)
        )
        self._set("autoscaling", _autoscaling(self.autoscaling))
        if self.num_replicas is not None and self.autoscaling is not None:
            raise InvalidArgumentError(
                "give num_replicas or autoscaling, not both",
                hint="num_replicas is a fixed count; autoscaling={...} lets Serve choose",
            )
        self._set("ray_actor_options", _actor_options(self.ray_actor_options))
        self._set(
            "max_ongoing_requests",
            optional_positive(self.max_ongoing_requests, "max_ongoing_requests", integer=True),
        )
        self._set("target_rps", optional_positive(self.target_rps, "target_rps"))
        self._set("request_seconds", optional_positive(self.request_seconds, "request_seconds"))
        if (self.target_rps is None) != (self.request_seconds is None):
            raise InvalidArgumentError(
                "sizing needs both target_rps and request_seconds",
                hint="e.g. target_rps=20, request_seconds=0.05 (a profile's mean latency)",
            )
        if self.target_rps is not None and self.autoscaling is None:
            raise InvalidArgumentError(
                "target_rps and request_seconds size the autoscaler, which is off",
                hint="add autoscaling=True (or a dict of its settings), or give "
                "num_replicas instead",
            )
        low, high = self.replica_range
        if high < low:
            raise InvalidArgumentError(f"max_replicas={high} is below min_replicas={low}")

    def _check_access(self) -> None:
        for flag in ("auth_enabled", "token_auth_enabled"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidArgumentError(f"{flag} must be True or False")
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidArgumentError(
                "auth_enabled and token_auth_enabled cannot both be True",
                hint="choose key auth (auth_enabled=True) or token auth "
                "(auth_enabled=False, token_auth_enabled=True)",
            )
        self._set("cors", CorsPolicy.from_value(self.cors))
        check_serving_settings(self)

    def _check_proxy(self) -> None:
        prefix = self.route_prefix
        if prefix is not None and (
            not isinstance(prefix, str) or not _PREFIX.match(prefix) or prefix == "/"
        ):
            raise InvalidArgumentError(
                f"invalid route_prefix {prefix!r}",
                hint="a path such as '/iris' (letters, digits, '.', '_', '~', '-'; no "
                "trailing '/'); every service needs its own",
            )
        if not isinstance(self.host, str) or not self.host:
            raise InvalidArgumentError(f"invalid host {self.host!r}", hint="e.g. '127.0.0.1'")
        if self.port is not None and (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not self.port >= 1
            or self.port > 65535
        ):
            raise InvalidArgumentError(
                f"invalid port {self.port!r}", hint="the Serve proxy's port, 1-65535"
            )
        if self.proxy_location not in PROXY_LOCATIONS:
            raise InvalidArgumentError(
                f"invalid proxy_location {self.proxy_location!r}",
                hint=f"use one of {', '.join(PROXY_LOCATIONS)}",
            )
        if self.public_url is not None:
            parsed = urlparse(self.public_url) if isinstance(self.public_url, str) else None
            if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.netloc:
                raise InvalidArgumentError(
                    f"invalid public_url {self.public_url!r}",
                    hint="e.g. 'http://10.0.0.5:8000' or 'https://models.example.com'",
                )
            self._set("public_url", self.public_url.rstrip("/"))

    @property
    def embedded(self) -> bool:
        """Whether the service runs on the workspace's own cluster."""
        return self.address is None

    @property
    def ships_bundle(self) -> bool:
        """Whether the bundle travels with the runtime environment."""
        if self.ship_bundle is not None:
            return self.ship_bundle
        return not is_local_address(self.address)

    @property
    def sized_replicas(self) -> int | None:
        """Replicas for ``target_rps`` requests/s of ``request_seconds`` each (the
        reference's formula), ``None`` without a load to size for.

        Examples
        --------
        >>> RayConfig(autoscaling=True, target_rps=20, request_seconds=10).sized_replicas
        286
        """
        if self.target_rps is None or self.request_seconds is None:
            return None
        return replicas_for(
            self.target_rps,
            self.request_seconds,
            SIZING_UTILIZATION,
            self.replica_max_concurrent_requests or 1,
        )

    @property
    def replica_range(self) -> tuple[int, int]:
        """(fewest, most) replicas: equal without autoscaling."""
        if self.autoscaling is None:
            fixed = self.num_replicas or 1
            return fixed, fixed
        low = int(self.autoscaling.get("min_replicas", 1))
        high = self.autoscaling.get("max_replicas")
        if high is None:
            high = max(low, self.sized_replicas or DEFAULT_MAX_REPLICAS, 1)
        return low, int(high)

    @property
    def autoscaling_config(self) -> dict[str, Any] | None:
        """Ray Serve's ``autoscaling_config`` (``None`` for a fixed count)."""
        if self.autoscaling is None:
            return None
        if self.target_rps is not None and self.autoscaling is None:
            raise InvalidArgumentError(
                "target_rps and request_seconds size the autoscaler, which is off",
                hint="add autoscaling=True (or a dict of its settings), or give "
                "num_replicas instead",
            )
        low, high = self.replica_range
        return {**self.autoscaling, "min_replicas": low, "max_replicas": high}

    @property
    def actor_options(self) -> dict[str, Any]:
        """Ray's ``ray_actor_options`` of a replica (0.1 CPU unless given)."""
        return {"num_cpus": 0.1, **self.ray_actor_options}

    def prefix_for(self, service: str) -> str:
        """The route prefix of service ``service``.

        Examples
        --------
        >>> RayConfig().prefix_for("iris"), RayConfig(route_prefix="/m").prefix_for("iris")
        ('/iris', '/m')
        """
        return self.route_prefix or f"/{service}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with ``"target": "ray"``); :meth:`from_dict` reverses it.

        Examples
        --------
        >>> RayConfig.from_dict(RayConfig(num_replicas=2).to_dict()).num_replicas
        2
        """
        values: dict[str, Any] = {"target": self.target}
        for name in _names(self):
            value = getattr(self, name)
            if isinstance(value, CorsPolicy):
                value = value.to_dict()
            elif isinstance(value, Mapping):
                value = dict(value)
            values[name] = value
        return values

    @classmethod
    def from_record_config(cls, config: Mapping[str, Any]) -> RayConfig:
        """The configuration stored in a service record (other keys ignored)."""
        known = set(_names(cls))
        return cls(**{k: v for k, v in config.items() if k in known})

    def __repr__(self) -> str:
        """Only the settings that differ from the defaults."""
        default = RayConfig()
        shown = [
            f"{name}={getattr(self, name)!r}"
            for name in _names(self)
            if getattr(self, name) != getattr(default, name)
        ]
        return f"RayConfig({', '.join(shown)})"


def _names(config: Any) -> list[str]:
    return [f.name for f in fields(config)]
