"""A stateful emulated Kubernetes API server for the Kubernetes target's tests, and
the test's own controller.

No real API server can run on these machines (see ``README.md``, "Kubernetes"), so
the tests drive the official ``kubernetes`` client against kmock's
``KubernetesEmulator`` (an in-memory API on 127.0.0.1). kmock 0.8 stores objects and
answers create/read/list/patch/delete; it lacks three things nbdeploy uses, which
:class:`ClusterEmulator` adds here, kept as close to the real API server as a few
lines allow:

- **server-side apply** (``PATCH`` with ``application/apply-patch+yaml``): creates the
  object when missing (kmock answers 404), requires ``fieldManager``, records it in
  ``managedFields``; the applied fields replace the manager's earlier ones (nbdeploy
  is the only manager here, which makes that exact), ``status`` and server-set
  metadata are kept, ``metadata.generation`` is bumped when ``spec`` changes, and a
  Deployment applied without ``spec.replicas`` keeps the count it had (1 on create:
  the API's default) — as with an autoscaler owning that field.
- **label selectors** on lists (``k=v`` and ``k!=v`` terms; kmock ignores them).
- **pod logs** (``GET .../pods/NAME/log`` with ``container``, ``previous`` and
  ``tailLines``), served from :attr:`ClusterEmulator.logs`; a waiting container
  without ``previous`` is a 400, as on a real kubelet.

No controller runs in this emulation: :class:`Controller` is the test playing the
Deployment controller, the scheduler and the kubelet — it writes Deployment rollout
status, creates pods with real-shaped status objects (running and ready,
unschedulable, crash-looping, image-pull failures, failing readiness) and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import Mapping
from typing import Any

import aiohttp.web
import kmock

DEPLOYMENTS = kmock.resource("apps/v1/deployments")
PODS = kmock.resource("v1/pods")
EVENTS = kmock.resource("v1/events")
SERVICES = kmock.resource("v1/services")
SECRETS = kmock.resource("v1/secrets")
CONFIGMAPS = kmock.resource("v1/configmaps")
HPAS = kmock.resource("autoscaling/v2/horizontalpodautoscalers")
PDBS = kmock.resource("policy/v1/poddisruptionbudgets")
INGRESSES = kmock.resource("networking.k8s.io/v1/ingresses")
TIME = "2026-11-21T10:00:00Z"


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return aiohttp.web.json_response(body, status=code)


def matches(labels: Mapping[str, str], selector: str | None) -> bool:
    """Whether ``labels`` match an equality-based label selector."""
    for term in (selector or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term not in labels:
            return False
    return True


class ClusterEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator plus server-side apply, label selectors and pod logs."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        #: (namespace, pod, container, previous) -> log text.
        self.logs: dict[tuple[str, str, str, bool], str] = {}
        self._versions = itertools.count(1000)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        if request.resource is not None:
            content_type = request.headers.get("Content-Type", "")
            if request.method == "PATCH" and content_type.startswith("application/apply-patch"):
                return await self._apply(request)
            if request.method == "GET" and request.subresource == "log":
                return self._log(request)
            if request.action == kmock.action.LIST:
                return await self._list(request)
        response: aiohttp.web.StreamResponse = await super()._handle(request)
        return response

    def _stored(self, resource: Any, namespace: str | None, name: str) -> Any:
        key = (resource, namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    async def _apply(self, request: Any) -> aiohttp.web.StreamResponse:
        manager = request.params.get("fieldManager")
        if not manager:
            return _status(422, "Invalid", "PatchOptions: fieldManager: Required value")
        body = request.data
        if not isinstance(body, dict) or body.get("metadata", {}).get("name") != request.name:
            return _status(400, "BadRequest", "the applied object's name does not match the URL")
        async with self._lock:
            stored = self._stored(request.resource, request.namespace, request.name)
            new = copy.deepcopy(body)
            meta = new.setdefault("metadata", {})
            meta["namespace"] = request.namespace
            meta["resourceVersion"] = str(next(self._versions))
            meta["managedFields"] = [
                {"manager": manager, "operation": "Apply", "apiVersion": new.get("apiVersion")}
            ]
            if stored is None:
                meta.update(uid=f"uid-{request.name}-{meta['resourceVersion']}", generation=1)
                meta["creationTimestamp"] = TIME
                self._defaults(new, None)
                self.objects[request.resource, request.namespace, request.name] = new
                code = 201
            else:
                old = stored.raw
                self._defaults(new, old)
                for key in ("uid", "creationTimestamp"):
                    meta[key] = old["metadata"][key]
                changed = new.get("spec") != old.get("spec")
                meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed else 0)
                if "status" in old:
                    new["status"] = old["status"]
                stored.create(new)
                code = 200
            raw = self.objects[request.resource, request.namespace, request.name].raw
        return aiohttp.web.json_response(raw, status=code)

    @staticmethod
    def _defaults(new: dict[str, Any], old: Mapping[str, Any] | None) -> None:
        """The few defaults of the real API server nbdeploy's code can observe."""
        spec = new.get("spec")
        if new.get("kind") == "Deployment" and isinstance(spec, dict) and "replicas" not in spec:
            spec["replicas"] = (old or {}).get("spec", {}).get("replicas", 1)

    async def _list(self, request: Any) -> aiohttp.web.StreamResponse:
        selector = request.params.get("labelSelector")
        async with self._lock:
            items = [
                obj.raw
                for (resource, namespace, _), obj in self.objects.items()
                if resource == request.resource
                and (request.namespace is None or namespace == request.namespace)
                and not obj.deleted
                and matches(obj.raw.get("metadata", {}).get("labels") or {}, selector)
            ]
        return aiohttp.web.json_response(
            {"metadata": {"resourceVersion": str(next(self._versions))}, "items": items}
        )

    def _log(self, request: Any) -> aiohttp.web.StreamResponse:
        pod = self._stored(PODS, request.namespace, request.name)
        if pod is None:
            return _status(404, "NotFound", f'pods "{request.name}" not found')
        container = request.params.get("container", "server")
        previous = request.params.get("previous") == "true"
        text = self.logs.get((request.namespace, request.name, container, previous))
        if text is None:
            if previous:
                return _status(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{request.name}" '
                    "not found",
                )
            return _status(
                400,
                "BadRequest",
                f'container "{container}" in pod "{request.name}" is waiting to start: '
                "ContainerCreating",
            )
        tail = request.params.get("tailLines")
        if tail is not None:
            text = "".join(text.splitlines(keepends=True)[-int(tail) :])
        return aiohttp.web.Response(text=text, content_type="text/plain")


