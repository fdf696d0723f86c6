"""The Kubernetes objects of a service, as plain dicts: pure functions, no client.

Given a :class:`~.config.KubernetesConfig` and the facts of what runs (the image,
the service's generation, its versions and their weights), :func:`build` returns
every object, in the order they are applied:

- ``Secret <svc>-auth``: the service's auth file (keys, token secret), mounted as a
  folder at ``/var/run/nbdeploy/auth`` (a folder, not ``subPath``, so a rotated key
  reaches running pods); never in an exported file.
- ``Deployment``: the scoring server, non-root with a read-only root filesystem (an
  ``emptyDir`` at ``/tmp`` is the only writable place), no capabilities, no privilege
  escalation, seccomp ``RuntimeDefault``, no service-account token; a startup probe
  gives ``init()`` its time, then readiness and liveness probe ``GET /``; rolling
  updates never take a ready replica away (``maxUnavailable: 0``).
- ``HorizontalPodAutoscaler`` (``autoscaling/v2``) when autoscaling; a
  ``PodDisruptionBudget`` when more than one replica is always wanted.
- ``Service <svc>`` (port 80 → the server's 5001) and, with ``ingress_host``, an
  ``Ingress``.
- With several versions (traffic split): one Deployment and one Service per version,
  a ``ConfigMap <svc>-routes`` holding the weights, and ``Deployment <svc>-router``
  running nbdeploy's router (:mod:`nbdeploy.targets.process.router`), which picks a version
  per request by weight; ``Service <svc>`` then selects the router's pods.

Every object carries the ``app.kubernetes.io/*`` labels, so
``app.kubernetes.io/instance=<svc>,app.kubernetes.io/managed-by=nbdeploy`` finds all
of a service's objects (that is how it is deleted).

:class:`Manifests` renders them as YAML ``kubectl apply -f`` accepts (a small emitter
here: no YAML library needed).

Examples
--------
>>> from nbdeploy.targets.kubernetes.config import KubernetesConfig
>>> objs = build(KubernetesConfig(num_replicas=2), [Workload("iris", "reg/iris:1")])
>>> [f"{o['kind']}/{o['metadata']['name']}" for o in objs]
['Deployment/iris', 'PodDisruptionBudget/iris', 'Service/iris']
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbdeploy.core.package import APP_BUNDLE, DEFAULT_PORT, USER_ID
from nbdeploy.core.serving import drain_seconds
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.targets.process.router import Route, Routes

from .config import KubernetesConfig

__all__ = [
    "AUTH_FILE",
    "SERVICE_PORT",
    "Manifests",
    "Workload",
    "build",
    "image_settings",
    "k8s_name",
    "selector",
    "to_yaml",
]

#: The port of ``Service <svc>`` (and of each version's Service).
SERVICE_PORT = 80
#: Where the Secret with the auth file is mounted, and the file the server reads.
AUTH_DIR = "/var/run/nbdeploy/auth"
AUTH_FILE = f"{AUTH_DIR}/auth.json"
AUTH_KEY = "auth.json"
#: Where the router's weights are mounted.
ROUTES_DIR = "/etc/nbdeploy/routes"
ROUTES_KEY = "routes.json"
#: Label and annotation prefix of nbdeploy's own keys.
PREFIX = "nbdeploy.io"
MANAGED_BY = "nbdeploy"

_NAME_LIMIT = 40  # leaves room for "-router", "-routes", "-auth" and a version


def k8s_name(name: str, limit: int = _NAME_LIMIT) -> str:
    """An object name (DNS-1035 label) for an nbdeploy name.

    Lower-case; ``_`` and ``.`` become ``-``; a name that had to change gets a short
    hash, so two nbdeploy names never share objects.

    Examples
    --------
    >>> k8s_name("iris"), k8s_name("Iris_v2")
    ('iris', 'iris-v2-edf167')
    """
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "svc"
    if not cleaned[0].isalpha():
        cleaned = f"s-{cleaned}"
    if cleaned == name and len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return f"{cleaned[: limit - 7].rstrip('-')}-{digest}"


def selector(service: str) -> dict[str, str]:
    """The labels every object of ``service`` carries (and that find them all)."""
    return {
        "app.kubernetes.io/instance": k8s_name(service),
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def label_selector(service: str) -> str:
    """:func:`selector` as a ``labelSelector`` query string.

    Examples
    --------
    >>> label_selector("iris")
    'app.kubernetes.io/instance=iris,app.kubernetes.io/managed-by=nbdeploy'
    """
    return ",".join(f"{k}={v}" for k, v in selector(service).items())


@dataclass(frozen=True)
class Workload:
    """One Deployment of scoring servers: a service, or one version of it.

    Parameters
    ----------
    service:
        The nbdeploy service name.
    image:
        The image to run.
    generation:
        The service generation this Deployment's pods belong to (a pod label, so the
        pods of the current rollout are told from the old ones).
    models:
        ``name:version`` of the models it serves (an annotation).
    version:
        The version's name when the service has several (``None`` otherwise).
    pull_policy:
        ``IfNotPresent``; ``Never`` for an image that only exists in the node's engine.
    deployment:
        The Deployment's name; default ``<svc>`` without a version, else
        ``<svc>-<version>`` (the first version keeps ``<svc>`` when others are added).

    Examples
    --------
    >>> Workload("iris", "reg/iris:1").deployment_name
    'iris'
    >>> Workload("iris", "reg/iris:2", version="v2").deployment_name
    'iris-v2'
    """

    service: str
    image: str
    generation: int = 1
    models: tuple[str, ...] = ()
    version: str | None = None
    pull_policy: str = "IfNotPresent"
    deployment: str | None = None

    @property
    def deployment_name(self) -> str:
        if self.deployment:
            return self.deployment
        base = k8s_name(self.service)
        return base if self.version is None else f"{base}-{k8s_name(self.version, 20)}"


def version_service_name(service: str, version: str) -> str:
    """The Service of one version (``<svc>-<version>``), which the router calls."""
    return f"{k8s_name(service)}-{k8s_name(version, 20)}"


def secret_name(service: str) -> str:
    return f"{k8s_name(service)}-auth"


def router_name(service: str) -> str:
    return f"{k8s_name(service)}-router"


def routes_name(service: str) -> str:
    return f"{k8s_name(service)}-routes"


def _quantity_cpu(cores: float) -> str:
    return f"{max(1, math.ceil(round(cores * 1000, 6)))}m"


def _quantity_memory(gb: float) -> str:
    return f"{max(1, math.ceil(round(gb * 1024, 6)))}Mi"


def _metadata(
    cfg: KubernetesConfig,
    name: str,
    service: str,
    component: str,
    extra_labels: Mapping[str, str] | None = None,
    extra_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    labels = {
        **cfg.labels,
        "app.kubernetes.io/name": k8s_name(service),
        **selector(service),
        "app.kubernetes.io/component": component,
        **(extra_labels or {}),
    }
    annotations = {
        **cfg.annotations,
        f"{PREFIX}/service": service,
        **(extra_annotations or {}),
    }
    return {
        "name": name,
        "namespace": cfg.namespace,
        "labels": labels,
        "annotations": annotations,
    }


def _reference_annotations(cfg: KubernetesConfig, w: Workload) -> dict[str, str]:
    """The reference's description, tags and properties, and the models served."""
    notes = {f"{PREFIX}/models": ",".join(w.models)} if w.models else {}
    if cfg.description:
        notes[f"{PREFIX}/description"] = cfg.description
    if cfg.tags:
        notes[f"{PREFIX}/tags"] = json.dumps(dict(cfg.tags), sort_keys=True)
    if cfg.properties:
        notes[f"{PREFIX}/properties"] = json.dumps(dict(cfg.properties), sort_keys=True)
    return notes


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _http_probe(cfg: KubernetesConfig, failures: int, successes: int = 1) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/", "port": "http"},
        "periodSeconds": cfg.period_seconds,
        "timeoutSeconds": cfg.timeout_seconds,
        "successThreshold": successes,
        "failureThreshold": failures,
    }


