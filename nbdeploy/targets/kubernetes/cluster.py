"""The one module that talks to a Kubernetes API server (the official ``kubernetes``
client, ``pip install "nbdeploy[kubernetes]"``).

:class:`Cluster` applies objects with **server-side apply** (field manager
``nbdeploy``, forced: nbdeploy owns the fields it sets; fields others set, such as
the replicas an autoscaler chose, stay theirs), reads them back, lists them by label,
reads pod logs and events, and deletes. Everything goes in and out as the API's JSON
(plain dicts), so the rest of the target never sees a client model class.

The API server comes from the usual places: an explicit kubeconfig file and context,
else ``$KUBECONFIG`` / ``~/.kube/config`` and its current context, else — inside a
pod — the pod's service account (in-cluster configuration).

Errors become nbdeploy exceptions with a hint: an unreachable server, a missing
kubeconfig or refused rights are :class:`~nbdeploy.exceptions.TargetUnavailableError`;
an object the server rejects is a :class:`~nbdeploy.exceptions.DeploymentError`
with the server's message.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbdeploy.exceptions import DeploymentError, NbdeployError, TargetUnavailableError

__all__ = ["FIELD_MANAGER", "KINDS", "Cluster", "kubernetes_module"]

#: The field manager of every apply.
FIELD_MANAGER = "nbdeploy"
#: Seconds to connect / to read an answer.
REQUEST_TIMEOUT = (10.0, 60.0)

#: kind -> (API class of the client, method suffix): the kinds nbdeploy manages.
KINDS: dict[str, tuple[str, str]] = {
    "Secret": ("CoreV1Api", "namespaced_secret"),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map"),
    "Service": ("CoreV1Api", "namespaced_service"),
    "Pod": ("CoreV1Api", "namespaced_pod"),
    "Event": ("CoreV1Api", "namespaced_event"),
    "Deployment": ("AppsV1Api", "namespaced_deployment"),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "namespaced_horizontal_pod_autoscaler"),
    "PodDisruptionBudget": ("PolicyV1Api", "namespaced_pod_disruption_budget"),
    "Ingress": ("NetworkingV1Api", "namespaced_ingress"),
}
#: The kinds a service's objects can have, in the order they are deleted.
OWNED_KINDS = (
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Service",
    "Deployment",
    "ConfigMap",
    "Secret",
)

_INSTALL_HINT = 'pip install "nbdeploy[kubernetes]"'


def kubernetes_module() -> Any:
    """The ``kubernetes`` package (imported on first use)."""
    try:
        return importlib.import_module("kubernetes")
    except ImportError:
        raise TargetUnavailableError(
            "the kubernetes target needs the Kubernetes Python client, which is not installed",
            hint=_INSTALL_HINT,
        ) from None


def _load_api_client(context: str | None, kubeconfig: str | None) -> Any:
    kubernetes = kubernetes_module()
    config = kubernetes.config
    explicit = kubeconfig is not None or context is not None
    default_file = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    try:
        if explicit or not in_cluster or Path(default_file.split(os.pathsep)[0]).is_file():
            # $KUBECONFIG is read now (the client reads it once, when imported).
            return config.new_client_from_config(
                config_file=kubeconfig or default_file, context=context, persist_config=False
            )
        configuration = kubernetes.client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return kubernetes.client.ApiClient(configuration)
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        where = kubeconfig or default_file
        raise TargetUnavailableError(
            f"no usable Kubernetes configuration ({where}"
            f"{f', context {context!r}' if context else ''}): {exc}",
            hint="check `kubectl config get-contexts`, or pass kubeconfig= / context= "
            "(inside a pod the service account is used)",
        ) from None


class Cluster:
    """A connection to one cluster's API server.

    Parameters
    ----------
    api_client:
        A ``kubernetes.client.ApiClient``; :meth:`connect` makes one from a
        kubeconfig context or the in-cluster configuration.

    Examples
    --------
    >>> with Cluster.connect(context="kind-dev") as cluster:       # doctest: +SKIP
    ...     cluster.get("Deployment", "default", "iris")["status"]["availableReplicas"]
    1
    """

    def __init__(self, api_client: Any) -> None:
        self._api_client = api_client
        self._apis: dict[str, Any] = {}

    @classmethod
    @contextmanager
    def connect(
        cls, context: str | None = None, kubeconfig: str | None = None
    ) -> Iterator[Cluster]:
        """A cluster from kubeconfig (or in-cluster configuration), closed after."""
        cluster = cls(_load_api_client(context, kubeconfig))
        try:
            yield cluster
        finally:
            cluster.close()

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self._api_client.configuration.host)

    def close(self) -> None:
        self._api_client.close()

    def _api(self, api_class: str) -> Any:
        if api_class not in self._apis:
            client = kubernetes_module().client
            self._apis[api_class] = getattr(client, api_class)(self._api_client)
        return self._apis[api_class]

    def _method(self, kind: str, verb: str) -> Callable[..., Any]:
        api_class, suffix = KINDS[kind]
        method: Callable[..., Any] = getattr(self._api(api_class), f"{verb}_{suffix}")
        return method

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the API (raw answer), turning failures into nbdeploy errors."""
        client = kubernetes_module().client
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return method(*args, _preload_content=False, **kwargs)
        except client.ApiException as exc:
            raise _api_error(what, exc, self.host) from None
        except NbdeployError:
            raise
        except Exception as exc:  # urllib3's connection errors, TLS errors ...
            raise TargetUnavailableError(
                f"cannot reach the Kubernetes API server at {self.host} ({what}): "
                f"{type(exc).__name__}: {exc}",
                hint="check that `kubectl cluster-info` works with the same context",
            ) from None

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(response.data or b"{}")
        return data

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` (field manager ``nbdeploy``); the object as stored.

        Raises
        ------
        DeploymentError
            The server rejected it (its message says why).
        TargetUnavailableError
            The server cannot be reached or refuses nbdeploy's rights.
        """
        kind = str(obj["kind"])
        meta = obj["metadata"]
        what = f"apply {kind}/{meta['name']}"
        response = self._call(
            what,
            self._method(kind, "patch"),
            meta["name"],
            meta["namespace"],
            dict(obj),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        return self._json(response)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or ``None`` when there is none."""
        try:
            response = self._call(
                f"read {kind}/{name}", self._method(kind, "read"), name, namespace
            )
        except _NotFound:
            return None
        return self._json(response)

    def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` (matching ``label_selector``)."""
        kwargs = {"label_selector": label_selector} if label_selector else {}
        try:
            response = self._call(f"list {kind}", self._method(kind, "list"), namespace, **kwargs)
        except _NotFound:
            return []
        items: list[dict[str, Any]] = self._json(response).get("items") or []
        return items

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete an object (its pods go in the background); ``False`` if it was gone."""
        try:
            self._call(
                f"delete {kind}/{name}",
                self._method(kind, "delete"),
                name,
                namespace,
                propagation_policy="Background",
            )
        except _NotFound:
            return False
        return True

    def pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail: int | None = None,
        previous: bool = False,
    ) -> str | None:
        """A container's log (``previous``: of its last terminated run); ``None`` when
        there is none (the container never ran)."""
        kwargs: dict[str, Any] = {"container": container, "previous": previous}
        if tail is not None:
            kwargs["tail_lines"] = tail
        read_log = self._api("CoreV1Api").read_namespaced_pod_log
        try:
            response = self._call(f"read the log of pod {pod}", read_log, pod, namespace, **kwargs)
        except (_NotFound, _BadRequest):  # no such pod / container not started yet
            return None
        return bytes(response.data or b"").decode("utf-8", "replace")


class _NotFound(DeploymentError):
    """An object that does not exist (404); callers turn it into ``None``."""


class _BadRequest(DeploymentError):
    """A request the server refuses as such (400), e.g. the log of a waiting container."""


def _api_error(what: str, exc: Any, host: str) -> NbdeployError:
    status = int(getattr(exc, "status", 0) or 0)
    message = str(getattr(exc, "reason", "") or "")
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
        message = str(body.get("message") or message)
    except (TypeError, ValueError):
        pass
    if status == 404:
        return _NotFound(f"{what}: not found")
    if status == 400:
        return _BadRequest(f"{what}: {message}")
    if status in (401, 403):
        return TargetUnavailableError(
            f"the Kubernetes API server at {host} refused to {what} ({status}): {message}",
            hint="the kubeconfig's user needs rights on Deployments, Services, Secrets, "
            "ConfigMaps, HPAs, PDBs, Ingresses, pods, pods/log and events in the namespace",
        )
    return DeploymentError(f"the Kubernetes API server could not {what} ({status}): {message}")