class Controller:
    """The test playing Kubernetes' controllers and kubelets over the emulator's objects.

    Every method writes what the real component would write, in the API's shapes.
    """

    def __init__(self, server: ClusterEmulator, namespace: str = "default") -> None:
        self.server = server
        self.namespace = namespace
        self._pods = itertools.count(1)
        self._events = itertools.count(1)

    # -- reading ---------------------------------------------------------------------

    def get(self, resource: Any, name: str) -> dict[str, Any] | None:
        stored = self.server._stored(resource, self.namespace, name)
        return None if stored is None else dict(stored.raw)

    def names(self, resource: Any) -> list[str]:
        return sorted(
            name
            for (res, ns, name), obj in self.server.objects.items()
            if res == resource and ns == self.namespace and not obj.deleted
        )

    # -- writing: pods ----------------------------------------------------------------

    def _pod(self, deployment: Mapping[str, Any], status: dict[str, Any]) -> str:
        template = deployment["spec"]["template"]
        name = f"{deployment['metadata']['name']}-7d4f9-{next(self._pods):05d}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": dict(template["metadata"]["labels"]),
                "creationTimestamp": TIME,
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": status,
        }
        self.server.objects[PODS, self.namespace, name] = pod
        return name

    def current_pods(self, deployment: str) -> list[str]:
        obj = self.get(DEPLOYMENTS, deployment)
        assert obj is not None
        labels = obj["spec"]["template"]["metadata"]["labels"]
        return [
            name
            for name in self.names(PODS)
            if (self.get(PODS, name) or {}).get("metadata", {}).get("labels") == labels
        ]

    @staticmethod
    def _container(ready: bool, started: bool, **state: Any) -> dict[str, Any]:
        return {
            "name": "server",
            "ready": ready,
            "started": started,
            "restartCount": state.pop("restarts", 0),
            "image": "img",
            "imageID": "",
            "state": state.pop("state"),
            **({"lastState": state["last"]} if "last" in state else {}),
        }

    def running_pod(self, deployment: str, *, ready: bool = True, log: str = "") -> str:
        """A scheduled pod whose server runs (and is ready, unless ``ready=False``)."""
        obj = self.get(DEPLOYMENTS, deployment)
        assert obj is not None
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
            "containerStatuses": [
                self._container(ready, True, state={"running": {"startedAt": TIME}})
            ],
        }
        name = self._pod(obj, status)
        self.server.logs[self.namespace, name, "server", False] = log
        return name

    def unschedulable_pod(self, deployment: str, message: str) -> str:
        obj = self.get(DEPLOYMENTS, deployment)
        assert obj is not None
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                }
            ],
        }
        name = self._pod(obj, status)
        self.event("Pod", name, "FailedScheduling", message, warning=True)
        return name

    def crash_looping_pod(self, deployment: str, last_lines: str, *, exit_code: int = 3) -> str:
        """A pod whose server exits at start (``init()`` failed) and is in back-off;
        the termination message is the last log lines (FallbackToLogsOnError)."""
        obj = self.get(DEPLOYMENTS, deployment)
        assert obj is not None
        terminated = {
            "exitCode": exit_code,
            "reason": "Error",
            "message": last_lines,
            "startedAt": TIME,
            "finishedAt": TIME,
        }
        waiting = {
            "reason": "CrashLoopBackOff",
            "message": "back-off 40s restarting failed container=server",
        }
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False"},
            ],
            "containerStatuses": [
                self._container(
                    False,
                    False,
                    restarts=3,
                    state={"waiting": waiting},
                    last={"terminated": terminated},
                )
            ],
        }
        name = self._pod(obj, status)
        self.server.logs[self.namespace, name, "server", True] = last_lines
        self.event("Pod", name, "BackOff", "Back-off restarting failed container", warning=True)
        return name

    def image_pull_failing_pod(self, deployment: str, image: str) -> str:
        obj = self.get(DEPLOYMENTS, deployment)
        assert obj is not None
        message = (
            f'Back-off pulling image "{image}": ErrImagePull: failed to pull and unpack image '
            f'"{image}": not found'
        )
        status = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                self._container(
                    False,
                    False,
                    state={"waiting": {"reason": "ImagePullBackOff", "message": message}},
                )
            ],
        }
        return self._pod(obj, status)

    # -- writing: the Deployment controller --------------------------------------------

    def rollout(
        self,
        deployment: str,
        *,
        updated: int | None = None,
        available: int | None = None,
        total: int | None = None,
        conditions: list[dict[str, Any]] | None = None,
    ) -> None:
        """Write the Deployment's status as its controller would; by default a
        finished rollout of ``spec.replicas``."""
        obj = self.server._stored(DEPLOYMENTS, self.namespace, deployment)
        assert obj is not None, deployment
        wanted = obj.raw["spec"].get("replicas", 1)
        updated = wanted if updated is None else updated
        available = updated if available is None else available
        total = updated if total is None else total
        obj["status"] = {
            "observedGeneration": obj.raw["metadata"]["generation"],
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
            "conditions": conditions
            or [
                {
                    "type": "Available",
                    "status": "True" if available >= wanted else "False",
                    "reason": "MinimumReplicasAvailable",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable"
                    if available >= wanted
                    else "ReplicaSetUpdated",
                },
            ],
        }

    def complete(self, deployment: str, log: str = "") -> list[str]:
        """Replace the Deployment's pods by ready ones of its current template and
        finish its rollout (what the controller and the kubelets do together)."""
        obj = self.get(DEPLOYMENTS, deployment)
        assert obj is not None
        selector = obj["spec"]["selector"]["matchLabels"]
        for name in self.names(PODS):
            labels = (self.get(PODS, name) or {})["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in selector.items()):
                self.server.objects[PODS, self.namespace, name].delete()
        # As the controller does: the replica set is scaled (and says so) before its pods
        # run and the rollout finishes.
        self.event("Deployment", deployment, "ScalingReplicaSet", "Scaled up replica set")
        pods = [self.running_pod(deployment, log=log) for _ in range(obj["spec"]["replicas"])]
        self.rollout(deployment)
        return pods

    def collect_garbage(self) -> None:
        """Delete the pods no Deployment owns any more (the garbage collector)."""
        selectors = [
            obj.raw["spec"]["selector"]["matchLabels"]
            for (res, ns, _), obj in self.server.objects.items()
            if res == DEPLOYMENTS and ns == self.namespace and not obj.deleted
        ]
        for name in self.names(PODS):
            labels = (self.get(PODS, name) or {})["metadata"]["labels"]
            if not any(all(labels.get(k) == v for k, v in s.items()) for s in selectors):
                self.server.objects[PODS, self.namespace, name].delete()

    def event(
        self, kind: str, name: str, reason: str, message: str, *, warning: bool = False
    ) -> None:
        number = next(self._events)
        event_name = f"{name}.{number:08x}"
        self.server.objects[EVENTS, self.namespace, event_name] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": self.namespace},
            "involvedObject": {"kind": kind, "name": name, "namespace": self.namespace},
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "count": 1,
            "firstTimestamp": TIME,
            "lastTimestamp": TIME,
        }


