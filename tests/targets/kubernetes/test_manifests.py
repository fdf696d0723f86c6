"""The generated manifests: strictly valid for every Kubernetes version
kubernetes-validate bundles (1.25 … 1.37), what a platform team checks for, and YAML
that round-trips. Pure: no API server."""

from __future__ import annotations

import doctest
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from nbdeploy import AksWebservice
from nbdeploy.targets.kubernetes import config as config_module
from nbdeploy.targets.kubernetes import manifests as manifests_module
from nbdeploy.targets.kubernetes import status as status_module
from nbdeploy.targets.kubernetes.config import KubernetesConfig
from nbdeploy.targets.kubernetes.manifests import Manifests, Workload, build

VERSIONS = sorted(set(all_versions()), key=lambda v: tuple(int(p) for p in v.split(".")))


def _reference_configs() -> dict[str, KubernetesConfig]:
    """The reference pages' AksWebservice.deploy_configuration calls, and more."""
    return {
        "seed-table": AksWebservice.deploy_configuration(cpu_cores=1, memory_gb=1),
        "seed-autoscale": AksWebservice.deploy_configuration(
            autoscale_enabled=True,
            autoscale_target_utilization=30,
            autoscale_min_replicas=1,
            autoscale_max_replicas=4,
        ),
        "seed-defaults": AksWebservice.deploy_configuration(),
        "everything": AksWebservice.deploy_configuration(
            cpu_cores=0.5,
            memory_gb=0.75,
            cpu_cores_limit=2,
            memory_gb_limit=1.5,
            gpu_cores=1,
            num_replicas=3,
            token_auth_enabled=True,
            auth_enabled=False,
            scoring_timeout_ms=5000,
            replica_max_concurrent_requests=4,
            max_request_wait_time=2000,
            period_seconds=5,
            initial_delay_seconds=60,
            timeout_seconds=3,
            success_threshold=2,
            failure_threshold=5,
            namespace="ml-prod",
            description="diabetes regression",
            tags={"team": "risk"},
            properties={"owner": "ana"},
            service_type="LoadBalancer",
            ingress_host="diabetes.example.com",
            ingress_class="nginx",
            ingress_tls_secret="diabetes-tls",
            labels={"team": "risk"},
            annotations={"example.com/cost-center": "42"},
            image_pull_secrets=["regcred"],
        ),
    }


def _objects(cfg: KubernetesConfig, split: bool) -> Manifests:
    if not split:
        return build(cfg, [Workload("diabetes", "reg/d:1")], auth_mode="key", auth_json=b"{}")
    workloads = [
        Workload("diabetes", "reg/d:1", version="v1", deployment="diabetes"),
        Workload("diabetes", "reg/d:2", version="v2"),
    ]
    return build(
        cfg, workloads, auth_mode=cfg.auth_mode, auth_json=b"{}", weights={"v1": 90, "v2": 10}
    )


CASES = [(name, split) for name in _reference_configs() for split in (False, True)]


@pytest.mark.parametrize(("name", "split"), CASES)
def test_every_object_validates_strictly_for_every_bundled_version(name: str, split: bool) -> None:
    assert VERSIONS[0] == "1.25.0"
    assert len(VERSIONS) >= 2
    objects = _objects(_reference_configs()[name], split)
    for version in VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {exc}")


@pytest.mark.parametrize(("name", "split"), CASES)
def test_yaml_round_trips_and_every_object_is_found_by_the_service_labels(
    name: str, split: bool
) -> None:
    objects = _objects(_reference_configs()[name], split)
    assert list(yaml.safe_load_all(objects.to_yaml())) == list(objects)
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "diabetes"
        assert labels["app.kubernetes.io/managed-by"] == "nbdeploy"


def _deployment(objects: Manifests, name: str = "diabetes") -> dict[str, Any]:
    return objects.find("Deployment", name)[0]


def test_the_server_pod_is_hardened() -> None:
    objects = _objects(AksWebservice.deploy_configuration(cpu_cores=1, memory_gb=1), False)
    pod = _deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # The only writable place is an emptyDir; the keys come from the Secret, read-only.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    auth = volumes[mounts["/var/run/nbdeploy/auth"]["name"]]
    assert auth["secret"]["secretName"] == "diabetes-auth"
    assert mounts["/var/run/nbdeploy/auth"]["readOnly"] is True
    assert "subPath" not in mounts["/var/run/nbdeploy/auth"]  # rotated keys reach the pod
    assert container["resources"] == {
        "requests": {"cpu": "1000m", "memory": "1024Mi"},
        "limits": {"cpu": "1000m", "memory": "1024Mi"},
    }
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "http"}
    # init() gets the reference's 310 s before liveness may restart the pod.
    assert container["startupProbe"]["failureThreshold"] * 10 >= 310
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    strategy = _deployment(objects)["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_settings_become_the_reference_behaviour() -> None:
    cfg = _reference_configs()["seed-autoscale"]
    objects = _objects(cfg, False)
    (hpa,) = objects.find("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": 30}
    assert "replicas" not in _deployment(objects)["spec"]  # the autoscaler owns it
    assert objects.find("PodDisruptionBudget") == []

    fixed = _objects(_reference_configs()["everything"], False)
    assert fixed.find("HorizontalPodAutoscaler") == []
    assert _deployment(fixed)["spec"]["replicas"] == 3
    (pdb,) = fixed.find("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    container = _deployment(fixed)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {
        "cpu": "2000m",
        "memory": "1536Mi",
        "nvidia.com/gpu": 1,
    }
    assert container["readinessProbe"]["successThreshold"] == 2
    (service,) = fixed.find("Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert _deployment(fixed)["metadata"]["namespace"] == "ml-prod"


def test_the_sizing_helper_feeds_the_replicas() -> None:
    # The reference's worked example: 20 requests/s of 10 s each at 70 % -> 286.
    cfg = AksWebservice.deploy_configuration(target_rps=20, request_seconds=10)
    assert cfg.sized_replicas == 286
    (hpa,) = _objects(cfg, False).find("HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == 286
    fixed = AksWebservice.deploy_configuration(
        autoscale_enabled=False, target_rps=100, request_seconds=0.02
    )
    assert _deployment(_objects(fixed, False))["spec"]["replicas"] == 3


def test_exported_manifests_never_hold_keys() -> None:
    cfg = AksWebservice.deploy_configuration(primary_key="p" * 24, secondary_key="s" * 24)
    exported = build(cfg, [Workload("diabetes", "reg/d:1")], auth_mode="key")
    text = exported.to_yaml()
    assert exported.find("Secret") == []
    assert "kubectl -n default create secret generic diabetes-auth" in text
    assert "p" * 24 not in text + repr(cfg) + str(cfg.to_dict())
    assert "pppp…" in repr(cfg)


def test_save_writes_a_file_or_a_folder_kubectl_reads(tmp_path: Any) -> None:
    objects = _objects(AksWebservice.deploy_configuration(), True)
    single = objects.save(tmp_path / "all.yaml")
    assert list(yaml.safe_load_all(single.read_text())) == list(objects)
    folder = objects.save(tmp_path / "k8s")
    files = sorted(p.name for p in folder.iterdir())
    assert files[0] == "01-secret-diabetes-auth.yaml"
    assert "README.md" in files
    loaded = [yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))]
    assert loaded == list(objects)


def test_module_doctests() -> None:
    for module in (config_module, manifests_module, status_module):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0
        assert failures == 0, module.__name__
