"""Unit tests of the Kubernetes target's pure parts: configuration errors, state
rules on real-shaped API objects, the image loaders' command lines, and that only
``cluster.py`` imports the ``kubernetes`` client."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbdeploy
from nbdeploy import AksWebservice
from nbdeploy.core.services import ServiceState
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError
from nbdeploy.targets import default_config, get_target, target_names
from nbdeploy.targets.kubernetes.config import KubernetesConfig
from nbdeploy.targets.kubernetes.images import _load
from nbdeploy.targets.kubernetes.status import combine, observe, pod_problem, rollout_status

PACKAGE = Path(nbdeploy.__file__).parent

# --------------------------------------------------------------------------- imports


def _imports_kubernetes(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.partition(".")[0] == "kubernetes" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").partition(".")[0] == (
            "kubernetes"
        ):
            return True
        if isinstance(node, ast.Constant) and node.value == "kubernetes":
            parent_calls = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.Call)
                and any(a is node for a in n.args)
                and getattr(n.func, "attr", getattr(n.func, "id", "")) == "import_module"
            ]
            if parent_calls:
                return True
    return False


def test_only_cluster_py_imports_the_kubernetes_client() -> None:
    importers = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if _imports_kubernetes(p)
    )
    assert importers == ["targets/kubernetes/cluster.py"]


def test_configs_and_manifests_load_neither_client() -> None:
    code = """
import json, sys
import nbdeploy
from nbdeploy import AksWebservice
from nbdeploy.targets import default_config, get_target
from nbdeploy.targets.kubernetes.manifests import Workload, build
from nbdeploy.targets.kubernetes import target, images, status
cfg = AksWebservice.deploy_configuration(cpu_cores=1, memory_gb=1)
build(cfg, [Workload("x", "img:1")], auth_mode="key").to_yaml()
default_config("kubernetes")
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in ("kubernetes", "docker"))))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []


# --------------------------------------------------------------------------- config


def test_kubernetes_is_a_target_everywhere() -> None:
    assert "kubernetes" in target_names()
    assert isinstance(default_config("kubernetes"), KubernetesConfig)
    assert nbdeploy.AksWebservice is AksWebservice


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cpu_cores": 0}, "cpu_cores must be positive"),
        ({"memory_gb": "1"}, "memory_gb must be a number"),
        ({"cpu_cores": 2, "cpu_cores_limit": 1}, "cpu_cores_limit=1 is below cpu_cores=2"),
        ({"num_replicas": 2, "autoscale_enabled": True}, "contradicts autoscale_enabled"),
        ({"autoscale_min_replicas": 3, "autoscale_max_replicas": 2}, "is below"),
        ({"autoscale_target_utilization": 0.7}, "must be a whole number"),
        ({"autoscale_target_utilization": 170}, "is a percentage"),
        ({"auth_enabled": True, "token_auth_enabled": True}, "cannot both be True"),
        ({"primary_key": "short"}, "at least 16 characters"),
        ({"namespace": "Prod_1"}, "invalid namespace"),
        ({"service_type": "Ingress"}, "invalid service_type"),
        ({"load_into": "docker-desktop"}, "invalid load_into"),
        ({"image": "x:1", "registry": "reg.example.com"}, "image= names an existing image"),
        ({"public_url": "localhost:8080"}, "invalid public_url"),
        ({"port": 0}, "invalid port 0"),
        ({"replica_max_concurrent_requests": 0}, "invalid replica_max_concurrent_requests 0"),
        ({"labels": {"team": "a b"}}, "invalid label value"),
        ({"target_rps": 10}, "sizing needs both"),
        ({"enable_app_insights": True}, "needs Azure App Insights"),
        ({"collect_model_data": True}, "needs Azure storage"),
        ({"bogus": 1}, "unexpected keyword argument"),
    ],
)
def test_bad_settings_fail_when_made_naming_the_setting(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises((InvalidArgumentError, TypeError), match=message):
        AksWebservice.deploy_configuration(**settings)


def test_reference_defaults_and_round_trip() -> None:
    cfg = AksWebservice.deploy_configuration()
    assert (cfg.cpu_cores, cfg.memory_gb, cfg.auth_enabled) == (0.1, 0.5, True)
    assert cfg.autoscaling
    assert cfg.replica_range == (1, 10)
    assert (cfg.period_seconds, cfg.initial_delay_seconds, cfg.timeout_seconds) == (10, 310, 2)
    fixed = AksWebservice.deploy_configuration(num_replicas=2, labels={"team": "a"})
    assert not fixed.autoscaling
    assert KubernetesConfig.from_dict(fixed.to_dict()) == fixed
    assert KubernetesConfig.from_record_config({**fixed.to_dict(), "other": 1}) == fixed
    assert AksWebservice.deploy_configuration(compute_target_name="kind-dev").context == "kind-dev"
    # %deploy --target kubernetes --port 6789: the local end of kubectl port-forward.
    assert default_config("kubernetes", port=6789).public_url == "http://127.0.0.1:6789"


# --------------------------------------------------------------------------- status


def _deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, **status},
    }