class AutoController:
    """Runs :class:`Controller` in the background like a cluster would: every
    Deployment whose spec changed is rolled out — by default to ready pods; a
    ``plan`` entry ``(deployment, pod generation label) -> outcome`` makes that
    rollout end ``"unschedulable"``, ``"crash"``, ``"image"`` (pull failure) or
    ``"unready"`` (readiness failing) instead. Deleted Deployments lose their pods.
    """

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.plan: dict[tuple[str, str], str] = {}
        self.log = "NBDEPLOY-LISTENING 0.0.0.0 5001\nNBDEPLOY-READY\n"
        self.handled: list[tuple[str, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AutoController:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            self.step()
            await asyncio.sleep(0.005)

    def step(self) -> None:
        ctl = self.controller
        ctl.collect_garbage()
        for name in ctl.names(DEPLOYMENTS):
            obj = ctl.get(DEPLOYMENTS, name)
            assert obj is not None
            generation = obj["metadata"]["generation"]
            if (obj.get("status") or {}).get("observedGeneration") == generation:
                continue
            label = obj["spec"]["template"]["metadata"]["labels"].get("nbdeploy.io/generation", "")
            self.handled.append((name, generation))
            self.act(name, self.plan.get((name, label), "ok"))

    def act(self, name: str, outcome: str) -> None:
        ctl = self.controller
        obj = ctl.get(DEPLOYMENTS, name)
        assert obj is not None
        if outcome == "ok":
            ctl.complete(name, log=self.log)
            return
        old = len(ctl.names(PODS))
        image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
        if outcome == "unschedulable":
            ctl.unschedulable_pod(name, "0/3 nodes are available: 3 Insufficient cpu.")
        elif outcome == "crash":
            ctl.crash_looping_pod(
                name,
                'Traceback (most recent call last):\n  File "score.py", line 9, in init\n'
                "FileNotFoundError: model.pkl\n"
                "NBDEPLOY-INIT-FAILED: FileNotFoundError: [Errno 2] No such file: 'model.pkl'",
            )
        elif outcome == "image":
            ctl.image_pull_failing_pod(name, image)
        elif outcome == "unready":
            pod = ctl.running_pod(name, ready=False, log=self.log)
            ctl.event(
                "Pod",
                pod,
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                warning=True,
            )
        ctl.rollout(name, updated=1, available=0 if old == 0 else old, total=old + 1)
