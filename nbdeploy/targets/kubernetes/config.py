"""The Kubernetes target's deployment configuration: the reference's
``AksWebservice.deploy_configuration`` parameters, plus what a cluster needs.

Pure data and validation: no Kubernetes client, no Docker SDK. Every setting is
checked when the configuration is made, so a typo fails in the notebook cell that
made it, with a hint — not minutes later in a pod. :mod:`.manifests` turns a
configuration into objects; the table in ``README.md`` ("Kubernetes") says what each
setting becomes.

Examples
--------
>>> cfg = KubernetesConfig(cpu_cores=0.5, memory_gb=1, num_replicas=2)
>>> cfg.replicas, cfg.autoscaling
(2, False)
>>> KubernetesConfig(autoscale_max_replicas=4).replica_range
(1, 4)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from urllib.parse import urlparse

from nbdeploy.core.auth import CorsPolicy, mask_secret
from nbdeploy.core.serving import check_serving_settings
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.profiling import replicas_for
from nbdeploy.targets.config import TargetConfig, optional_positive, positive

__all__ = ["LOADERS", "SERVICE_TYPES", "KubernetesConfig"]

#: Service types a configuration may ask for.
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
#: Local clusters an image can be loaded into (``load_into="kind"``, ``"kind:dev"`` ...).
LOADERS = ("kind", "k3d", "minikube")
#: Default number of replicas the autoscaler may reach (the reference's default).
DEFAULT_MAX_REPLICAS = 10

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LOADER = re.compile(r"^(kind|k3d|minikube)(:[A-Za-z0-9][-A-Za-z0-9_.]*)?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$", re.IGNORECASE)

#: Settings that hold secrets: never shown, never stored in a service record.
SECRET_FIELDS = ("primary_key", "secondary_key")


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be True or False, got {value!r}")
    return value


def _text(value: Any, what: str, pattern: re.Pattern[str], hint: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidArgumentError(f"invalid {what} {value!r}", hint=hint)
    return value


def _string_map(value: Any, what: str, values: bool) -> dict[str, str]:
    """Labels (``values=True``: label values) or annotations, checked like the API."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{what} must be a dict of strings, got {value!r}")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _QUALIFIED.match(key):
            raise InvalidArgumentError(
                f"invalid {what[:-1]} key {key!r}",
                hint="use [prefix/]name: letters, digits, '-', '_', '.', at most 63 characters",
            )
        if not isinstance(item, str) or (values and not _LABEL_VALUE.match(item)):
            raise InvalidArgumentError(
                f"invalid {what[:-1]} value {item!r} for {key!r}",
                hint="label values are at most 63 letters, digits, '-', '_' or '.'"
                if values
                else "annotation values are strings",
            )
        result[key] = item
    return result