def test_rollout_status_follows_kubectl() -> None:
    assert rollout_status({**_deployment(), "status": {"observedGeneration": 1}})[1] == (
        "Waiting for the deployment spec update to be observed"
    )
    assert rollout_status(_deployment(updatedReplicas=1, replicas=1))[1].endswith(
        "1 out of 2 new replicas have been updated"
    )
    assert rollout_status(_deployment(updatedReplicas=2, replicas=3))[1].endswith(
        "1 old replicas are pending termination"
    )
    done = rollout_status(_deployment(updatedReplicas=2, replicas=2, availableReplicas=2))
    assert done[0] is True
    stuck = _deployment(
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "iris-7d4f9" has timed out progressing.',
            }
        ]
    )
    assert observe(stuck, []).state is ServiceState.FAILED
    quota = _deployment(
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "iris-x" is forbidden: exceeded quota: compute',
            }
        ]
    )
    assert "exceeded quota" in str(observe(quota, []).reason)


def test_pod_problems_name_the_pod_and_the_cause() -> None:
    oom = {
        "metadata": {"name": "iris-1"},
        "status": {
            "containerStatuses": [
                {
                    "name": "server",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                }
            ]
        },
    }
    state, reason = pod_problem(oom) or (None, "")
    assert state is ServiceState.FAILED
    assert (
        reason == "pod iris-1: container server CrashLoopBackOff: exited with code 137 (OOMKilled)"
    )
    init = {
        "metadata": {"name": "iris-2"},
        "status": {
            "initContainerStatuses": [
                {
                    "name": "fetch",
                    "state": {"terminated": {"exitCode": 1, "message": "no such bucket"}},
                }
            ]
        },
    }
    assert "init container fetch" in str(pod_problem(init))
    evicted = {"metadata": {"name": "iris-3"}, "status": {"phase": "Failed", "reason": "Evicted"}}
    assert pod_problem(evicted) == (ServiceState.FAILED, "pod iris-3: Evicted")
    assert pod_problem({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}) is None


def test_combine_reports_the_most_pressing_part() -> None:
    from nbdeploy.targets.observation import Observation

    parts = {
        "iris": Observation(ServiceState.HEALTHY, None, "1 of 1"),
        "iris-v2": Observation(ServiceState.TRANSITIONING, None, "0 of 1"),
    }
    assert combine(parts).state is ServiceState.TRANSITIONING
    parts["iris-router"] = Observation(ServiceState.UNSCHEDULABLE, "pod r: 0/1 nodes")
    assert combine(parts).reason == "iris-router: pod r: 0/1 nodes"


# --------------------------------------------------------------------------- images


def _fake_tool(folder: Path, name: str, code: int) -> Path:
    """A stand-in ``kind``/``k3d``/``minikube`` recording its arguments (unit test of
    the command line only: these tools cannot run here)."""
    script = folder / name
    script.write_text(
        f'#!/bin/sh\necho "$@" > "{folder}/{name}.args"\necho "loading failed" >&2\nexit {code}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_load_into_runs_the_local_clusters_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tool(tmp_path, "kind", 0)
    _fake_tool(tmp_path, "k3d", 1)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    _load(KubernetesConfig(load_into="kind:dev"), "nbdeploy/iris:abc", False)
    assert (tmp_path / "kind.args").read_text().split() == [
        "load",
        "docker-image",
        "nbdeploy/iris:abc",
        "--name",
        "dev",
    ]
    with pytest.raises(DeploymentError, match=r"k3d image import .* failed \(1\): loading failed"):
        _load(KubernetesConfig(load_into="k3d:dev"), "nbdeploy/iris:abc", False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeploymentError, match="needs the 'minikube' command"):
        _load(KubernetesConfig(load_into="minikube"), "nbdeploy/iris:abc", False)


def test_an_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    from nbdeploy.core.workspace import Workspace
    from nbdeploy.exceptions import TargetUnavailableError

    target = get_target("kubernetes", Workspace(tmp_path / "ws"))
    missing = str(tmp_path / "no-kubeconfig")
    with (
        pytest.raises(TargetUnavailableError, match="no usable Kubernetes configuration"),
        target._connect(KubernetesConfig(kubeconfig=missing)),
    ):
        pass


def test_an_api_server_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from nbdeploy.exceptions import TargetUnavailableError
    from nbdeploy.targets.kubernetes.cluster import Cluster

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "gone",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {}}],
            }
        )
    )
    with Cluster.connect(kubeconfig=str(config)) as cluster:
        cluster._api_client.configuration.retries = 0
        with pytest.raises(TargetUnavailableError, match="cannot reach the Kubernetes API server"):
            cluster.get("Deployment", "default", "iris")


def test_manifests_of_a_service_of_another_target_say_what_to_use(tmp_path: Path) -> None:
    from nbdeploy.core.services import ServiceRecord
    from nbdeploy.core.workspace import Workspace
    from nbdeploy.sdk.webservice import Webservice

    workspace = Workspace(tmp_path / "ws")
    record = workspace.services.put(ServiceRecord("boxed", "docker", "Healthy"))
    with pytest.raises(InvalidArgumentError, match="--kubernetes DIR"):
        Webservice._from_record(workspace, record).manifests()
