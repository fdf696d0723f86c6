"""The Kubernetes target's whole client path against the emulated API server: the
reference's ``AksWebservice.deploy_configuration`` → deploy (server-side apply) →
states from the API (Healthy, Unschedulable, Failed, Unhealthy) → logs → rolling
update (and its undo) → versions and traffic → keys → delete.

The official ``kubernetes`` client talks HTTP to kmock's emulated API server on
127.0.0.1 (see ``emulator.py`` for what is emulated and what the test's controller
writes). The target's calls block, so they run in a thread while the event loop
serves the API and runs the controller. No real cluster is involved.
"""

from __future__ import annotations

import asyncio
import base64
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbdeploy
from nbdeploy import AksWebservice
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError

from .conftest import KMOCK
from .emulator import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HPAS,
    PDBS,
    SECRETS,
    SERVICES,
    AutoController,
    Controller,
)

pytestmark = [KMOCK, pytest.mark.asyncio]

IMAGE = "registry.example.com/team/diabetes:1"
SCORE = """
import os, pickle
import numpy as np
model = None
def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as fh:
        model = pickle.load(fh)
def run(data):
    return model.predict(np.asarray(data, dtype=float)).tolist()
"""


@pytest.fixture
def registered(workspace: Workspace, diabetes: tuple[Any, np.ndarray], tmp_path: Path) -> Path:
    """The diabetes model registered in the workspace; the scoring script's path."""
    model, rows = diabetes
    nbdeploy.register(model, "diabetes", sample_input=rows, workspace=workspace)
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCORE), encoding="utf-8")
    return script


def _aks(kubeconfig: str, **settings: Any) -> Any:
    """The reference's form, plus where the cluster is and which image to run."""
    return AksWebservice.deploy_configuration(
        **{"cpu_cores": 1, "memory_gb": 1, "kubeconfig": kubeconfig, "image": IMAGE, **settings}
    )