@dataclass(frozen=True, repr=False)
class KubernetesConfig(TargetConfig):
    """Deployment configuration of the Kubernetes target.

    The first group are the reference's ``AksWebservice.deploy_configuration``
    parameters, with its defaults; the rest is what a cluster needs.

    Parameters
    ----------
    cpu_cores, memory_gb:
        The container's requests (``0.1`` core, ``0.5`` GB by default).
    cpu_cores_limit, memory_gb_limit:
        Its limits; ``None`` = the requests (memory over the limit is an OOM kill,
        so it is never left unlimited).
    gpu_cores:
        GPUs per replica (``nvidia.com/gpu`` limit); ``None``: none.
    num_replicas:
        A fixed number of replicas (turns autoscaling off).
    autoscale_enabled:
        ``None``: on unless ``num_replicas`` is given (as in the reference).
    autoscale_min_replicas, autoscale_max_replicas:
        The range the autoscaler keeps the replicas in; the maximum defaults to 10,
        or to the sizing helper's figure when ``target_rps`` and
        ``request_seconds`` are given.
    autoscale_target_utilization:
        Percent (1-100, default 70) of a replica's CPU request the autoscaler aims at.
    autoscale_refresh_seconds:
        How often the autoscaler may add replicas (its scale-up period).
    auth_enabled, token_auth_enabled:
        Key auth (the default) or token auth; both ``False`` serves without auth.
    primary_key, secondary_key:
        Keys to use instead of random ones (never shown, never stored in the record).
    scoring_timeout_ms, replica_max_concurrent_requests, max_request_wait_time:
        The server's limits per replica (``run()`` time, ``run()`` calls at once, time
        a request may wait for one); they go into the image's ``bundle.json``.
    period_seconds, initial_delay_seconds, timeout_seconds, success_threshold, failure_threshold:
        The probes of ``GET /``. ``initial_delay_seconds`` (default 310 s, the
        reference's) is the time ``init()`` may take: it becomes the startup probe's
        budget, after which readiness and liveness take over.
    namespace:
        Where every object goes (it must exist).
    context, kubeconfig:
        The kubeconfig context and file (default: ``$KUBECONFIG`` / ``~/.kube/config``
        and its current context; inside a pod, the pod's service account).
    image:
        An image to run as it is (e.g. built by ``nbdeploy package --build`` and
        pushed); ``None`` builds one from the bundle with the Docker target's packaging.
    registry:
        Push the built image to ``<registry>/<image name>:<tag>`` (``docker login``
        first); the cluster pulls it from there.
    load_into:
        Load the built image into a local cluster instead: ``"kind"``, ``"kind:NAME"``,
        ``"k3d:NAME"``, ``"minikube"`` or ``"minikube:PROFILE"``.
    image_pull_secrets:
        Names of Secrets with registry credentials in the namespace.
    engine, base_image, offline:
        The Docker engine that builds the image, its base image and whether the build
        runs offline (see :class:`~nbdeploy.targets.docker.DockerConfig`).
    service_type:
        ``ClusterIP`` (default), ``NodePort`` or ``LoadBalancer``.
    ingress_host, ingress_class, ingress_tls_secret:
        With ``ingress_host``, an Ingress routes ``http(s)://<host>/`` to the service.
    public_url:
        Where clients outside the cluster reach the service (e.g.
        ``http://127.0.0.1:6789`` after ``kubectl port-forward svc/NAME 6789:80``); it
        becomes the scoring URI.
    port:
        Shorthand for ``public_url="http://127.0.0.1:<port>"``: the local port of
        ``kubectl port-forward svc/NAME <port>:80`` (what ``%deploy --port`` and the
        deploy widget's port mean for this target).
    labels, annotations:
        Added to every object (labels also to the pods).
    target_rps, request_seconds:
        Size the replicas with the reference's formula
        (:func:`~nbdeploy.profiling.replicas_for`).
    cors:
        Browser origins allowed to call the service.
    description, tags, properties:
        The reference's metadata; kept as annotations.
    timeout:
        Seconds to wait for a rollout (image build and push included).

    Examples
    --------
    >>> cfg = KubernetesConfig(target_rps=20, request_seconds=10)
    >>> cfg.replica_range   # the reference's example: 286 replicas at 70 % utilization
    (1, 286)
    >>> KubernetesConfig(num_replicas=2, autoscale_enabled=True)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: num_replicas contradicts autoscale_enabled=True
    Hint: give num_replicas for a fixed count, or autoscale_min/max_replicas for autoscaling
    """

    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    cpu_cores_limit: float | None = None
    memory_gb_limit: float | None = None
    gpu_cores: int | None = None
    num_replicas: int | None = None
    autoscale_enabled: bool | None = None
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int | None = None
    autoscale_target_utilization: int = 70
    autoscale_refresh_seconds: int = 1
    auth_enabled: bool = True
    token_auth_enabled: bool = False
    primary_key: str | None = None
    secondary_key: str | None = None
    scoring_timeout_ms: int = 60000
    replica_max_concurrent_requests: int = 1
    max_request_wait_time: int = 500
    period_seconds: int = 10
    initial_delay_seconds: int = 310
    timeout_seconds: int = 2
    success_threshold: int = 1
    failure_threshold: int = 3
    namespace: str = "default"
    context: str | None = None
    kubeconfig: str | None = None
    image: str | None = None
    registry: str | None = None
    load_into: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    engine: str | None = None
    base_image: str | None = None
    offline: bool = True
    service_type: str = "ClusterIP"
    ingress_host: str | None = None
    ingress_class: str | None = None
    ingress_tls_secret: str | None = None
    public_url: str | None = None
    port: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    target_rps: float | None = None
    request_seconds: float | None = None
    cors: Any = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 900.0

    target: ClassVar[str] = "kubernetes"
    label: ClassVar[str] = "Kubernetes"
    coerce_hint: ClassVar[str] = (
        "use AksWebservice.deploy_configuration(...) or KubernetesConfig(...)"
    )

    def __post_init__(self) -> None:
        self._check_sizes()
        self._check_scaling()
        self._check_access()
        self._check_probes()
        self._check_placement()
        self._check_exposure()

    def _check_sizes(self) -> None:
        self._set("cpu_cores", positive(self.cpu_cores, "cpu_cores"))
        self._set("memory_gb", positive(self.memory_gb, "memory_gb"))
        self._set("cpu_cores_limit", optional_positive(self.cpu_cores_limit, "cpu_cores_limit"))
        self._set("memory_gb_limit", optional_positive(self.memory_gb_limit, "memory_gb_limit"))
        self._set("gpu_cores", optional_positive(self.gpu_cores, "gpu_cores", integer=True))
        for limit, request in (("cpu_cores_limit", "cpu_cores"), ("memory_gb_limit", "memory_gb")):
            if getattr(self, limit) is not None and getattr(self, limit) < getattr(self, request):
                raise InvalidArgumentError(
                    f"{limit}={getattr(self, limit):g} is below "
                    f"{request}={getattr(self, request):g}",
                    hint=f"a limit must be at least the request; leave {limit}=None to use "
                    "the request",
                )
        check_serving_settings(self)  # the server's own limits
        self._set("timeout", positive(self.timeout, "timeout"))

    def _check_scaling(self) -> None:
        self._set(
            "num_replicas", optional_positive(self.num_replicas, "num_replicas", integer=True)
        )
        if self.autoscale_enabled is not None:
            _flag(self.autoscale_enabled, "autoscale_enabled")
        if self.num_replicas is not None and self.autoscale_enabled:
            raise InvalidArgumentError(
                "num_replicas contradicts autoscale_enabled=True",
                hint="give num_replicas for a fixed count, or autoscale_min/max_replicas "
                "for autoscaling",
            )
        low = positive(self.autoscale_min_replicas, "autoscale_min_replicas", integer=True)
        self._set("autoscale_min_replicas", low)
        high = optional_positive(
            self.autoscale_max_replicas, "autoscale_max_replicas", integer=True
        )
        self._set("autoscale_max_replicas", high)
        if high is not None and high < low:
            raise InvalidArgumentError(
                f"autoscale_max_replicas={high} is below autoscale_min_replicas={low}"
            )
        utilization = positive(
            self.autoscale_target_utilization, "autoscale_target_utilization", integer=True
        )
        if utilization > 100:
            raise InvalidArgumentError(
                f"autoscale_target_utilization is a percentage (1-100), got {utilization}",
                hint="write 70 % as 70",
            )
        self._set("autoscale_target_utilization", utilization)
        refresh = positive(
            self.autoscale_refresh_seconds, "autoscale_refresh_seconds", integer=True
        )
        if refresh > 1800:
            raise InvalidArgumentError(
                f"autoscale_refresh_seconds={refresh} is more than the 1800 s Kubernetes allows"
            )
        self._set("autoscale_refresh_seconds", refresh)
        self._set("target_rps", optional_positive(self.target_rps, "target_rps"))
        self._set("request_seconds", optional_positive(self.request_seconds, "request_seconds"))
        if (self.target_rps is None) != (self.request_seconds is None):
            raise InvalidArgumentError(
                "sizing needs both target_rps and request_seconds",
                hint="e.g. target_rps=20, request_seconds=0.05 (a profile's mean latency)",
            )

    def _check_access(self) -> None:
        for flag in ("auth_enabled", "token_auth_enabled", "offline"):
            _flag(getattr(self, flag), flag)
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidArgumentError(
                "auth_enabled and token_auth_enabled cannot both be True",
                hint="choose key auth (auth_enabled=True) or token auth "
                "(auth_enabled=False, token_auth_enabled=True)",
            )
        for key in SECRET_FIELDS:
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or len(value) < 16):
                raise InvalidArgumentError(
                    f"{key} must be a string of at least 16 characters",
                    hint="or leave it None for a random key",
                )
        if (self.primary_key or self.secondary_key) and not self.auth_enabled:
            raise InvalidArgumentError(
                "primary_key/secondary_key need key auth (auth_enabled=True)"
            )
        self._set("cors", CorsPolicy.from_value(self.cors))

    def _check_probes(self) -> None:
        for what in ("period_seconds", "timeout_seconds", "success_threshold", "failure_threshold"):
            self._set(what, positive(getattr(self, what), what, integer=True))
        self._set(
            "initial_delay_seconds",
            positive(self.initial_delay_seconds, "initial_delay_seconds", integer=True, zero=True),
        )

    def _check_placement(self) -> None:
        if not isinstance(self.namespace, str) or not _DNS_LABEL.match(self.namespace):
            raise InvalidArgumentError(
                f"invalid namespace {self.namespace!r}",
                hint="lower-case letters, digits and '-', at most 63 characters",
            )
        for what in ("context", "kubeconfig", "engine", "base_image", "description"):
            value = getattr(self, what)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidArgumentError(f"invalid {what} {value!r}")
        image_hint = "name an image such as 'registry.example.com/team/iris:1'"
        _text(self.image, "image", _IMAGE, image_hint)
        _text(self.registry, "registry", _IMAGE, "e.g. 'registry.example.com/team' (no scheme)")
        _text(
            self.load_into,
            "load_into",
            _LOADER,
            "use 'kind', 'kind:<cluster>', 'k3d:<cluster>', 'minikube' or 'minikube:<profile>'",
        )
        if self.image is not None and (self.registry or self.load_into):
            raise InvalidArgumentError(
                "image= names an existing image; registry= and load_into= are for the "
                "image nbdeploy builds",
                hint="drop one of them",
            )
        if self.registry and self.load_into:
            raise InvalidArgumentError("give registry= or load_into=, not both")
        secrets: Any = self.image_pull_secrets
        if isinstance(secrets, str) or not all(
            isinstance(s, str) and _DNS_LABEL.match(s) for s in secrets
        ):
            raise InvalidArgumentError(
                f"image_pull_secrets must be a list of Secret names, got {secrets!r}"
            )
        self._set("image_pull_secrets", tuple(secrets))

    def _check_exposure(self) -> None:
        if self.service_type not in SERVICE_TYPES:
            raise InvalidArgumentError(
                f"invalid service_type {self.service_type!r}",
                hint=f"use one of {', '.join(SERVICE_TYPES)}",
            )
        host_hint = "a DNS name such as 'iris.example.com'"
        _text(self.ingress_host, "ingress_host", re.compile(r"^[a-z0-9][-a-z0-9.]*$"), host_hint)
        _text(self.ingress_class, "ingress_class", _DNS_LABEL, "the IngressClass's name")
        _text(self.ingress_tls_secret, "ingress_tls_secret", _DNS_LABEL, "a TLS Secret's name")
        if self.ingress_tls_secret and not self.ingress_host:
            raise InvalidArgumentError("ingress_tls_secret needs ingress_host")
        if self.port is not None:
            if (
                isinstance(self.port, bool)
                or not isinstance(self.port, int)
                or not (1 <= self.port <= 65535)
            ):
                raise InvalidArgumentError(
                    f"invalid port {self.port!r}",
                    hint="the local port of kubectl port-forward, between 1 and 65535",
                )
            if self.public_url is None:
                self._set("public_url", f"http://127.0.0.1:{self.port}")
        if self.public_url is not None:
            parsed = urlparse(self.public_url) if isinstance(self.public_url, str) else None
            if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.netloc:
                raise InvalidArgumentError(
                    f"invalid public_url {self.public_url!r}",
                    hint="e.g. 'http://127.0.0.1:6789' (kubectl port-forward) or "
                    "'https://iris.example.com'",
                )
            self._set("public_url", self.public_url.rstrip("/"))
        self._set("labels", _string_map(self.labels, "labels", values=True))
        self._set("annotations", _string_map(self.annotations, "annotations", values=False))
        self._set("tags", _string_map(self.tags, "tags", values=False))
        self._set("properties", _string_map(self.properties, "properties", values=False))

    @property
    def autoscaling(self) -> bool:
        """Whether a HorizontalPodAutoscaler manages the replicas."""
        if self.autoscale_enabled is None:
            return self.num_replicas is None
        return self.autoscale_enabled

    @property
    def sized_replicas(self) -> int | None:
        """Replicas for ``target_rps`` requests/s of ``request_seconds`` each at the
        target utilization, with ``replica_max_concurrent_requests`` per replica —
        the reference's formula; ``None`` without a load to size for.

        Examples
        --------
        >>> KubernetesConfig(target_rps=100, request_seconds=0.02).sized_replicas
        3
        """
        if self.target_rps is None or self.request_seconds is None:
            return None
        return replicas_for(
            self.target_rps,
            self.request_seconds,
            self.autoscale_target_utilization / 100,
            self.replica_max_concurrent_requests,
        )

    @property
    def replica_range(self) -> tuple[int, int]:
        """(fewest, most) replicas: equal without autoscaling."""
        if not self.autoscaling:
            fixed = self.num_replicas or self.sized_replicas or 1
            return fixed, fixed
        low = self.autoscale_min_replicas
        high = self.autoscale_max_replicas or max(low, self.sized_replicas or DEFAULT_MAX_REPLICAS)
        return low, max(low, high)

    @property
    def replicas(self) -> int:
        """The replicas a rollout waits for (the autoscaler's minimum when autoscaling)."""
        return self.replica_range[0]

    @property
    def cpu_limit(self) -> float:
        return self.cpu_cores_limit if self.cpu_cores_limit is not None else self.cpu_cores

    @property
    def memory_limit(self) -> float:
        return self.memory_gb_limit if self.memory_gb_limit is not None else self.memory_gb

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with ``"target": "kubernetes"``), without the keys;
        :meth:`from_dict` reverses it.

        Examples
        --------
        >>> d = KubernetesConfig(primary_key="p" * 20).to_dict()
        >>> "primary_key" in d, d["target"]
        (False, 'kubernetes')
        """
        values: dict[str, Any] = {"target": self.target}
        for name in _names(self):
            if name in SECRET_FIELDS:
                continue
            value = getattr(self, name)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, CorsPolicy):
                value = value.to_dict()
            values[name] = value
        return values

    @classmethod
    def from_record_config(cls, config: Mapping[str, Any]) -> KubernetesConfig:
        """The configuration stored in a service record (other keys ignored)."""
        known = set(_names(cls)) - set(SECRET_FIELDS)
        values = {k: v for k, v in config.items() if k in known}
        if isinstance(values.get("image_pull_secrets"), list):
            values["image_pull_secrets"] = tuple(values["image_pull_secrets"])
        return cls(**values)

    def __repr__(self) -> str:
        """Only the settings that differ from the defaults; keys masked."""
        default = KubernetesConfig()
        shown = []
        for name in _names(self):
            value = getattr(self, name)
            if value == getattr(default, name):
                continue
            if name in SECRET_FIELDS and isinstance(value, str):
                value = mask_secret(value)
            shown.append(f"{name}={value!r}")
        return f"KubernetesConfig({', '.join(shown)})"


def _names(config: Any) -> list[str]:
    """The settings of a configuration (its dataclass fields, not its class constants)."""
    return [f.name for f in fields(config)]


#: The reference's parameters with no meaning outside Azure, and what to use instead.
_CLOUD_ONLY = {
    "collect_model_data": "log inputs in run() and read them with service.get_logs()",
    "enable_app_insights": "read service.get_logs(), or scrape the pods' logs with your "
    "cluster's log collector",
    "blobfuse_enabled": "mount storage with a volume of your own (kubectl patch), or put "
    "the files into the model",
}


def from_reference(**settings: Any) -> KubernetesConfig:
    """A configuration from ``AksWebservice.deploy_configuration``'s parameters.

    ``None`` means the default; ``compute_target_name`` (the AKS cluster in the
    reference) names the kubeconfig context; Azure-only features asked for
    (``enable_app_insights=True`` ...) fail with what to use instead.

    Examples
    --------
    >>> from_reference(cpu_cores=1, memory_gb=1, compute_target_name="kind-dev").context
    'kind-dev'
    >>> from_reference(enable_app_insights=True)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: enable_app_insights=True needs Azure App Insights
    Hint: read service.get_logs(), or scrape the pods' logs with your cluster's log collector
    """
    values = {k: v for k, v in settings.items() if v is not None}
    for name, instead in _CLOUD_ONLY.items():
        if values.pop(name, False):
            service = "App Insights" if name == "enable_app_insights" else "storage"
            raise InvalidArgumentError(f"{name}=True needs Azure {service}", hint=instead)
    if "compute_target_name" in values:
        values.setdefault("context", values.pop("compute_target_name"))
    for name in ("tags", "properties"):
        if name in values:
            values[name] = {str(k): str(v) for k, v in dict(values[name]).items()}
    return KubernetesConfig(**values)
