"""The reference's container steps against the real Docker engine.

``Model.package(ws, [model], inference_config)`` + ``package.wait_for_creation(
show_output=True)`` (000:996), ``docker run -p 6789:5001`` and the page's ``requests``
client (000:1072), for the three kinds of entry script of the pages — plain
(003:128), inference-schema (001:250) and raw HTTP (000:1125) — each in its built
image; and ``AciWebservice.deploy_configuration(cpu_cores=..., memory_gb=...,
auth_enabled=...)`` deploying to the docker target with those limits.

The private engine has no network and only the local base image: the
``base_image`` and ``offline_builds`` settings (``NBDEPLOY_BASE_IMAGE``,
``NBDEPLOY_OFFLINE_BUILDS``) say so, and the pages' calls run unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.targets.docker import connect
from tests.compat.test_seed_snippets import block, entry_script, free_port, run
from tests.targets.test_docker import BASE_IMAGE, _answers, _wait_for, engine

pytestmark = [pytest.mark.docker, pytest.mark.integration]

__all__ = ["DOCKER_RUN", "engine"]

#: The blocks this module runs (read by test_every_block_is_accounted_for).
DOCKER_RUN = {"000:996", "000:1072", "003:128", "001:250", "000:1125"}


@pytest.fixture
def aml(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits: tuple[Any, np.ndarray]
) -> Iterator[dict[str, Any]]:
    """A notebook namespace in a temporary folder, whose packages build offline on the
    local base image; its services, containers and images are removed afterwards."""
    import joblib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBDEPLOY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NBDEPLOY_BASE_IMAGE", BASE_IMAGE)
    monkeypatch.setenv("NBDEPLOY_OFFLINE_BUILDS", "true")
    ws = nbdeploy.Workspace()
    joblib.dump(digits[0], "sklearn_mnist_model.pkl")
    ns: dict[str, Any] = {"ws": ws, "images": []}
    run("from nbdeploy.aml import Model", ns)
    yield ns
    for service in nbdeploy.services(workspace=ws):
        image = service.record.config.get("image")
        service.delete()
        if image:
            ns["images"].append(image)
    with connect(engine) as client:
        for tag in ns["images"]:
            try:
                client.images.remove(tag, force=True)
            except Exception:  # already gone with its service
                continue


@pytest.fixture(scope="module")
def digits() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    return LogisticRegression(max_iter=3000).fit(x[:, :10], y), x[:2, :10]


def _environment() -> nbdeploy.Environment:
    """What the three scripts import, one shared dependency layer for their images."""
    import joblib
    import sklearn

    return nbdeploy.Environment(
        "aml-docker",
        "3.11",
        (
            f"scikit-learn=={sklearn.__version__}",
            f"joblib=={joblib.__version__}",
            "inference-schema[numpy-support]==1.8",
        ),
    )


def _docker(engine: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    assert docker is not None, "the docker CLI is missing (apt-get install docker.io)"
    env = {**os.environ, "DOCKER_HOST": engine}
    return subprocess.run(
        [docker, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


SCRIPTS = {
    "plain": ("003:128", "sklearn_mnist"),
    "inference-schema": ("001:250", "sklearn_regression_model.pkl"),
    "rawhttp": ("000:1125", "sklearn_mnist"),
}


@pytest.mark.parametrize("kind", list(SCRIPTS))
def test_model_package_image_answers_like_the_reference(
    aml: dict[str, Any], engine: str, digits: tuple[Any, np.ndarray], kind: str
) -> None:
    key, model_name = SCRIPTS[kind]
    aml["model"] = nbdeploy.Model.register(
        aml["ws"], model_path="sklearn_mnist_model.pkl", model_name=model_name
    )
    entry_script(key, "score.py")
    aml["inference_config"] = nbdeploy.InferenceConfig(
        entry_script="score.py", environment=_environment()
    )
    out = run(block("000:996"), aml)
    package = aml["package"]
    aml["images"].append(package.location)
    assert "Succeeded" in out

    # docker run -p 6789:5001 --name mycontainer <imageid>, on loopback (host network).
    port = free_port()
    name = f"mycontainer-{uuid.uuid4().hex[:6]}"
    started = _docker(
        engine, "run", "-d", "--name", name, "--label", "nbdeploy.test=1", "--network", "host",
        "-e", f"PORT={port}", "-e", "HOST=127.0.0.1", str(package.location),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), 120, "the container's GET /")
        out = run(block("000:1072", ("localhost:6789", f"localhost:{port}")), aml)
        rows = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
        expected = digits[0].predict(np.array(rows)).tolist()
        answer = json.loads(out)
        if kind == "plain":
            assert json.loads(answer) == expected  # run() returned json.dumps(...)
        elif kind == "inference-schema":
            assert answer == expected
            swagger = requests.get(f"http://127.0.0.1:{port}/swagger.json", timeout=30).json()
            data = swagger["definitions"]["ServiceInput"]
            assert data["example"] == {"data": [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
            assert data["properties"]["data"]["items"]["maxItems"] == 10
            wide = requests.post(
                f"http://127.0.0.1:{port}/score", json={"data": [[1, 2, 3]]}, timeout=30
            )
            assert wide.status_code == 422
            assert "expected shape (None, 10)" in wide.json()["message"]
        else:
            assert answer == json.loads(json.dumps({"data": rows}))  # the body, echoed
        logs = _docker(engine, "logs", name).stdout + _docker(engine, "logs", name).stderr
        if kind == "inference-schema":
            assert "schema decorators from inference-schema 1.8" in logs  # the real one
    finally:
        _docker(engine, "rm", "-f", name)


def test_aci_configuration_deploys_a_container_with_its_limits(
    aml: dict[str, Any], engine: str, digits: tuple[Any, np.ndarray]
) -> None:
    model = nbdeploy.Model.register(
        aml["ws"], model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist"
    )
    entry_script("003:128", "score.py")
    config = nbdeploy.InferenceConfig(entry_script="score.py", environment=_environment())
    aci = nbdeploy.AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, auth_enabled=True)
    service = nbdeploy.Model.deploy(aml["ws"], "aci-mnist", [model], config, aci)
    service.wait_for_deployment(show_output=True)
    assert service.state == "Healthy"
    assert service.compute_type == "DOCKER"
    with connect(engine) as client:
        host = client.containers.get(service.record.config["container"]).attrs["HostConfig"]
    assert host["NanoCpus"] == 1_000_000_000
    assert host["Memory"] == 1024**3
    test_sample = bytes(json.dumps({"data": digits[1].tolist()}), encoding="utf8")
    assert json.loads(service.run(input_data=test_sample)) == digits[0].predict(digits[1]).tolist()
    assert service.auth_enabled
    anonymous = requests.post(service.scoring_uri or "", data=test_sample, timeout=30)
    assert anonymous.status_code == 401
    assert [s.name for s in nbdeploy.Webservice.list(aml["ws"], compute_type="ACI")] == [
        "aci-mnist"
    ]
