"""The Ray target on the workspace's embedded cluster, for real: a head started by
nbdeploy in this test's network namespace, Serve replicas running the bundle with
nbdeploy's own scoring server.

Run with ``make test-ray`` (see ``conftest.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError, ServiceNotFoundError
from nbdeploy.targets.ray import RayConfig, RayTarget

from .conftest import BundleFactory, bundle_factory

pytestmark = [pytest.mark.ray, pytest.mark.integration]

ORIGIN = "http://app.example"


def _deploy_both(
    ray_ws: Workspace, local_ws: Workspace, diabetes: tuple[Any, np.ndarray]
) -> tuple[Any, Any]:
    """The same model and script as service ``docs`` on the Ray and local targets."""
    model, rows = diabetes
    services = []
    for ws, target in ((ray_ws, "ray"), (local_ws, "local")):
        ws.registry.register(model, "diabetes-docs", sample_input=rows)
        script = ws.path / "score_docs.py"
        script.write_text(
            "import os, pickle\nimport numpy as np\nmodel = None\n"
            "def init():\n    global model\n"
            "    with open(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model.pkl'), 'rb')"
            " as fh:\n        model = pickle.load(fh)\n"
            "def run(data):\n    return model.predict(np.asarray(data, dtype=float)).tolist()\n",
            encoding="utf-8",
        )
        services.append(
            nbdeploy.deploy(
                "diabetes-docs",
                "same-docs",
                score=script,
                target=target,
                auth="key",
                cors=[ORIGIN],
                workspace=ws,
            )
        )
    return services[0], services[1]


def _base(service: Any) -> str:
    return str(service.scoring_uri).removesuffix("/score")


def test_same_requests_same_documents_as_local(
    ray_workspace: Workspace, tmp_path: Path, diabetes: tuple[Any, np.ndarray]
) -> None:
    """Every route of the scoring server answers on Ray as on the local target: the
    predictions, key auth, CORS preflight, and the documents (byte for byte, once the
    server's own address is taken out)."""
    local_ws = Workspace(tmp_path / "local-ws")
    ray_svc, local_svc = _deploy_both(ray_workspace, local_ws, diabetes)
    try:
        assert ray_svc.state == "Healthy"
        assert ray_svc.scoring_uri.startswith("http://127.0.0.1:")
        rows = diabetes[1].tolist()
        answers, preflights = [], []
        for svc in (ray_svc, local_svc):
            key = svc.get_keys()[0]
            refused = requests.post(svc.scoring_uri, json={"data": rows}, timeout=30)
            assert refused.status_code == 401
            ok = requests.post(
                svc.scoring_uri,
                json={"data": rows},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert ok.status_code == 200, ok.text
            answers.append(ok.json())
            preflight = requests.options(
                svc.scoring_uri,
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
                timeout=30,
            )
            preflights.append(preflight.status_code)
            assert preflight.headers["access-control-allow-origin"] == ORIGIN
            assert requests.get(_base(svc) + "/", timeout=30).text == "Healthy"
            assert "swagger-ui" in requests.get(_base(svc) + "/docs", timeout=30).text.lower()
        assert answers[0] == answers[1]
        assert preflights[0] == preflights[1]
        assert ray_svc.run(rows) == local_svc.run(rows)
        for document in ("/swagger.json", "/openapi.json"):
            texts = [
                requests.get(_base(svc) + document, timeout=30).text.replace(_base(svc), "BASE")
                for svc in (ray_svc, local_svc)
            ]
            hosts = [_base(svc).split("/")[2] for svc in (ray_svc, local_svc)]
            texts = [text.replace(host, "HOST") for text, host in zip(texts, hosts, strict=True)]
            assert json.loads(texts[0]) == json.loads(texts[1]), document
    finally:
        ray_svc.delete()
        local_svc.delete()


def test_init_error_is_failed_with_its_message(
    ray_workspace: Workspace, make_ray_bundle: BundleFactory
) -> None:
    """A replica whose init() raises makes the service Failed, with init()'s words."""
    target = RayTarget(ray_workspace)
    bundle = make_ray_bundle(
        "broken", "raise ValueError('no weights in this folder')", service="ray-broken"
    )
    try:
        with pytest.raises(DeploymentError, match="no weights in this folder"):
            target.deploy("ray-broken", bundle, RayConfig(auth_enabled=False, timeout=240))
        record = target.get("ray-broken")
        assert record.state is ServiceState.FAILED
        assert "ValueError: no weights in this folder" in str(record.error)
        assert "init of broken" in target.logs("ray-broken")
    finally:
        target.delete("ray-broken")


def test_unschedulable_names_the_resource(
    ray_workspace: Workspace, make_ray_bundle: BundleFactory
) -> None:
    """A replica no node can hold is Unschedulable, and the reason names the CPUs."""
    target = RayTarget(ray_workspace)
    bundle = make_ray_bundle("huge", service="ray-huge")
    config = RayConfig(auth_enabled=False, ray_actor_options={"num_cpus": 64}, timeout=120)
    try:
        with pytest.raises(DeploymentError, match="Unschedulable") as caught:
            target.deploy("ray-huge", bundle, config)
        assert "64 CPU" in str(caught.value)
        record = ray_workspace.services.get("ray-huge")
        assert record.state is ServiceState.UNSCHEDULABLE
        assert "no node has 64 CPU" in str(record.error)
    finally:
        target.delete("ray-huge")


def test_logs_and_delete_leaves_nothing(
    ray_workspace: Workspace, make_ray_bundle: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """get_logs() shows what init() printed and the requests; delete() removes the
    Serve application, the record, the bundle and the service's files."""
    from nbdeploy.targets.ray import session

    target = RayTarget(ray_workspace)
    bundle = make_ray_bundle("logged", service="ray-logs")
    record = target.deploy(
        "ray-logs", bundle, RayConfig(auth_enabled=False, timeout=240), show_output=True
    )
    shown = capsys.readouterr().out
    assert "1 of 1 replicas running" in shown
    assert "Healthy at http://127.0.0.1:" in shown
    answer = requests.post(str(record.scoring_uri), json={"data": [[0.0] * 10]}, timeout=30)
    assert answer.json()["tag"] == "logged"
    logs = target.logs("ray-logs")
    assert "init of logged" in logs
    assert "POST /ray-logs/score 200" in logs
    assert "ray-logs" in session.application_names()

    target.delete("ray-logs")
    assert "ray-logs" not in session.application_names()
    with pytest.raises(ServiceNotFoundError):
        ray_workspace.services.get("ray-logs")
    assert not Path(bundle.path).exists()
    assert not (Path(ray_workspace.services_dir) / "ray-logs").exists()
    gone = requests.post(str(record.scoring_uri), json={"data": [[0.0] * 10]}, timeout=30)
    assert gone.status_code == 404
    target.delete("ray-logs")  # idempotent


def test_stop_cluster_ends_every_process_it_started(
    tmp_path: Path, diabetes: tuple[Any, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    """`nbdeploy ray stop` (stop_cluster()) ends the head and every Ray process it
    started, by PID; the services on it are then reported Failed. This process, a
    driver of that cluster, leaves it first (a driver whose cluster is gone ends its
    own process a minute later: a kernel would die)."""
    import psutil
    import ray

    from nbdeploy.cli import main
    from nbdeploy.targets.ray import cluster_status, stop_cluster
    from nbdeploy.targets.ray.cluster import EmbeddedCluster

    workspace = Workspace(tmp_path / "ws")
    make = bundle_factory(workspace, *diabetes)
    target = RayTarget(workspace)
    before = {p.pid for p in psutil.process_iter()}
    target.deploy("ray-stop", make("s", service="ray-stop"), RayConfig(auth_enabled=False))
    status = cluster_status(workspace)
    assert status is not None
    assert status["address"].startswith("127.0.0.1:")
    started = {p.pid for p in psutil.process_iter()} - before
    assert status["pid"] in started

    assert main(["--workspace", str(workspace.path), "ray", "status"]) == 0
    assert f"Ray cluster at {status['address']}" in capsys.readouterr().out
    assert ray.is_initialized()
    assert main(["--workspace", str(workspace.path), "ray", "stop"]) == 0
    assert "stopped the workspace's Ray cluster" in capsys.readouterr().out
    assert not ray.is_initialized()
    assert "RAY_AUTH_MODE" not in os.environ  # the cluster's token settings are taken back
    left = [p for p in psutil.process_iter() if p.pid in started and p.status() != "zombie"]
    assert left == []
    assert cluster_status(workspace) is None
    assert not Path(EmbeddedCluster(workspace.run_dir).temp_dir).exists()
    assert target.get("ray-stop").state is ServiceState.FAILED
    assert stop_cluster(workspace) is False
    target.delete("ray-stop")