def startup_failures(cfg: KubernetesConfig) -> int:
    """Startup-probe failures allowed: ``init()`` gets ``initial_delay_seconds`` (at
    least one period per failure threshold).

    Examples
    --------
    >>> startup_failures(KubernetesConfig())   # 310 s at one probe every 10 s
    31
    """
    return max(cfg.failure_threshold, math.ceil(cfg.initial_delay_seconds / cfg.period_seconds))


def _resources(cfg: KubernetesConfig) -> dict[str, Any]:
    limits: dict[str, Any] = {
        "cpu": _quantity_cpu(cfg.cpu_limit),
        "memory": _quantity_memory(cfg.memory_limit),
    }
    if cfg.gpu_cores:
        limits["nvidia.com/gpu"] = cfg.gpu_cores
    return {
        "requests": {
            "cpu": _quantity_cpu(cfg.cpu_cores),
            "memory": _quantity_memory(cfg.memory_gb),
        },
        "limits": limits,
    }


def _server_container(cfg: KubernetesConfig, w: Workload, auth: bool) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if auth:
        mounts.append({"name": "auth", "mountPath": AUTH_DIR, "readOnly": True})
    return {
        "name": "server",
        "image": w.image,
        "imagePullPolicy": w.pull_policy,
        "command": [
            "python",
            "-m",
            "nbdeploy.server",
            APP_BUNDLE,
            "--host",
            "0.0.0.0",
            "--port",
            str(DEFAULT_PORT),
        ],
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": _resources(cfg),
        "securityContext": _container_security(),
        "startupProbe": _http_probe(cfg, startup_failures(cfg)),
        "readinessProbe": _http_probe(cfg, cfg.failure_threshold, cfg.success_threshold),
        "livenessProbe": _http_probe(cfg, cfg.failure_threshold),
        # Endpoints drop a terminating pod a moment after SIGTERM would reach it:
        # wait that moment out, so no request is sent to a server that stopped.
        "lifecycle": {
            "preStop": {"exec": {"command": ["python", "-c", "import time; time.sleep(5)"]}}
        },
        # The last log lines become the termination message: NBDEPLOY-INIT-FAILED
        # and tracebacks reach the pod's status (and the service's error).
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }


