"""A service record's Serve application, as data: pure, no Ray import.

:func:`build` turns the configuration and the versions of a service into an
:class:`AppSpec` — the deployments, their options, constructor arguments and
*versions* — which :mod:`.session` hands to Serve. Layout:

- one version: a single deployment ``score`` (:class:`~.replica.ScoringReplica`),
  the application's ingress, on the route prefix;
- several versions: ``router`` (:class:`~.replica.TrafficRouter`) is the ingress and
  each version is a deployment ``version-<name>`` (:class:`~.replica.ScoringBackend`).

Each deployment's version string is a hash of what needs new replicas (the bundle,
the runtime environment, the class); everything else — replica counts, autoscaling,
``user_config`` (keys, weights) — Serve changes in place. So an update (new bundle)
is a rolling replacement with surge (new replicas start before old ones stop:
``max_surge_percent``), while scaling, new keys and new weights restart nothing.

Examples
--------
>>> from nbdeploy.targets.ray.config import RayConfig
>>> app = build("iris", RayConfig(num_replicas=2), [Workload("/ws/bundles/iris/1")])
>>> [(d.name, d.kind, d.options["num_replicas"]) for d in app.deployments]
[('score', 'ingress', 2)]
>>> app.route_prefix
'/iris'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbdeploy.core.serving import drain_seconds

from .config import RayConfig

__all__ = ["ROUTER", "SCORE", "AppSpec", "DeploymentSpec", "Workload", "build", "version_name"]

#: The deployment of a single-version service, and the router of one with versions.
SCORE = "score"
ROUTER = "router"
#: New replicas of an update may start before old ones stop, up to this share.
MAX_SURGE_PERCENT = 100
#: Replica constructor failures in a row before Serve gives up (``Failed``): one, as a
#: local server that fails its ``init()`` is Failed at once.
CONSTRUCTOR_RETRIES = 1


def version_name(version: str) -> str:
    """The deployment of version ``version``.

    Examples
    --------
    >>> version_name("v2")
    'version-v2'
    """
    return f"version-{version}"


@dataclass(frozen=True)
class Workload:
    """One version of a service: its bundle, and its name when it has several.

    ``settings`` are the bundle's settings (limits decide how long an old replica
    may drain); ``generation`` the service generation it was deployed in.
    """

    bundle_path: str
    version: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def deployment(self) -> str:
        return SCORE if self.version is None else version_name(self.version)


@dataclass(frozen=True)
class DeploymentSpec:
    """One Serve deployment: ``kind`` is ``ingress`` (a single version's scoring
    replicas), ``backend`` (a version behind the router) or ``router``."""

    name: str
    kind: str
    init_kwargs: Mapping[str, Any]
    options: Mapping[str, Any]
    version: str


@dataclass(frozen=True)
class AppSpec:
    """A Serve application: its name, route prefix and deployments (ingress first)."""

    name: str
    route_prefix: str
    deployments: tuple[DeploymentSpec, ...]

    @property
    def ingress(self) -> DeploymentSpec:
        return self.deployments[0]

    def names(self) -> list[str]:
        """The deployments' names."""
        return [d.name for d in self.deployments]


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _runtime_env(cfg: RayConfig, bundle_path: str, env: Mapping[str, str]) -> dict[str, Any]:
    runtime: dict[str, Any] = dict(cfg.runtime_env or {})
    if env:
        runtime["env_vars"] = {**env, **dict(runtime.get("env_vars") or {})}
    if cfg.ships_bundle:
        runtime["working_dir"] = bundle_path
    return runtime


def _scaling(cfg: RayConfig) -> dict[str, Any]:
    autoscaling = cfg.autoscaling_config
    if autoscaling is not None:
        return {"autoscaling_config": autoscaling}
    return {"num_replicas": cfg.replica_range[0]}


def build(
    name: str,
    cfg: RayConfig,
    workloads: Sequence[Workload],
    *,
    auth: Mapping[str, Any] | None = None,
    weights: Mapping[str, int] | None = None,
    proxy_host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    max_request_bytes: int = 100 * 1024 * 1024,
) -> AppSpec:
    """The Serve application of service ``name`` (see the module docstring).

    Parameters
    ----------
    cfg:
        The service's configuration (replicas, reservations, runtime environment).
    workloads:
        Its versions: one without a name, or several named ones.
    auth:
        The service's auth file as a dict (every replica gets it; ``None``: no auth).
    weights:
        ``{version: percent}`` with several versions.
    proxy_host:
        The address the Serve proxy binds (decides which ``Host`` names are answered).
    env:
        Environment variables of the replicas (the embedded cluster restores the
        user's ``HOME`` this way).
    max_request_bytes:
        The router's body limit.
    """
    env = dict(env or {})
    specs: list[DeploymentSpec] = []
    several = len(workloads) > 1 or workloads[0].version is not None
    for work in workloads:
        runtime = _runtime_env(cfg, work.bundle_path, env)
        actor = {**cfg.actor_options, **({"runtime_env": runtime} if runtime else {})}
        options: dict[str, Any] = {
            **_scaling(cfg),
            "ray_actor_options": actor,
            "user_config": {"auth": dict(auth) if auth is not None else None},
            "max_surge_percent": MAX_SURGE_PERCENT,
            "max_constructor_retry_count": CONSTRUCTOR_RETRIES,
            "graceful_shutdown_timeout_s": drain_seconds(work.settings),
            "logging_config": {"enable_access_log": False},
        }
        if cfg.max_ongoing_requests is not None:
            options["max_ongoing_requests"] = cfg.max_ongoing_requests
        kind = "backend" if several else "ingress"
        init = {
            "bundle_dir": None if cfg.ships_bundle else work.bundle_path,
            "host": proxy_host,
            "auth": dict(auth) if auth is not None else None,
        }
        version = _digest(kind, work.bundle_path, actor, proxy_host)
        specs.append(DeploymentSpec(work.deployment, kind, init, options, version))
    if several:
        versions = [w.version for w in workloads]
        router_options = {
            "num_replicas": 1,
            "ray_actor_options": {"num_cpus": 0},
            "user_config": {"weights": dict(weights or {})},
            "logging_config": {"enable_access_log": False},
            "max_surge_percent": MAX_SURGE_PERCENT,
        }
        router = DeploymentSpec(
            ROUTER,
            "router",
            {"versions": versions, "max_request_bytes": max_request_bytes},
            router_options,
            _digest("router", versions, max_request_bytes),
        )
        specs.insert(0, router)
    return AppSpec(name, cfg.prefix_for(name), tuple(specs))
