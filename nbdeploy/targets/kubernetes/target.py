"""The Kubernetes target: a service is a set of objects in a namespace, converged by
server-side apply and watched through the API.

Parts: :mod:`.config` (the settings), :mod:`.manifests` (settings + facts → objects,
pure), :mod:`.images` (the image, built by the Docker target's packaging),
:mod:`.cluster` (the only module importing the ``kubernetes`` client) and
:mod:`.status` (API objects → state, pure). This module ties them together with
the one algorithm every operation uses, :meth:`KubernetesTarget._converge`: build
the desired objects from the service record, apply them in phases — the scoring
servers, then the router (only with several versions), then the front (``Service``,
``Ingress``) — waiting after each phase until its Deployments are rolled out, and
finally delete the service's objects the desired state no longer has (found by
label). Deploy, update, traffic changes and rollback differ only in the record they
converge to; a failed update or new version converges back to the previous record.

Why traffic is split by weight with a router, not by replica count: two Deployments
behind one Service split requests by how many pods each has — 10 % needs ten pods,
1 % a hundred, and an autoscaler changes the split whenever it scales. nbdeploy's
router (the one local services use) picks a version per request by weight, so the
split is exact, independent of the replicas, and the same on every cluster (no
ingress controller or Gateway API implementation needed). New weights roll the router
out (the weights' hash is a pod annotation), so a traffic call returns once every
router pod uses them.

Keys live in the workspace's auth file (``services/<name>/auth.json``), which is the
only copy nbdeploy keeps; the cluster gets it as ``Secret <svc>-auth`` and
:meth:`KubernetesTarget.sync_auth` applies it again after ``regen_key``. Pods see a
changed Secret within the kubelet's sync period (about a minute); the server re-reads
the file when it changes.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbdeploy.core.auth import ServiceAuth, auth_file_path, read_auth_file, write_auth_file
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
    ServiceExistsError,
)
from nbdeploy.targets.config import auth_mode_for
from nbdeploy.targets.converging import ConvergingTarget
from nbdeploy.targets.observation import Observation

from . import manifests as mf
from .config import KubernetesConfig
from .status import combine, event_line, observe

__all__ = ["KubernetesTarget"]

_POLL_MAX = 1.0


class KubernetesTarget(ConvergingTarget):
    """Services as Kubernetes objects (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> target = KubernetesTarget(Workspace(tempfile.mkdtemp()))
    >>> target.list()
    []
    >>> target.delete("nothing-here")  # idempotent
    """

    name = "kubernetes"
    config_class = KubernetesConfig
    workers = "pods"

    def _cfg(self, record: ServiceRecord) -> KubernetesConfig:
        return KubernetesConfig.from_record_config(record.config)

    def _workloads(self, record: ServiceRecord) -> builtins.list[mf.Workload]:
        versions = self._versions(record)
        if not versions:
            return [
                mf.Workload(
                    record.name,
                    str(record.config["running_image"]),
                    record.generation,
                    record.models,
                    pull_policy=str(record.config.get("pull_policy", "IfNotPresent")),
                )
            ]
        return [
            mf.Workload(
                record.name,
                str(v["image"]),
                int(v["generation"]),
                tuple(v["models"]),
                version=str(v["name"]),
                pull_policy=str(v["pull_policy"]),
                deployment=str(v["deployment"]),
            )
            for v in versions
        ]

    def _auth_mode(self, record: ServiceRecord) -> str | None:
        mode = record.config.get("auth_mode")
        return str(mode) if mode else None

    def _auth_bytes(self, name: str, mode: str | None) -> bytes | None:
        if mode is None:
            return None
        return auth_file_path(self.workspace.services_dir, name).read_bytes()

    def _desired(self, record: ServiceRecord, *, with_secret: bool = True) -> mf.Manifests:
        """Every object ``record`` describes (the Secret with its data if asked)."""
        mode = self._auth_mode(record)
        versions = self._versions(record)
        router = record.config.get("router_image")
        return mf.build(
            self._cfg(record),
            self._workloads(record),
            auth_mode=mode,
            auth_json=self._auth_bytes(record.name, mode) if with_secret else None,
            weights={str(v["name"]): int(v["weight"]) for v in versions} if versions else None,
            routes_generation=int(record.config.get("routes_generation", 1)),
            router_image=(str(router[0]), str(router[1])) if router else None,
        )

    def _deployment_names(self, record: ServiceRecord) -> builtins.list[str]:
        names = [w.deployment_name for w in self._workloads(record)]
        if self._versions(record):
            names.append(mf.router_name(record.name))
        return names

    def _access(self, name: str, bundle: Bundle, cfg: KubernetesConfig) -> str | None:
        """The service's auth mode; its auth file written (fresh secrets when missing
        or of another mode, the configuration's keys when it names some)."""
        mode = auth_mode_for(bundle.settings, cfg)
        if mode is None:
            return None
        path = auth_file_path(self.workspace.services_dir, name)
        current = read_auth_file(path)
        auth = current or ServiceAuth.generate(name, mode)  # type: ignore[arg-type]
        if auth.mode != mode:
            auth = auth.with_mode(mode)  # type: ignore[arg-type]
        if cfg.primary_key:
            auth = auth.regenerate("Primary", cfg.primary_key)
        if cfg.secondary_key:
            auth = auth.regenerate("Secondary", cfg.secondary_key)
        if auth != current:
            write_auth_file(path, auth)
        return mode

    def sync_auth(self, name: str) -> None:
        """Apply the service's auth file to its Secret again — after ``regen_key`` —
        so the pods see the new keys (within the kubelet's sync period).

        Examples
        --------
        >>> target.sync_auth("iris")  # doctest: +SKIP
        """
        record = self._stored(name)
        mode = self._auth_mode(record)
        auth = self._auth_bytes(name, mode)
        if mode is None or auth is None:
            return
        cfg = self._cfg(record)
        with self._connect(cfg) as cluster:
            cluster.apply(mf.auth_secret(cfg, name, auth))

    @contextlib.contextmanager
    def _connect(
        self, cfg: KubernetesConfig, *, start: bool = False, show: bool = False
    ) -> Iterator[Any]:
        del start, show  # a cluster is never started here
        from .cluster import Cluster

        with Cluster.connect(cfg.context, cfg.kubeconfig) as cluster:
            yield cluster

    def _reached(self, record: ServiceRecord) -> bool:
        return "running_image" in record.config

    def _look(self, record: ServiceRecord) -> Observation:
        with self._connect(self._cfg(record)) as cluster:
            seen, _ = self._observe(cluster, record)
        return seen

    def _stop(self, record: ServiceRecord) -> None:
        cfg = self._cfg(record)
        with self._connect(cfg) as cluster:
            for kind, object_name in self._owned(cluster, record):
                cluster.delete(kind, cfg.namespace, object_name)

    def _timed_out(self, limit: float, progress: str) -> str:
        return f"not rolled out within {limit:g} s ({progress or 'no progress'})"

    def _failure_hint(self, record: ServiceRecord) -> str:
        return (
            f"see get_logs(), and kubectl -n {self._cfg(record).namespace} describe "
            f"pods -l {mf.label_selector(record.name)}"
        )

    def _owned(self, cluster: Any, record: ServiceRecord) -> builtins.list[tuple[str, str]]:
        """``(kind, name)`` of every object in the cluster labelled as the service's."""
        from .cluster import OWNED_KINDS

        namespace = self._cfg(record).namespace
        selector = mf.label_selector(record.name)
        return [
            (kind, obj["metadata"]["name"])
            for kind in OWNED_KINDS
            for obj in cluster.list(kind, namespace, selector)
        ]

    def _check_free(self, cluster: Any, cfg: KubernetesConfig, name: str) -> None:
        """Refuse to take over a Deployment this workspace did not make."""
        found = cluster.get("Deployment", cfg.namespace, mf.k8s_name(name))
        if found is None:
            return
        labels = found["metadata"].get("labels") or {}
        owner = (
            "nbdeploy (from another workspace)"
            if labels.get("app.kubernetes.io/managed-by") == mf.MANAGED_BY
            else "someone else"
        )
        raise ServiceExistsError(
            f"namespace {cfg.namespace!r} already has a Deployment {mf.k8s_name(name)!r}, "
            f"made by {owner}",
            hint="pick another service name or namespace, or delete its objects first "
            f"(kubectl -n {cfg.namespace} delete deploy,svc,hpa,pdb,cm,secret,ingress "
            f"-l {mf.label_selector(name)})",
        )

    def _observe(
        self, cluster: Any, record: ServiceRecord, deployments: builtins.list[str] | None = None
    ) -> tuple[Observation, builtins.list[dict[str, Any]]]:
        """The live state of ``deployments`` (default: all of the record's) and the
        events about them."""
        cfg = self._cfg(record)
        names = deployments if deployments is not None else self._deployment_names(record)
        # Deployments first, then pods, then events: whatever the cluster did before the
        # state it reports (scaling a replica set, starting a pod) is then in the list.
        deployments_seen = {n: cluster.get("Deployment", cfg.namespace, n) for n in names}
        pods = cluster.list("Pod", cfg.namespace, mf.label_selector(record.name))
        events = cluster.list("Event", cfg.namespace)
        parts: dict[str, Observation] = {}
        relevant = set(names)
        for name, deployment in deployments_seen.items():
            labels = (
                (deployment or {}).get("spec", {}).get("template", {}).get("metadata", {})
            ).get("labels") or {}
            current = [
                p
                for p in pods
                if labels
                and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
            ]
            relevant |= {p["metadata"]["name"] for p in current}
            parts[name] = observe(deployment, current, events)
        mine = [e for e in events if (e.get("involvedObject") or {}).get("name") in relevant]
        return combine(parts), mine

    def _await(
        self,
        cluster: Any,
        record: ServiceRecord,
        deadline: float,
        show_output: bool,
        deployments: builtins.list[str] | None = None,
    ) -> Observation:
        """Poll until ``deployments`` (default: all of the record's) leave
        ``Transitioning`` or time runs out (then ``Transitioning`` with the rollout's
        last words), printing rollout events."""
        printed: set[str] = set()
        last = ""
        delay = 0.02
        while True:
            seen, events = self._observe(cluster, record, deployments)
            if show_output:
                for event in events:
                    key = str(event.get("metadata", {}).get("name")) + str(event.get("count"))
                    if key not in printed:
                        printed.add(key)
                        print(f"{record.name}: {event_line(event)}", flush=True)
                line = seen.progress or seen.state.value
                if line != last:
                    print(f"{record.name}: {line}", flush=True)
                    last = line
            if seen.state is not ServiceState.TRANSITIONING or time.monotonic() >= deadline:
                return seen
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _converge(
        self,
        cluster: Any,
        record: ServiceRecord,
        deadline: float | None,
        show_output: bool,
    ) -> Observation:
        """Make the cluster hold what ``record`` describes (see the module docstring);
        with a ``deadline``, wait after each phase. The last observation."""
        desired = self._desired(record)
        router = ("Deployment", mf.router_name(record.name))
        front = {("Service", mf.k8s_name(record.name)), ("Ingress", mf.k8s_name(record.name))}

        def key(obj: Mapping[str, Any]) -> tuple[str, str]:
            return str(obj["kind"]), str(obj["metadata"]["name"])

        phases = [
            [o for o in desired if key(o) != router and key(o) not in front],
            [o for o in desired if key(o) == router],
            [o for o in desired if key(o) in front],
        ]
        seen = Observation(ServiceState.HEALTHY, None)
        for objects in phases:
            for obj in objects:
                cluster.apply(obj)
                if show_output:
                    print(f"{record.name}: applied {obj['kind']}/{obj['metadata']['name']}")
            deployments = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
            if deadline is not None and deployments:
                seen = self._await(cluster, record, deadline, show_output, deployments)
                if seen.state is not ServiceState.HEALTHY:
                    return seen
        keep = {(o["kind"], o["metadata"]["name"]) for o in desired}
        namespace = self._cfg(record).namespace
        for kind, name in self._owned(cluster, record):
            if (kind, name) not in keep:
                cluster.delete(kind, namespace, name)
                if show_output:
                    print(f"{record.name}: deleted {kind}/{name}", flush=True)
        return seen

    def _scoring_uri(self, cluster: Any | None, cfg: KubernetesConfig, name: str) -> str:
        """Where clients send requests (see ``README.md``, "Kubernetes")."""
        if cfg.public_url:
            return cfg.public_url
        if cfg.ingress_host:
            return f"{'https' if cfg.ingress_tls_secret else 'http'}://{cfg.ingress_host}"
        if cfg.service_type == "LoadBalancer" and cluster is not None:
            service = cluster.get("Service", cfg.namespace, mf.k8s_name(name)) or {}
            for entry in service.get("status", {}).get("loadBalancer", {}).get("ingress") or ():
                address = entry.get("hostname") or entry.get("ip")
                if address:
                    return f"http://{address}"
        return f"http://{mf.k8s_name(name)}.{cfg.namespace}.svc.cluster.local"

    def _with_uris(self, record: ServiceRecord, cluster: Any | None) -> ServiceRecord:
        base = self._scoring_uri(cluster, self._cfg(record), record.name)
        return record.replace(scoring_uri=f"{base}/score", swagger_uri=f"{base}/swagger.json")

    def _deploy(
        self,
        name: str,
        path: Path,
        cfg: Any,
        existing: ServiceRecord | None,
        *,
        wait: bool,
        show_output: bool,
    ) -> ServiceRecord:
        """Build (or take) the image, apply every object and wait for the rollout.

        Raises
        ------
        TargetUnavailableError
            No Kubernetes client, configuration or API server (or no Docker engine
            to build the image).
        ServiceExistsError
            The namespace has a Deployment of that name that this workspace did not
            make.
        DeploymentError
            The image, the objects or the rollout failed (``Failed``,
            ``Unschedulable`` or ``Unhealthy``, with the reason).

        Examples
        --------
        >>> target.deploy("iris", bundle, KubernetesConfig(image="reg/iris:1"))  # doctest: +SKIP
        """
        loaded = Bundle.load(path)
        store = self.workspace.services
        record = ServiceRecord(
            name,
            self.name,
            ServiceState.TRANSITIONING,
            models=tuple(m.ref for m in loaded.models),
            bundle_path=str(path),
            config=cfg.to_dict(),
        )
        if existing is not None:
            record = record.replace(created=existing.created)
        record = store.put(self._with_uris(record, None))
        deadline = time.monotonic() + cfg.timeout
        try:
            with self._connect(cfg) as cluster:
                if existing is None:
                    self._check_free(cluster, cfg, name)
                mode = self._access(name, loaded, cfg)
                image, policy = self._image(name, loaded, cfg, mode, show_output)
                record = store.put(
                    record.replace(
                        config={
                            **record.config,
                            "auth_mode": mode,
                            "running_image": image,
                            "pull_policy": policy,
                            "api_server": cluster.host,
                        }
                    )
                )
                seen = self._converge(cluster, record, deadline if wait else None, show_output)
                record = store.put(self._with_uris(record, cluster))
        except NbdeployError as exc:
            store.put(record.with_state(ServiceState.FAILED, exc.message))
            raise
        if not wait:
            return record
        return self._settle(record, seen, "deployment", cfg.timeout, show_output)

    def _image(
        self, name: str, bundle: Bundle, cfg: KubernetesConfig, mode: str | None, show: bool
    ) -> tuple[str, str]:
        from .images import provide_image

        return provide_image(name, bundle, cfg, mode, self._service_dir(name), show_output=show)

    def _update_config(self, record: ServiceRecord, config: Any) -> KubernetesConfig:
        current = self._cfg(record)
        if config is None:
            return current
        cfg = KubernetesConfig.coerce(config)
        for key in ("namespace", "context", "kubeconfig"):
            if getattr(cfg, key) != getattr(current, key):
                raise InvalidArgumentError(
                    f"service {record.name!r} runs with {key}={getattr(current, key)!r}; an "
                    "update cannot move it",
                    hint="delete the service and deploy it there",
                )
        return cfg

    def _next(
        self, conn: Any, record: ServiceRecord, cfg: Any, path: Path, show_output: bool
    ) -> ServiceRecord:
        """The record of the next generation (the primary version switched), its
        image built or taken."""
        del conn
        bundle = Bundle.load(path)
        mode = self._access(record.name, bundle, cfg)
        image, policy = self._image(record.name, bundle, cfg, mode, show_output)
        generation = record.generation + 1
        models = tuple(m.ref for m in bundle.models)
        config = {
            **record.config,
            **cfg.to_dict(),
            "auth_mode": mode,
            "running_image": image,
            "pull_policy": policy,
        }
        versions = self._versions(record)
        if not versions:
            return record.replace(
                models=models, bundle_path=str(path), generation=generation, config=config
            )
        primary = record.config.get("primary")
        for version in versions:
            if version["name"] == primary:
                version.update(
                    image=image,
                    pull_policy=policy,
                    generation=generation,
                    models=list(models),
                    bundle_path=str(path),
                )
        return record.replace(
            models=self._union(versions),
            bundle_path=str(path),
            generation=generation,
            config={**config, "versions": versions},
        )

    def logs(self, name: str, tail: int | None = None) -> str:
        """Every pod's log (the last ``tail`` lines of each), each line prefixed with
        ``[pod]``; a container that crashed shows its previous run's output.

        Examples
        --------
        >>> print(target.logs("iris", tail=5))  # doctest: +SKIP
        [iris-7d4f9-x2k8q] NBDEPLOY-READY
        """
        record = self._stored(name)
        cfg = self._cfg(record)
        lines: builtins.list[str] = []
        with self._connect(cfg) as cluster:
            pods = cluster.list("Pod", cfg.namespace, mf.label_selector(name))
            for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
                lines += self._pod_lines(cluster, cfg.namespace, pod, tail)
        return "\n".join(lines)

    @staticmethod
    def _pod_lines(
        cluster: Any, namespace: str, pod: Mapping[str, Any], tail: int | None
    ) -> builtins.list[str]:
        name = pod["metadata"]["name"]
        lines: builtins.list[str] = []
        statuses = {s.get("name"): s for s in pod.get("status", {}).get("containerStatuses") or ()}
        for container in pod.get("spec", {}).get("containers") or ():
            cname = container["name"]
            text = cluster.pod_log(namespace, name, cname, tail=tail)
            if not text and (statuses.get(cname) or {}).get("restartCount"):
                text = cluster.pod_log(namespace, name, cname, tail=tail, previous=True)
            lines += [f"[{name}] {line}" for line in (text or "").splitlines()]
        return lines

    def manifests(self, name: str) -> mf.Manifests:
        """The service's objects as they are applied — without the Secret's keys (the
        notes say how to create it).

        Examples
        --------
        >>> target.manifests("iris").save("k8s/iris.yaml")  # doctest: +SKIP
        """
        record = self._stored(name)
        if "running_image" not in record.config:
            raise DeploymentError(
                f"service {name!r} never reached its cluster: it has no manifests yet",
                hint="deploy it again",
            )
        return self._desired(record, with_secret=False)

    def _current_version_facts(self, record: ServiceRecord) -> dict[str, Any]:
        return {
            "deployment": mf.k8s_name(record.name),
            "image": record.config["running_image"],
            "pull_policy": record.config.get("pull_policy", "IfNotPresent"),
            "generation": record.generation,
        }

    def _new_version_facts(
        self, record: ServiceRecord, version: str, bundle: Bundle, show_output: bool
    ) -> dict[str, Any]:
        cfg = self._cfg(record)
        mode = self._auth_mode(record)
        image, policy = self._image(record.name, bundle, cfg, mode, show_output)
        return {
            "deployment": mf.Workload(record.name, image, version=version).deployment_name,
            "image": image,
            "pull_policy": policy,
            "generation": record.generation,
        }

    def _finish(self, conn: Any, record: ServiceRecord) -> ServiceRecord:
        return self._with_uris(record, conn)

    def _with_versions(
        self, record: ServiceRecord, versions: builtins.list[dict[str, Any]], primary: str
    ) -> ServiceRecord:
        router = record.config.get("router_image") or [
            record.config["running_image"],
            record.config.get("pull_policy", "IfNotPresent"),
        ]
        new = super()._with_versions(record, versions, primary)
        return new.replace(config={**new.config, "router_image": list(router)})