def _volumes(service: str, auth: bool) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if auth:
        volumes.append(
            {
                "name": "auth",
                "secret": {
                    "secretName": secret_name(service),
                    "defaultMode": 0o440,  # owner root, group fsGroup: the server's user
                    "items": [{"key": AUTH_KEY, "path": AUTH_KEY}],
                },
            }
        )
    return volumes


def _pod_labels(cfg: KubernetesConfig, w: Workload, component: str) -> dict[str, str]:
    return {
        **cfg.labels,
        "app.kubernetes.io/name": k8s_name(w.service),
        **selector(w.service),
        "app.kubernetes.io/component": component,
        f"{PREFIX}/deployment": w.deployment_name,
        f"{PREFIX}/generation": str(w.generation),
    }


def deployment_selector(w: Workload) -> dict[str, str]:
    """The (immutable) selector of a workload's Deployment."""
    return {
        "app.kubernetes.io/instance": k8s_name(w.service),
        f"{PREFIX}/deployment": w.deployment_name,
    }


def deployment(cfg: KubernetesConfig, w: Workload, *, auth: bool) -> dict[str, Any]:
    """The Deployment of scoring servers of workload ``w``."""
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": cfg.initial_delay_seconds + 300,
        "selector": {"matchLabels": deployment_selector(w)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": _pod_labels(cfg, w, "server")},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                # preStop's pause, then the server's own drain.
                "terminationGracePeriodSeconds": 5
                + math.ceil(drain_seconds(image_settings(cfg, None))),
                "securityContext": _pod_security(),
                "containers": [_server_container(cfg, w, auth)],
                "volumes": _volumes(w.service, auth),
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": deployment_selector(w)},
                    }
                ],
            },
        },
    }
    if cfg.image_pull_secrets:
        spec["template"]["spec"]["imagePullSecrets"] = [{"name": s} for s in cfg.image_pull_secrets]
    if not cfg.autoscaling:
        # With an autoscaler the field is left out, so re-applying never resets
        # the replicas the autoscaler chose.
        spec = {"replicas": cfg.replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            cfg,
            w.deployment_name,
            w.service,
            "server",
            {f"{PREFIX}/deployment": w.deployment_name},
            _reference_annotations(cfg, w),
        ),
        "spec": spec,
    }