async def _deploy(workspace: Workspace, script: Path, name: str, config: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(
        nbdeploy.deploy,
        "diabetes",
        name,
        score=script,
        config=config,
        workspace=workspace,
        **kw,
    )


async def _state(svc: Any) -> str:
    """The live state (asked from a thread: the event loop serves the API)."""
    return str(await asyncio.to_thread(lambda: svc.state))


async def test_reference_configuration_deploys_logs_updates_and_deletes(
    kubeconfig: str,
    cluster: AutoController,
    workspace: Workspace,
    registered: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctl = cluster.controller
    svc = await _deploy(workspace, registered, "diabetes-svc", _aks(kubeconfig), show_output=True)
    assert await _state(svc) == "Healthy"
    assert svc.scoring_uri == "http://diabetes-svc.default.svc.cluster.local/score"
    shown = capsys.readouterr().out
    assert "diabetes-svc: applied Deployment/diabetes-svc" in shown
    assert "Deployment/diabetes-svc ScalingReplicaSet: Scaled up replica set" in shown
    assert "diabetes-svc: Healthy at http://diabetes-svc.default.svc.cluster.local" in shown

    # What the cluster holds: applied by nbdeploy, all found by the service's labels.
    deployment = ctl.get(DEPLOYMENTS, "diabetes-svc")
    assert deployment is not None
    assert deployment["metadata"]["managedFields"][0]["manager"] == "nbdeploy"
    assert "replicas" not in svc.workspace.services.get("diabetes-svc").config.get("spec", {})
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"]["requests"] == {"cpu": "1000m", "memory": "1024Mi"}
    assert ctl.names(HPAS) == ["diabetes-svc"]  # the reference autoscales by default
    assert ctl.names(SERVICES) == ["diabetes-svc"]
    assert ctl.names(PDBS) == []  # one replica at least: no budget that blocks drains
    secret = ctl.get(SECRETS, "diabetes-svc-auth")
    assert secret is not None
    primary, secondary = svc.get_keys()
    stored = json.loads(base64.b64decode(secret["data"]["auth.json"]))
    assert (stored["primary_key"], stored["secondary_key"]) == (primary, secondary)

    # Logs of every pod, each line naming its pod.
    logs = await asyncio.to_thread(svc.get_logs)
    pod = ctl.current_pods("diabetes-svc")[0]
    assert f"[{pod}] NBDEPLOY-READY" in logs.splitlines()

    # A rolling update: a new generation label, new pods, the old ones gone.
    svc = await asyncio.to_thread(
        svc.update, deployment_config=_aks(kubeconfig, image=IMAGE.replace(":1", ":2"))
    )
    assert svc.record.generation == 2
    deployment = ctl.get(DEPLOYMENTS, "diabetes-svc")
    assert deployment is not None
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["nbdeploy.io/generation"] == "2"
    assert template["spec"]["containers"][0]["image"].endswith(":2")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}

    # Turning autoscaling off removes the autoscaler; two replicas get a budget.
    svc = await asyncio.to_thread(
        svc.update, deployment_config=_aks(kubeconfig, num_replicas=2, image=IMAGE)
    )
    assert ctl.names(HPAS) == []
    assert ctl.names(PDBS) == ["diabetes-svc"]
    assert (ctl.get(DEPLOYMENTS, "diabetes-svc") or {})["spec"]["replicas"] == 2
    assert len(ctl.current_pods("diabetes-svc")) == 2

    await asyncio.to_thread(svc.delete)
    ctl.collect_garbage()
    for resource in (DEPLOYMENTS, SERVICES, SECRETS, HPAS, PDBS, CONFIGMAPS):
        assert ctl.names(resource) == [], resource.plural
    assert [s.name for s in nbdeploy.services(workspace=workspace)] == []
    await asyncio.to_thread(svc.delete)  # twice is fine


async def test_unschedulable_pods_report_the_schedulers_message(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    cluster.plan["big", "1"] = "unschedulable"
    with pytest.raises(DeploymentError, match=r"Unschedulable: .*3 Insufficient cpu"):
        await _deploy(workspace, registered, "big", _aks(kubeconfig, cpu_cores=64))
    record = workspace.services.get("big")
    assert record.state.value == "Unschedulable"
    assert record.error is not None
    assert "0/3 nodes are available: 3 Insufficient cpu." in record.error


async def test_crash_looping_server_is_failed_with_its_last_words(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    cluster.plan["bad", "1"] = "crash"
    with pytest.raises(DeploymentError, match="CrashLoopBackOff"):
        await _deploy(workspace, registered, "bad", _aks(kubeconfig))
    record = workspace.services.get("bad")
    assert record.state.value == "Failed"
    assert record.error is not None
    assert "FileNotFoundError: [Errno 2] No such file: 'model.pkl'" in record.error
    # The crashed run's output is in the logs (the container waits to restart).
    logs = await asyncio.to_thread(nbdeploy.get_service("bad", workspace=workspace).get_logs)
    assert "Traceback (most recent call last):" in logs
    assert all(line.startswith("[bad-") for line in logs.splitlines())


async def test_image_pull_failure_is_failed(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    cluster.plan["pull", "1"] = "image"
    with pytest.raises(DeploymentError, match="ImagePullBackOff"):
        await _deploy(workspace, registered, "pull", _aks(kubeconfig))
    assert workspace.services.get("pull").state.value == "Failed"


async def test_failing_readiness_is_unhealthy(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    cluster.plan["sick", "1"] = "unready"
    with pytest.raises(DeploymentError, match=r"Unhealthy: .*Readiness probe failed"):
        await _deploy(workspace, registered, "sick", _aks(kubeconfig))
    assert workspace.services.get("sick").state.value == "Unhealthy"


async def test_failed_update_converges_back_and_the_old_generation_serves(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    ctl = cluster.controller
    svc = await _deploy(workspace, registered, "upd", _aks(kubeconfig))
    cluster.plan["upd", "2"] = "crash"
    with pytest.raises(DeploymentError, match="rolled back, generation 1 keeps serving"):
        await asyncio.to_thread(
            svc.update, deployment_config=_aks(kubeconfig, image=IMAGE.replace(":1", ":2"))
        )
    deployment = ctl.get(DEPLOYMENTS, "upd")
    assert deployment is not None
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["nbdeploy.io/generation"] == "1"
    assert template["spec"]["containers"][0]["image"] == IMAGE
    record = workspace.services.get("upd")
    assert record.generation == 1
    # The controller rolls the old template out again; the service is Healthy.
    assert await _state(svc) == "Healthy"


async def test_versions_split_by_weight_through_the_router(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    ctl = cluster.controller
    svc = await _deploy(workspace, registered, "ab", _aks(kubeconfig, num_replicas=1))
    assert svc.traffic == {}
    svc = await asyncio.to_thread(svc.add_version, "v2", score=registered, weight=10)
    assert svc.traffic == {"v1": 90, "v2": 10}
    assert sorted(ctl.names(DEPLOYMENTS)) == ["ab", "ab-router", "ab-v2"]
    assert ctl.names(SERVICES) == ["ab", "ab-v1", "ab-v2"]
    main = ctl.get(SERVICES, "ab")
    assert main is not None
    assert main["spec"]["selector"]["nbdeploy.io/deployment"] == "ab-router"
    routes = json.loads((ctl.get(CONFIGMAPS, "ab-routes") or {})["data"]["routes.json"])
    assert [(r["name"], r["host"], r["weight"]) for r in routes["versions"]] == [
        ("v1", "ab-v1", 90),
        ("v2", "ab-v2", 10),
    ]
    router = ctl.get(DEPLOYMENTS, "ab-router")
    assert router is not None
    before = router["spec"]["template"]["metadata"]["annotations"]["nbdeploy.io/routes-sha256"]

    svc = await asyncio.to_thread(svc.set_traffic, {"v1": 50, "v2": 50})
    assert svc.traffic == {"v1": 50, "v2": 50}
    router = ctl.get(DEPLOYMENTS, "ab-router")
    assert router is not None
    after = router["spec"]["template"]["metadata"]["annotations"]["nbdeploy.io/routes-sha256"]
    assert after != before  # new weights roll the router out
    assert ("ab-router", router["metadata"]["generation"]) in cluster.handled

    with pytest.raises(InvalidArgumentError, match="add up to 90"):
        await asyncio.to_thread(svc.set_traffic, {"v1": 40, "v2": 50})
    with pytest.raises(InvalidArgumentError, match="still gets 50%"):
        await asyncio.to_thread(svc.remove_version, "v2")

    svc = await asyncio.to_thread(svc.rollback)
    assert svc.traffic == {"v1": 100}
    assert sorted(ctl.names(DEPLOYMENTS)) == ["ab", "ab-router"]
    assert ctl.names(SERVICES) == ["ab", "ab-v1"]
    await asyncio.to_thread(svc.delete)
    assert ctl.names(DEPLOYMENTS) == []


async def test_a_version_that_fails_leaves_the_endpoint_unchanged(
    kubeconfig: str, cluster: AutoController, workspace: Workspace, registered: Path
) -> None:
    ctl = cluster.controller
    svc = await _deploy(workspace, registered, "canary", _aks(kubeconfig, num_replicas=1))
    cluster.plan["canary-v2", "1"] = "crash"
    with pytest.raises(DeploymentError, match="the endpoint is unchanged"):
        await asyncio.to_thread(svc.add_version, "v2", score=registered, weight=10)
    assert ctl.names(DEPLOYMENTS) == ["canary"]
    main = ctl.get(SERVICES, "canary")
    assert main is not None
    assert main["spec"]["selector"]["nbdeploy.io/deployment"] == "canary"
    assert svc.traffic == {}


async def test_regen_key_rotates_the_secret_and_keys_stay_masked(
    kubeconfig: str,
    cluster: AutoController,
    workspace: Workspace,
    registered: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctl = cluster.controller
    svc = await _deploy(workspace, registered, "keys", _aks(kubeconfig), show_output=True)
    old_primary, secondary = svc.get_keys()
    await asyncio.to_thread(svc.regen_key, "Primary")
    new_primary, same_secondary = svc.get_keys()
    assert new_primary != old_primary
    assert same_secondary == secondary
    secret = ctl.get(SECRETS, "keys-auth")
    assert secret is not None
    stored = json.loads(base64.b64decode(secret["data"]["auth.json"]))
    assert stored["primary_key"] == new_primary

    # Nowhere but the Secret's data: not in other objects, output, logs, manifests.
    others = json.dumps(
        [ctl.get(r, n) for r in (DEPLOYMENTS, SERVICES, HPAS) for n in ctl.names(r)]
    )
    manifests = await asyncio.to_thread(svc.manifests)
    texts = {
        "other objects": others,
        "output": capsys.readouterr().out,
        "logs": await asyncio.to_thread(svc.get_logs),
        "manifests": manifests.to_yaml(),
        "record": json.dumps(svc.serialize()),
        "repr": repr(svc) + repr(manifests),
    }
    for where, text in texts.items():
        for key in (old_primary, new_primary, secondary):
            assert key not in text, where
    assert manifests.find("Secret") == []
    assert "kubectl -n default create secret generic keys-auth" in manifests.to_yaml()


async def test_wait_for_deployment_streams_the_rollout_events(
    kubeconfig: str,
    cluster: AutoController,
    workspace: Workspace,
    registered: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster.plan["later", "1"] = "unschedulable"
    svc = await _deploy(workspace, registered, "later", _aks(kubeconfig), wait=False)
    assert svc.record.state.value == "Transitioning"
    with pytest.raises(DeploymentError, match="Insufficient cpu"):
        await asyncio.to_thread(svc.wait_for_deployment, show_output=True)
    out = capsys.readouterr().out
    assert "Pod/later-7d4f9-00001 Warning FailedScheduling: 0/3 nodes are available" in out
    assert "later: Unschedulable: pod later-7d4f9-00001: 0/3 nodes are available" in out

    # The cluster gets room (the controller retries the rollout): the wait succeeds.
    ctl = cluster.controller
    ctl.complete("later", log=cluster.log)
    assert await asyncio.to_thread(svc.wait_for_deployment, show_output=True) == "Healthy"
    assert "later: Healthy at http://later.default.svc.cluster.local/score" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("reads_before", range(4))
async def test_events_of_a_rollout_that_ends_between_two_reads_are_shown(
    kmock: Any,
    kubeconfig: str,
    workspace: Workspace,
    registered: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    reads_before: int,
) -> None:
    """The controller scales the replica set (an event) and finishes the rollout in one
    step, at any point between the target's reads while it waits. Whatever that point,
    ``show_output`` prints the event before the final state: the wait once read the
    events before the Deployment, and missed them when the step fell in between."""
    from nbdeploy.targets.kubernetes.cluster import Cluster

    loop = asyncio.get_running_loop()
    controller = AutoController(Controller(kmock))
    reads: list[str] = []
    applied = False

    async def step() -> None:
        controller.step()

    def before_read(what: str) -> None:
        if applied:
            reads.append(what)
            if len(reads) > reads_before:
                asyncio.run_coroutine_threadsafe(step(), loop).result()

    real_apply, real_get, real_list = Cluster.apply, Cluster.get, Cluster.list

    def apply(self: Cluster, obj: Any) -> dict[str, Any]:
        nonlocal applied
        result = real_apply(self, obj)
        applied = applied or obj["kind"] == "Deployment"
        return result

    def get(self: Cluster, kind: str, *args: Any, **kw: Any) -> Any:
        before_read(kind)
        return real_get(self, kind, *args, **kw)

    def list_(self: Cluster, kind: str, *args: Any, **kw: Any) -> Any:
        before_read(kind)
        return real_list(self, kind, *args, **kw)

    monkeypatch.setattr(Cluster, "apply", apply)
    monkeypatch.setattr(Cluster, "get", get)
    monkeypatch.setattr(Cluster, "list", list_)

    svc = await _deploy(workspace, registered, "diabetes-svc", _aks(kubeconfig), show_output=True)
    assert await _state(svc) == "Healthy"
    shown = capsys.readouterr().out
    event = "Deployment/diabetes-svc ScalingReplicaSet: Scaled up replica set"
    assert event in shown, (reads, shown)
    assert shown.index(event) < shown.index("diabetes-svc: Healthy at")
