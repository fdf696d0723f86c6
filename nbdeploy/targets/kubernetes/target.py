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
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbdeploy.core.auth import ServiceAuth, auth_file_path, read_auth_file, write_auth_file
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
    ServiceExistsError,
    ServiceNotFoundError,
    TargetUnavailableError,
)
from nbdeploy.targets.base import Target, bundle_folder
from nbdeploy.targets.observation import Observation
from nbdeploy.targets.records import Outcome, existing_for_redeploy
from nbdeploy.targets.rollout import Rollout
from nbdeploy.targets.weights import check_weight, rescale

from . import manifests as mf
from .config import KubernetesConfig
from .status import combine, event_line, observe

__all__ = ["KubernetesTarget"]

_POLL_MAX = 1.0


class KubernetesTarget(Target):
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

    @staticmethod
    def _cfg(record: ServiceRecord) -> KubernetesConfig:
        return KubernetesConfig.from_record_config(record.config)

    @staticmethod
    def _versions(record: ServiceRecord) -> builtins.list[dict[str, Any]]:
        raw = record.config.get("versions")
        return [dict(v) for v in raw] if isinstance(raw, list) else []

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
        settings = bundle.settings
        if "auth_enabled" in settings or "token_auth_enabled" in settings:
            mode = (
                "key"
                if settings.get("auth_enabled")
                else ("token" if settings.get("token_auth_enabled") else None)
            )
        else:
            mode = cfg.auth_mode
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
        record = self.workspace.services.get(name)
        self._check_mine(record)
        mode = self._auth_mode(record)
        auth = self._auth_bytes(name, mode)
        if mode is None or auth is None:
            return
        cfg = self._cfg(record)
        with self._cluster(cfg) as cluster:
            cluster.apply(mf.auth_secret(cfg, name, auth))

    @contextlib.contextmanager
    def _cluster(self, cfg: KubernetesConfig) -> Iterator[Any]:
        from .cluster import Cluster

        with Cluster.connect(cfg.context, cfg.kubeconfig) as cluster:
            yield cluster

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
        deployments: builtins.list[str],
        deadline: float,
        show_output: bool,
    ) -> Observation:
        """Poll until ``deployments`` leave ``Transitioning`` or time runs out (then
        ``Transitioning`` with the rollout's last words), printing rollout events."""
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
                seen = self._await(cluster, record, deployments, deadline, show_output)
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

    def _settle(
        self,
        record: ServiceRecord,
        seen: Observation,
        what: str,
        limit: float,
        show_output: bool,
    ) -> ServiceRecord:
        """Store how a wait ended; raise unless ``Healthy``."""
        store = self.workspace.services
        if seen.state is ServiceState.HEALTHY:
            record = store.put(record.with_state(ServiceState.HEALTHY))
            if show_output:
                print(f"{record.name}: Healthy at {record.scoring_uri}", flush=True)
            return record
        if seen.state is ServiceState.TRANSITIONING:
            reason = f"not rolled out within {limit:g} s ({seen.progress or 'no progress'})"
            seen = Observation(ServiceState.FAILED, reason)
        record = store.put(record.with_state(seen.state, seen.reason))
        if show_output:
            print(f"{record.name}: {seen.state.value}: {seen.reason}", flush=True)
        raise DeploymentError(
            f"{what} of Kubernetes service {record.name!r}: {seen.state.value}: {seen.reason}",
            hint=f"see get_logs(), and kubectl -n {self._cfg(record).namespace} describe "
            f"pods -l {mf.label_selector(record.name)}",
        )

    def deploy(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Build (or take) the image, apply every object and wait for the rollout.

        Raises
        ------
        TargetUnavailableError
            No Kubernetes client, configuration or API server (or no Docker engine
            to build the image).
        ServiceExistsError
            A live service of that name exists, or the namespace has a Deployment of
            that name that this workspace did not make.
        DeploymentError
            The image, the objects or the rollout failed (``Failed``,
            ``Unschedulable`` or ``Unhealthy``, with the reason).

        Examples
        --------
        >>> target.deploy("iris", bundle, KubernetesConfig(image="reg/iris:1"))  # doctest: +SKIP
        """
        check_name(name, "service")
        cfg = KubernetesConfig.coerce(config)
        path = bundle_folder(bundle)
        existing = existing_for_redeploy(self, name, self._refresh, "Kubernetes")
        return self._deploy(name, path, cfg, existing, wait, show_output)

    def _deploy(
        self,
        name: str,
        path: Path,
        cfg: KubernetesConfig,
        existing: ServiceRecord | None,
        wait: bool,
        show_output: bool,
    ) -> ServiceRecord:
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
            with self._cluster(cfg) as cluster:
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

    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` leaves ``Transitioning``, printing the rollout's
        events with ``show_output``; its record.

        Raises
        ------
        DeploymentError
            It ended ``Failed``, ``Unschedulable`` or ``Unhealthy``, or timed out.

        Examples
        --------
        >>> target.wait("iris", 300, show_output=True)  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        cfg = self._cfg(record)
        limit = float(timeout if timeout is not None else cfg.timeout)
        with self._cluster(cfg) as cluster:
            seen = self._await(
                cluster,
                record,
                self._deployment_names(record),
                time.monotonic() + limit,
                show_output,
            )
        return self._settle(record, seen, "wait", limit, show_output)

    def update(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """A rolling update of service ``name`` (its primary version, when it has
        several) to ``bundle`` and ``config``: new pods start next to the old ones,
        which keep serving until the new ones are ready (``maxUnavailable: 0``). If
        the new pods fail, the service converges back to the previous generation.

        Raises
        ------
        DeploymentError
            The new generation failed: rolled back, the previous one keeps serving —
            or, when the objects of the previous one cannot be applied again,
            ``Failed`` with why.

        Examples
        --------
        >>> target.update("iris", "bundles/iris/2")  # doctest: +SKIP
        """
        del wait  # the rollout completes (or is undone) in this call
        record = self.get(name)
        cfg = self._update_config(record, config)
        path = bundle_folder(bundle)
        if "running_image" not in record.config:  # it never reached its cluster
            fresh = self._deploy(name, path, cfg, record, True, show_output)
            return self.workspace.services.put(fresh.replace(generation=record.generation + 1))
        with self._cluster(cfg) as cluster:
            return _RollingUpdate(self, cluster, record, path, cfg, show_output).run()

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
        self,
        record: ServiceRecord,
        cfg: KubernetesConfig,
        bundle: Bundle,
        path: Path,
        mode: str | None,
        image: str,
        policy: str,
    ) -> ServiceRecord:
        """The record of the next generation (the primary version switched)."""
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

    def _bundles(self, record: ServiceRecord) -> set[str]:
        """The bundle folders a record uses (every version's)."""
        paths = {record.bundle_path, *(v.get("bundle_path") for v in self._versions(record))}
        return {str(p) for p in paths if p}

    @staticmethod
    def _union(versions: builtins.list[dict[str, Any]]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for v in versions for m in v["models"]))

    def get(self, name: str) -> ServiceRecord:
        """The live record of service ``name`` (from its Deployments, pods and events).

        Examples
        --------
        >>> target.get("iris").state  # doctest: +SKIP
        <ServiceState.HEALTHY: 'Healthy'>
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        return self._refresh(record)

    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        if "running_image" not in record.config:  # never got as far as the cluster
            return record
        with self._cluster(self._cfg(record)) as cluster:
            seen, _ = self._observe(cluster, record)
        if seen.state is record.state and seen.reason == record.error:
            return record
        return self.workspace.services.put(record.with_state(seen.state, seen.reason))

    def list(self) -> builtins.list[ServiceRecord]:
        """Live records of every Kubernetes service in the workspace (the stored
        record when its cluster cannot be reached).

        Examples
        --------
        >>> [r.name for r in target.list()]  # doctest: +SKIP
        ['iris']
        """
        records = []
        for record in self.workspace.services.list(target=self.name):
            try:
                records.append(self._refresh(record))
            except TargetUnavailableError:
                records.append(record)
        return records

    def logs(self, name: str, tail: int | None = None) -> str:
        """Every pod's log (the last ``tail`` lines of each), each line prefixed with
        ``[pod]``; a container that crashed shows its previous run's output.

        Examples
        --------
        >>> print(target.logs("iris", tail=5))  # doctest: +SKIP
        [iris-7d4f9-x2k8q] NBDEPLOY-READY
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        cfg = self._cfg(record)
        lines: builtins.list[str] = []
        with self._cluster(cfg) as cluster:
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

    def delete(self, name: str) -> None:
        """Delete every object of service ``name`` (found by its labels), then its
        record, bundles and runtime files. Nothing happens if it does not exist.

        Raises
        ------
        TargetUnavailableError
            The cluster cannot be reached (the record is kept, so a later delete can
            finish the job).

        Examples
        --------
        >>> target.delete("iris")  # doctest: +SKIP
        """
        try:
            record = self.workspace.services.get(name)
        except ServiceNotFoundError:
            return
        self._check_mine(record)
        cfg = self._cfg(record)
        with self._cluster(cfg) as cluster:
            for kind, object_name in self._owned(cluster, record):
                cluster.delete(kind, cfg.namespace, object_name)
        self.workspace.services.delete(name)
        for bundle in self._bundles(record):
            self._remove_bundle(bundle)
        shutil.rmtree(self._service_dir(name), ignore_errors=True)

    def manifests(self, name: str) -> mf.Manifests:
        """The service's objects as they are applied — without the Secret's keys (the
        notes say how to create it).

        Examples
        --------
        >>> target.manifests("iris").save("k8s/iris.yaml")  # doctest: +SKIP
        """
        record = self.workspace.services.get(name)
        self._check_mine(record)
        if "running_image" not in record.config:
            raise DeploymentError(
                f"service {name!r} never reached its cluster: it has no manifests yet",
                hint="deploy it again",
            )
        return self._desired(record, with_secret=False)

    def traffic(self, name: str) -> dict[str, int]:
        """``{version: weight}``; empty while the service has a single version."""
        record = self.workspace.services.get(name)
        return {str(v["name"]): int(v["weight"]) for v in self._versions(record)}

    def _live(self, name: str) -> ServiceRecord:
        record = self.get(name)
        if record.state is ServiceState.FAILED:
            raise DeploymentError(
                f"service {name!r} is Failed ({record.error}); its versions cannot change",
                hint="deploy it again, or delete it",
            )
        return record

    def _change(
        self, record: ServiceRecord, new: ServiceRecord, what: str, show_output: bool
    ) -> ServiceRecord:
        """Converge to ``new`` and store it; converge back to ``record`` on failure."""
        cfg = self._cfg(new)
        with self._cluster(cfg) as cluster:
            seen = self._converge(cluster, new, time.monotonic() + cfg.timeout, show_output)
            if seen.state is not ServiceState.HEALTHY:
                self._converge(cluster, record, None, show_output)
                raise DeploymentError(
                    f"{what} of service {record.name!r} failed: {seen.state.value}: "
                    f"{seen.reason or 'timed out'}; the endpoint is unchanged",
                    hint="see get_logs()",
                )
        return self.workspace.services.put(new.with_state(ServiceState.HEALTHY))

    def add_version(
        self,
        name: str,
        version: str,
        bundle: Any,
        weight: int = 0,
        *,
        current_name: str = "v1",
        show_output: bool = False,
    ) -> ServiceRecord:
        """Serve ``bundle`` as version ``version`` with ``weight`` % of the traffic
        (the others' weights shrink to make room). The first call names the running
        version ``current_name``, starts the router and points ``Service <svc>`` at
        it: the scoring URI does not change.

        Examples
        --------
        >>> target.add_version("iris", "v2", "bundles/iris/3", weight=10)  # doctest: +SKIP
        """
        check_name(version, "version")
        weight = check_weight(weight, f"version {version!r}")
        record = self._live(name)
        versions = self._versions(record) or self._first_version(record, current_name)
        if any(v["name"] == version for v in versions):
            raise InvalidArgumentError(
                f"service {name!r} already has a version {version!r}",
                hint="pick another name",
            )
        path = bundle_folder(bundle)
        loaded = Bundle.load(path)
        cfg = self._cfg(record)
        image, policy = self._image(name, loaded, cfg, self._auth_mode(record), show_output)
        scaled = rescale({v["name"]: v["weight"] for v in versions}, 100 - weight)
        for entry in versions:
            entry["weight"] = scaled[entry["name"]]
        versions.append(
            {
                "name": version,
                "deployment": mf.Workload(name, image, version=version).deployment_name,
                "image": image,
                "pull_policy": policy,
                "generation": record.generation,
                "models": [m.ref for m in loaded.models],
                "bundle_path": str(path),
                "weight": weight,
            }
        )
        new = self._with_versions(record, versions, record.config.get("primary") or current_name)
        return self._change(record, new, f"adding version {version!r}", show_output)

    def _first_version(
        self, record: ServiceRecord, current_name: str
    ) -> builtins.list[dict[str, Any]]:
        check_name(current_name, "version")
        return [
            {
                "name": current_name,
                "deployment": mf.k8s_name(record.name),
                "image": record.config["running_image"],
                "pull_policy": record.config.get("pull_policy", "IfNotPresent"),
                "generation": record.generation,
                "models": list(record.models),
                "bundle_path": record.bundle_path,
                "weight": 100,
            }
        ]

    def _with_versions(
        self, record: ServiceRecord, versions: builtins.list[dict[str, Any]], primary: str
    ) -> ServiceRecord:
        router = record.config.get("router_image") or [
            record.config["running_image"],
            record.config.get("pull_policy", "IfNotPresent"),
        ]
        return record.replace(
            models=self._union(versions),
            config={
                **record.config,
                "versions": versions,
                "primary": primary,
                "routes_generation": int(record.config.get("routes_generation", 0)) + 1,
                "router_image": list(router),
            },
        )

    def _find(self, record: ServiceRecord, version: str) -> dict[str, Any]:
        versions = self._versions(record)
        if not versions:
            raise InvalidArgumentError(
                f"service {record.name!r} has a single version and no traffic split",
                hint="add a second version first: service.add_version('v2', models=..., weight=10)",
            )
        for entry in versions:
            if entry["name"] == version:
                return entry
        raise InvalidArgumentError(
            f"service {record.name!r} has no version {version!r}",
            hint=f"its versions: {', '.join(v['name'] for v in versions)}",
        )

    def set_traffic(self, name: str, weights: Mapping[str, int]) -> ServiceRecord:
        """New weights (percent, adding up to 100; versions left out get 0). Returns
        once every router pod uses them.

        Examples
        --------
        >>> target.set_traffic("iris", {"v1": 50, "v2": 50})  # doctest: +SKIP
        """
        if not isinstance(weights, Mapping) or not weights:
            raise InvalidArgumentError(
                f"traffic weights must be a non-empty dict, got {weights!r}",
                hint="e.g. {'v1': 90, 'v2': 10}",
            )
        record = self._live(name)
        for version, weight in weights.items():
            self._find(record, str(version))
            check_weight(weight, f"version {version!r}")
        if sum(weights.values()) != 100:
            raise InvalidArgumentError(
                f"traffic weights {dict(weights)} add up to {sum(weights.values())}, not 100",
                hint="give percentages that add up to 100; versions left out get 0",
            )
        versions = self._versions(record)
        for entry in versions:
            entry["weight"] = int(weights.get(entry["name"], 0))
        new = self._with_versions(record, versions, str(record.config["primary"]))
        return self._change(record, new, "the traffic change", False)

    def remove_version(self, name: str, version: str) -> ServiceRecord:
        """Delete version ``version`` (it must get no traffic); if it was the primary,
        the remaining version with the most traffic becomes primary.

        Examples
        --------
        >>> target.remove_version("iris", "v2")  # doctest: +SKIP
        """
        record = self._live(name)
        gone = self._find(record, version)
        versions = self._versions(record)
        if len(versions) == 1:
            raise InvalidArgumentError(
                f"version {version!r} is the last version of service {name!r}",
                hint="delete the service instead",
            )
        if gone["weight"] > 0:
            raise InvalidArgumentError(
                f"version {version!r} of service {name!r} still gets {gone['weight']}% of "
                "the traffic",
                hint="shift it away first: service.set_traffic({...}), or service.rollback()",
            )
        keep = [v for v in versions if v["name"] != version]
        primary = str(record.config["primary"])
        if primary == version:
            primary = str(max(keep, key=lambda v: v["weight"])["name"])
        new = self._with_versions(record, keep, primary)
        new = self._change(record, new, f"removing version {version!r}", False)
        self._remove_bundle(gone.get("bundle_path"))
        return new

    def rollback(self, name: str) -> ServiceRecord:
        """All traffic back to the primary version; the other versions are deleted.

        Examples
        --------
        >>> target.rollback("iris").config["primary"]  # doctest: +SKIP
        'v1'
        """
        record = self._live(name)
        primary = self._find(record, str(record.config["primary"]))
        others = [v for v in self._versions(record) if v["name"] != primary["name"]]
        new = self._with_versions(record, [{**primary, "weight": 100}], primary["name"])
        new = self._change(record, new, "the rollback", False)
        for entry in others:
            self._remove_bundle(entry.get("bundle_path"))
        return new


class _RollingUpdate(Rollout):
    """The Kubernetes primitives of the update algorithm: Kubernetes rolls the pods
    itself (``maxUnavailable: 0``), so starting the new generation is applying its
    objects and waiting for the rollout; restoring the old one is applying its
    objects again (its pods never stopped serving)."""

    output_hint = "see the new pods' output with"

    def __init__(
        self,
        target: KubernetesTarget,
        cluster: Any,
        record: ServiceRecord,
        bundle: Path,
        config: KubernetesConfig,
        show_output: bool,
    ) -> None:
        super().__init__(target, record, bundle, timeout=config.timeout, show_output=show_output)
        self.k8s = target
        self.cluster = cluster
        self.config = config
        self.new = record
        self.seen = Observation(ServiceState.TRANSITIONING, None)

    @property
    def kept(self) -> str:  # type: ignore[override]
        return f"rolled back, generation {self.record.generation} keeps serving"

    def prepare(self) -> None:
        loaded = Bundle.load(self.bundle)
        mode = self.k8s._access(self.name, loaded, self.config)
        image, policy = self.k8s._image(self.name, loaded, self.config, mode, self.show_output)
        self.new = self.k8s._next(
            self.record, self.config, loaded, self.bundle, mode, image, policy
        )

    def make_room(self) -> bool:
        return True  # a failed rollout is undone by applying the old objects again

    def start(self) -> None:
        deadline = time.monotonic() + self.config.timeout
        self.seen = self.k8s._converge(self.cluster, self.new, deadline, self.show_output)

    def wait_ready(self) -> Outcome:
        if self.seen.state is ServiceState.HEALTHY:
            return Outcome(True)
        reason = self.seen.reason or f"not rolled out within {self.config.timeout:g} s"
        return Outcome(False, f"{self.seen.state.value}: {reason}")

    def discard_new(self) -> None:
        if str(self.bundle) != self.record.bundle_path:
            self.k8s._remove_bundle(str(self.bundle))

    def restore_old(self) -> None:
        self.k8s._converge(self.cluster, self.record, None, self.show_output)

    def stop_old(self) -> None:
        return None  # Kubernetes retired the old pods in the rollout

    def commit(self) -> ServiceRecord:
        updated = self.k8s._with_uris(self.new, self.cluster).with_state(ServiceState.HEALTHY)
        return self.k8s.workspace.services.put(updated)

    def retire_bundles(self, updated: ServiceRecord) -> None:
        for old in self.k8s._bundles(self.record) - self.k8s._bundles(updated):
            self.k8s._remove_bundle(old)