def autoscaler(cfg: KubernetesConfig, w: Workload) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler of ``w`` (``None`` without autoscaling).

    It targets ``autoscale_target_utilization`` % of the CPU request (the metric
    every cluster has); scale-up may double the replicas every
    ``autoscale_refresh_seconds``, scale-down waits a minute, as in the reference.
    """
    if not cfg.autoscaling:
        return None
    low, high = cfg.replica_range
    period = cfg.autoscale_refresh_seconds
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(cfg, w.deployment_name, w.service, "server"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": w.deployment_name,
            },
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": cfg.autoscale_target_utilization,
                        },
                    },
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": period},
                        {"type": "Pods", "value": 4, "periodSeconds": period},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 60,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                },
            },
        },
    }


def disruption_budget(cfg: KubernetesConfig, w: Workload) -> dict[str, Any] | None:
    """A PodDisruptionBudget (one pod at a time) when more than one replica is
    always wanted; ``None`` otherwise (it would block draining the only pod's node)."""
    if cfg.replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(cfg, w.deployment_name, w.service, "server"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": deployment_selector(w)}},
    }


def service_object(
    cfg: KubernetesConfig,
    name: str,
    service: str,
    pod_selector: Mapping[str, str],
    *,
    component: str = "server",
    service_type: str = "ClusterIP",
) -> dict[str, Any]:
    """A Service on port 80 sending to the ``http`` port of the selected pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(cfg, name, service, component),
        "spec": {
            "type": service_type,
            "selector": dict(pod_selector),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def auth_secret(cfg: KubernetesConfig, service: str, auth_json: bytes) -> dict[str, Any]:
    """The Secret holding the service's auth file (applied, never exported)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(cfg, secret_name(service), service, "auth"),
        "data": {AUTH_KEY: base64.b64encode(auth_json).decode("ascii")},
    }


def ingress(cfg: KubernetesConfig, service: str) -> dict[str, Any] | None:
    """An Ingress for ``ingress_host`` (``None`` without one)."""
    if not cfg.ingress_host:
        return None
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": cfg.ingress_host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {"name": k8s_name(service), "port": {"name": "http"}}
                            },
                        }
                    ]
                },
            }
        ]
    }
    if cfg.ingress_class:
        spec = {"ingressClassName": cfg.ingress_class, **spec}
    if cfg.ingress_tls_secret:
        spec["tls"] = [{"hosts": [cfg.ingress_host], "secretName": cfg.ingress_tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(cfg, k8s_name(service), service, "server"),
        "spec": spec,
    }


def routes_for(service: str, weights: Mapping[str, int], generation: int) -> Routes:
    """The router's table: each version's Service and weight."""
    return Routes(
        generation,
        tuple(
            Route(version, version_service_name(service, version), SERVICE_PORT, int(weight))
            for version, weight in weights.items()
        ),
    )


def routes_config_map(cfg: KubernetesConfig, service: str, routes: Routes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(cfg, routes_name(service), service, "router"),
        "data": {ROUTES_KEY: json.dumps(routes.to_dict(), sort_keys=True)},
    }


def _router_container(image: str, pull_policy: str) -> dict[str, Any]:
    """The router pod's one container: ``python -m nbdeploy.targets.process.router``
    on the routes ConfigMap."""
    return {
        "name": "router",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": [
            "python",
            "-m",
            "nbdeploy.targets.process.router",
            "--routes",
            f"{ROUTES_DIR}/{ROUTES_KEY}",
            "--applied",
            "/tmp/routes.applied.json",
            "--host",
            "0.0.0.0",
            "--port",
            str(DEFAULT_PORT),
        ],
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": _container_security(),
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "routes", "mountPath": ROUTES_DIR, "readOnly": True},
        ],
    }


def router_deployment(
    cfg: KubernetesConfig, service: str, image: str, routes: Routes, pull_policy: str
) -> dict[str, Any]:
    """The router's Deployment. The weights' hash is a pod annotation: new weights
    roll the router out, so when the rollout is done every router pod uses them."""
    name = router_name(service)
    labels = {
        **cfg.labels,
        "app.kubernetes.io/name": k8s_name(service),
        **selector(service),
        "app.kubernetes.io/component": "router",
        f"{PREFIX}/deployment": name,
    }
    digest = hashlib.sha256(json.dumps(routes.to_dict(), sort_keys=True).encode()).hexdigest()
    container = _router_container(image, pull_policy)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(cfg, name, service, "router", {f"{PREFIX}/deployment": name}),
        "spec": {
            "replicas": 2 if cfg.replicas > 1 else 1,
            "revisionHistoryLimit": 5,
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": k8s_name(service),
                    f"{PREFIX}/deployment": name,
                }
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {f"{PREFIX}/routes-sha256": digest},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                        {"name": "routes", "configMap": {"name": routes_name(service)}},
                    ],
                    **(
                        {"imagePullSecrets": [{"name": s} for s in cfg.image_pull_secrets]}
                        if cfg.image_pull_secrets
                        else {}
                    ),
                },
            },
        },
    }


def image_settings(cfg: KubernetesConfig, auth_mode: str | None) -> dict[str, Any]:
    """Server settings written into the image's ``bundle.json``: auth as decided (the
    auth file being the mounted Secret) and the reference's serving limits.

    Examples
    --------
    >>> image_settings(KubernetesConfig(), "key")["auth_file"]
    '/var/run/nbdeploy/auth/auth.json'
    """
    settings: dict[str, Any] = {
        "auth_enabled": auth_mode == "key",
        "token_auth_enabled": auth_mode == "token",
        "auth_file": AUTH_FILE if auth_mode else None,
        "replica_max_concurrent_requests": cfg.replica_max_concurrent_requests,
        "max_request_wait_time": cfg.max_request_wait_time,
        "scoring_timeout_ms": cfg.scoring_timeout_ms,
    }
    if cfg.cors is not None:
        settings["cors"] = cfg.cors.to_dict()
    return settings


def _front_service(
    cfg: KubernetesConfig, service: str, first: Workload, *, routed: bool
) -> dict[str, Any]:
    """``Service <svc>``: it selects the router when versions split traffic, else the
    first workload's pods."""
    if routed:
        main_selector = {
            "app.kubernetes.io/instance": k8s_name(service),
            f"{PREFIX}/deployment": router_name(service),
        }
    else:
        main_selector = deployment_selector(first)
    return service_object(
        cfg,
        k8s_name(service),
        service,
        main_selector,
        component="router" if routed else "server",
        service_type=cfg.service_type,
    )


def build(
    cfg: KubernetesConfig,
    workloads: Sequence[Workload],
    *,
    auth_mode: str | None = None,
    auth_json: bytes | None = None,
    weights: Mapping[str, int] | None = None,
    routes_generation: int = 1,
    router_image: tuple[str, str] | None = None,
) -> Manifests:
    """Every object of a service, in apply order.

    Parameters
    ----------
    cfg:
        The service's configuration.
    workloads:
        Its first version, then any added versions (``Workload.version`` set).
    auth_mode:
        ``"key"``/``"token"`` mounts the auth Secret; ``None`` serves without auth.
    auth_json:
        The auth file's bytes: the Secret is included only when given (exports leave
        it out and say how to create it).
    weights:
        ``{version: percent}`` with several versions: version Services, the routes
        ConfigMap and the router; ``Service <svc>`` then selects the router.
    routes_generation:
        The routes' generation (bumped by each traffic change).
    router_image:
        ``(image, pull policy)`` of the router (default: the first workload's; it
        only needs nbdeploy, so it keeps the one it started with).

    Raises
    ------
    InvalidArgumentError
        No workload, or weights that do not name the versions.
    """
    if not workloads:
        raise InvalidArgumentError("a Kubernetes service needs at least one workload")
    service = workloads[0].service
    auth = auth_mode is not None
    objects: list[dict[str, Any]] = []
    if auth and auth_json is not None:
        objects.append(auth_secret(cfg, service, auth_json))
    routes: Routes | None = None
    if weights is not None:
        names = [w.version for w in workloads]
        if None in names or sorted(weights) != sorted(str(n) for n in names):
            raise InvalidArgumentError(
                f"weights {dict(weights)} do not name the versions {names}",
            )
        routes = routes_for(service, weights, routes_generation)
        objects.append(routes_config_map(cfg, service, routes))
    for w in workloads:
        objects.append(deployment(cfg, w, auth=auth))
        objects += [o for o in (autoscaler(cfg, w), disruption_budget(cfg, w)) if o is not None]
        if routes is not None and w.version is not None:
            objects.append(
                service_object(
                    cfg,
                    version_service_name(service, w.version),
                    service,
                    deployment_selector(w),
                )
            )
    if routes is not None:
        image, policy = router_image or (workloads[0].image, workloads[0].pull_policy)
        objects.append(router_deployment(cfg, service, image, routes, policy))
    objects.append(_front_service(cfg, service, workloads[0], routed=routes is not None))
    extra = ingress(cfg, service)
    if extra is not None:
        objects.append(extra)
    notes = _notes(cfg, service, auth and auth_json is None, workloads)
    return Manifests(objects, notes)


def _notes(
    cfg: KubernetesConfig, service: str, secret_left_out: bool, workloads: Sequence[Workload]
) -> tuple[str, ...]:
    notes = [
        f"Kubernetes objects of the nbdeploy service {service!r} (namespace {cfg.namespace}).",
        f"Apply: kubectl apply -f <this file or folder>; all objects carry "
        f"{label_selector(service)}.",
    ]
    if secret_left_out:
        notes += [
            f"The Secret {secret_name(service)} (key {AUTH_KEY}: the service's keys) is NOT",
            "included: keys never go into files. Create it before the pods can start:",
            f"  kubectl -n {cfg.namespace} create secret generic {secret_name(service)} \\",
            f"    --from-file={AUTH_KEY}=<the service's auth.json>",
            'An auth.json with new random keys: python -c "from nbdeploy.core.auth import '
            "ServiceAuth, write_auth_file; write_auth_file('auth.json', "
            f"ServiceAuth.generate('{service}', 'key'))\"",
        ]
    images = sorted({w.image for w in workloads})
    notes.append(f"Image(s): {', '.join(images)} — push them where the cluster can pull them.")
    return tuple(notes)


class Manifests(Sequence[dict[str, Any]]):
    """The objects of a service: a sequence of dicts that renders as YAML.

    ``str(m)`` / :meth:`to_yaml` is a multi-document YAML file (comments first, saying
    what is left out and how to apply it); :meth:`save` writes it.

    Examples
    --------
    >>> m = Manifests([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    >>> print(m.to_yaml(notes=False))
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: x
    <BLANKLINE>
    """

    def __init__(self, objects: Sequence[Mapping[str, Any]], notes: Sequence[str] = ()) -> None:
        self._objects = [dict(o) for o in objects]
        self.notes = tuple(notes)

    def __len__(self) -> int:
        return len(self._objects)

    def __getitem__(self, index: Any) -> Any:
        return self._objects[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._objects)

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        """The objects of ``kind`` (and ``name``)."""
        return [
            o
            for o in self._objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
        ]

    def to_yaml(self, *, notes: bool = True) -> str:
        """The objects as one YAML stream (``---`` between documents)."""
        head = "".join(f"# {line}\n" for line in self.notes) if notes else ""
        return head + "---\n".join(to_yaml(o) for o in self._objects)

    def save(self, path: str | Path) -> Path:
        """Write the YAML to ``path`` (a ``.yaml``/``.yml`` file), or into the folder
        ``path`` as ``<NN>-<kind>-<name>.yaml`` files plus ``README.md`` (the notes);
        ``kubectl apply -f`` takes either. Returns ``path``."""
        target = Path(path)
        if target.suffix in {".yaml", ".yml"}:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.to_yaml(), encoding="utf-8")
            return target
        target.mkdir(parents=True, exist_ok=True)
        for index, obj in enumerate(self._objects, 1):
            name = f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
            (target / name).write_text(to_yaml(obj), encoding="utf-8")
        readme = "# Kubernetes manifests\n\n" + "\n".join(self.notes) + "\n"
        (target / "README.md").write_text(readme, encoding="utf-8")
        return target

    def __str__(self) -> str:
        return self.to_yaml()

    def __repr__(self) -> str:
        names = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in self._objects)
        return f"Manifests({names})"


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML scalar


def _nested(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return _scalar(value)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _nested(item):
                lines.append(f"{pad}{_scalar(str(key))}:")
                lines += _block(item, indent + 2 if isinstance(item, Mapping) else indent)
            else:
                lines.append(f"{pad}{_scalar(str(key))}: {_inline(item)}")
        return lines
    for item in value:
        if _nested(item):
            sub = _block(item, indent + 2)
            sub[0] = f"{pad}- {sub[0][indent + 2 :]}"
            lines += sub
        else:
            lines.append(f"{pad}- {_inline(item)}")
    return lines


def to_yaml(obj: Mapping[str, Any]) -> str:
    """One object as a YAML document (block style, strings quoted when needed).

    Examples
    --------
    >>> print(to_yaml({"a": [1, {"b": "on", "c": []}], "d": {}}), end="")
    a:
    - 1
    - b: "on"
      c: []
    d: {}
    """
    return "\n".join(_block(obj, 0)) + "\n"
