"""The Docker target and packages against a real Docker engine.

The engine is the private one of ``scripts/docker-env.sh`` (``$DOCKER_HOST``); images
build with ``--network none`` from wheels made on this machine, on the local base image
``local/python:3.11-slim`` (never pulled), and containers use the host network on
127.0.0.1. Every test shares one dependency layer (same requirements, same wheels).
When the engine cannot be reached the tests fail and say how to start it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.auth import auth_file_path, read_auth_file
from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.environment import Environment
from nbdeploy.core.registry import ModelVersion
from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError, TargetUnavailableError
from nbdeploy.targets.docker import DockerConfig, DockerTarget, connect

pytestmark = [pytest.mark.docker, pytest.mark.integration]

BASE_IMAGE = "local/python:3.11-slim"
START_HINT = 'run `eval "$(bash scripts/docker-env.sh up)"` first (it exports DOCKER_HOST)'

SCORE = """
import os
import pickle

import numpy as np

model = None


def init():
    global model
    {init_extra}
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as fh:
        model = pickle.load(fh)


def run(data):
    return {{"tag": {tag!r}, "predictions": model.predict(np.asarray(data, dtype=float))}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    """The Docker engine of ``$DOCKER_HOST``, with the local base image; fails (never
    skips) with the command that starts it."""
    url = os.environ.get("DOCKER_HOST")
    if not url:
        pytest.fail(f"DOCKER_HOST is not set: no Docker engine for these tests; {START_HINT}")
    try:
        with connect(url) as client:
            client.ping()
            client.images.get(BASE_IMAGE)
    except TargetUnavailableError as exc:
        pytest.fail(f"the Docker engine at {url} is not reachable ({exc.message}); {START_HINT}")
    except Exception as exc:  # docker.errors.ImageNotFound
        pytest.fail(f"the base image {BASE_IMAGE} is not in {url} ({exc}); {START_HINT}")
    yield url
    with connect(url) as client:  # anything a failed test left behind
        for container in client.containers.list(all=True, filters={"label": "nbdeploy.test"}):
            container.remove(force=True)


@pytest.fixture(scope="module")
def diabetes() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    return Ridge().fit(x, y), x[:3]


@pytest.fixture(scope="module")
def environment() -> Environment:
    """The same requirements for every test: one shared dependency layer."""
    import sklearn

    return Environment("docker-tests", "3.11", (f"scikit-learn=={sklearn.__version__}",))


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[Workspace]:
    """One workspace for the module; its services, containers and images go at the end."""
    workspace = Workspace(tmp_path_factory.mktemp("docker-ws"))
    yield workspace
    target = DockerTarget(workspace)
    images: set[str] = set()
    for record in workspace.services.list():
        if record.config.get("image"):
            images.add(str(record.config["image"]))
        target.delete(record.name)
    with connect(engine) as client:
        label = f"nbdeploy.workspace={Path(workspace.path).absolute()}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for image in client.images.list(name="nbdeploy/*"):
            images.update(t for t in image.tags if t.startswith(("nbdeploy/dk-", "nbdeploy/pk-")))
        for tag in images:
            try:
                client.images.remove(tag, force=True)
            except Exception:  # already removed with its service
                continue


@pytest.fixture(scope="module")
def model(ws: Workspace, diabetes: tuple[Any, np.ndarray]) -> ModelVersion:
    return ws.registry.register(diabetes[0], "diabetes", sample_input=diabetes[1])


@pytest.fixture
def make_bundle(
    ws: Workspace, model: ModelVersion, environment: Environment, tmp_path: Path
) -> Callable[..., Bundle]:
    def make(tag: str = "v1", init_extra: str = "pass", service: str = "svc") -> Bundle:
        # The script's name is recorded in bundle.json: equal tags, equal bundles.
        script = tmp_path / uuid.uuid4().hex[:8] / f"score-{tag}.py"
        script.parent.mkdir()
        script.write_text(
            textwrap.dedent(SCORE).format(tag=tag, init_extra=init_extra), encoding="utf-8"
        )
        dest = Path(ws.bundles_dir) / service / uuid.uuid4().hex[:12]
        dest.parent.mkdir(parents=True, exist_ok=True)
        return build_bundle(
            [model], InferenceConfig(script, environment), dest, settings={"service_name": service}
        )

    return make


def _config(**values: Any) -> DockerConfig:
    return DockerConfig(**{"base_image": BASE_IMAGE, "auth_enabled": False, **values})


# --------------------------------------------------------------------------- packages


def test_saved_package_builds_by_hand_and_serves_on_loopback(
    engine: str,
    ws: Workspace,
    model: ModelVersion,
    environment: Environment,
    diabetes: tuple[Any, np.ndarray],
    tmp_path: Path,
) -> None:
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCORE).format(tag="by-hand", init_extra="pass"), "utf-8")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(environment.to_requirements_txt(), "utf-8")
    pkg = nbdeploy.package(
        "diabetes:1", "pk-hand", score=script, environment=requirements, workspace=ws
    )
    folder = pkg.save(tmp_path / "image", wheels=True)
    assert "FROM ${BASE_IMAGE}" in (folder / "Dockerfile").read_text()
    tag = f"nbdeploy/pk-hand:{uuid.uuid4().hex[:8]}"
    docker = shutil.which("docker")
    assert docker is not None, "the docker CLI is missing (apt-get install docker.io)"
    env = {**os.environ, "DOCKER_HOST": engine}
    build = subprocess.run(
        [docker, "build", "--network", "none", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
         "-t", tag, str(folder)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    port = _free_port()
    name = f"pk-hand-{uuid.uuid4().hex[:6]}"
    # The equivalent of `docker run -p 6789:5001 myimage` without leaving loopback.
    subprocess.run(
        [docker, "run", "-d", "--name", name, "--label", "nbdeploy.test=1", "--network", "host",
         "-e", f"PORT={port}", "-e", "HOST=127.0.0.1", tag],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), 60, "the container's GET /")
        rows = diabetes[1]
        answer = requests.post(
            f"http://127.0.0.1:{port}/score", json={"data": rows.tolist()}, timeout=10
        ).json()
        assert answer["tag"] == "by-hand"
        np.testing.assert_allclose(answer["predictions"], diabetes[0].predict(rows))
        inspect = subprocess.run(
            [docker, "inspect", "--format", "{{.Config.User}} {{json .Config.Healthcheck.Test}}",
             tag],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert inspect.startswith("10001:10001 ")
        assert "urllib.request" in inspect
    finally:
        subprocess.run([docker, "rm", "-f", name], env=env, capture_output=True, check=False)
        subprocess.run([docker, "rmi", "-f", tag], env=env, capture_output=True, check=False)


def test_rebuild_after_a_new_script_reuses_the_dependency_layers(
    engine: str, ws: Workspace, model: ModelVersion, environment: Environment, tmp_path: Path
) -> None:
    tags = []
    packages = []
    for tag in ("one", "two"):
        script = tmp_path / f"score-{tag}.py"
        script.write_text(textwrap.dedent(SCORE).format(tag=tag, init_extra="pass"), "utf-8")
        pkg = nbdeploy.Model.package(
            ws,
            [nbdeploy.get_model("diabetes:1", workspace=ws)],
            InferenceConfig(script, environment),
            generate_dockerfile=True,
            image_name="nbdeploy/pk-layers",
            base_image=BASE_IMAGE,
            offline=True,
        )
        tags.append(pkg.build())
        packages.append(pkg)
    first, second = packages
    assert first.state == second.state == "Succeeded"
    assert first.location == tags[0]
    assert second.image_size_bytes is not None
    assert second.image_size_bytes > 100_000_000
    log = second.get_logs().splitlines()
    install = next(i for i, line in enumerate(log) if "-r /build/requirements.txt" in line)
    after = [line.strip() for line in log[install + 1 : install + 4] if line.strip()]
    assert after[0] == "---> Using cache", log[install : install + 4]
    with connect(engine) as client:
        layers = [client.images.get(t).attrs["RootFS"]["Layers"] for t in tags]
    # base, venv (dependencies), server, models, script: the first two are shared, the
    # script's differs. (The server's depends on nbdeploy's source, the models' on it.)
    assert len(layers[0]) == len(layers[1]) >= 5
    assert layers[0][:2] == layers[1][:2]
    assert layers[0][-1] != layers[1][-1]


def test_model_package_without_dockerfile_builds_at_once(
    ws: Workspace, environment: Environment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCORE).format(tag="now", init_extra="pass"), "utf-8")
    pkg = nbdeploy.Model.package(
        ws,
        ["diabetes:1"],
        InferenceConfig(script, environment),
        image_name="nbdeploy/pk-now",
        base_image=BASE_IMAGE,
        offline=True,
        show_output=True,
    )
    assert pkg.location is not None
    assert pkg.location.startswith("nbdeploy/pk-now:")
    pkg.wait_for_creation(show_output=True)
    out = capsys.readouterr().out
    assert "Successfully built" in out
    assert "diabetes: Succeeded" in out  # the package is named after its model


# --------------------------------------------------------------------------- target


def test_deploy_score_logs_limits_update_and_delete(
    engine: str, ws: Workspace, make_bundle: Callable[..., Bundle], diabetes: tuple[Any, np.ndarray]
) -> None:
    target = DockerTarget(ws)
    rows = diabetes[1]
    record = target.deploy(
        "dk-main", make_bundle("v1", service="dk-main"), _config(cpu_cores=0.5, memory_gb=0.75)
    )
    assert record.state is ServiceState.HEALTHY
    assert record.scoring_uri is not None
    assert record.scoring_uri.startswith("http://127.0.0.1:")
    answer = requests.post(record.scoring_uri, json={"data": rows.tolist()}, timeout=10).json()
    assert answer["tag"] == "v1"
    np.testing.assert_allclose(answer["predictions"], diabetes[0].predict(rows))
    assert target.get("dk-main").state is ServiceState.HEALTHY
    assert "NBDEPLOY-READY" in target.logs("dk-main")
    assert record.config["image_size_bytes"] > 0

    with connect(engine) as client:
        host_config = client.containers.get(record.config["container"]).attrs["HostConfig"]
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["Memory"] == int(0.75 * 1024**3)
    assert host_config["NetworkMode"] == "host"

    # The update keeps the scoring URI answering: a client polls it throughout.
    uri = record.scoring_uri
    failures: list[str] = []
    answers: set[str] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                reply = requests.post(uri, json={"data": rows.tolist()}, timeout=10)
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text[:200]}")
                else:
                    answers.add(reply.json()["tag"])
            except requests.RequestException as exc:
                failures.append(repr(exc))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        updated = target.update("dk-main", make_bundle("v2", service="dk-main"))
        _wait_for(lambda: "v2" in answers, 30, "answers of the new version")
    finally:
        stop.set()
        poller.join()
    assert failures == []
    assert updated.generation == 2
    assert updated.scoring_uri == record.scoring_uri
    assert updated.config["container"] != record.config["container"]
    with connect(engine) as client:
        ids = {
            c.id
            for c in client.containers.list(all=True, filters={"label": "nbdeploy.service=dk-main"})
        }
    assert ids == {updated.config["container"]}  # the old container is gone

    target.delete("dk-main")
    assert [r.name for r in target.list()] == []
    with connect(engine) as client:
        assert client.containers.list(all=True, filters={"id": updated.config["container"]}) == []


def test_redeploying_the_same_bundle_reuses_its_image(
    ws: Workspace, make_bundle: Callable[..., Bundle]
) -> None:
    target = DockerTarget(ws)
    first = target.deploy("dk-reuse", make_bundle("same", service="dk-reuse"), _config())
    target.delete("dk-reuse")
    again = target.deploy("dk-reuse", make_bundle("same", service="dk-reuse"), _config())
    assert again.config["image"] == first.config["image"]
    assert again.config["image_reused"] is True
    assert again.state is ServiceState.HEALTHY
    target.delete("dk-reuse", remove_image=True)


def test_key_auth_is_on_by_default_through_the_public_api(
    ws: Workspace, environment: Environment, tmp_path: Path, diabetes: tuple[Any, np.ndarray]
) -> None:
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCORE).format(tag="auth", init_extra="pass"), "utf-8")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(environment.to_requirements_txt(), "utf-8")
    svc = nbdeploy.deploy(
        "diabetes:1",
        "dk-auth",
        score=script,
        environment=requirements,
        config=nbdeploy.DockerWebservice.deploy_configuration(base_image=BASE_IMAGE),
        workspace=ws,
    )
    assert svc.target == "docker"
    assert svc.state == "Healthy"
    assert svc.scoring_uri is not None
    body = {"data": diabetes[1].tolist()}
    assert requests.post(svc.scoring_uri, json=body, timeout=10).status_code == 401
    auth = read_auth_file(auth_file_path(ws.services_dir, "dk-auth"))
    assert auth is not None
    reply = requests.post(
        svc.scoring_uri,
        json=body,
        headers={"Authorization": f"Bearer {auth.primary_key}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["tag"] == "auth"
    svc.delete()


def test_init_failure_is_failed_with_the_reason(
    ws: Workspace, make_bundle: Callable[..., Bundle]
) -> None:
    target = DockerTarget(ws)
    bundle = make_bundle(
        "broken", init_extra="raise RuntimeError('no model here')", service="dk-broken"
    )
    with pytest.raises(DeploymentError, match="no model here"):
        target.deploy("dk-broken", bundle, _config())
    record = target.get("dk-broken")
    assert record.state is ServiceState.FAILED
    assert record.error is not None
    assert "RuntimeError: no model here" in record.error
    assert "Traceback" in target.logs("dk-broken")
    target.delete("dk-broken")


def test_out_of_memory_at_init_is_failed_with_the_reason(
    ws: Workspace, make_bundle: Callable[..., Bundle]
) -> None:
    target = DockerTarget(ws)
    hog = "global hog; hog = b'x' * (1024 ** 3)"  # 1 GiB, far over the 256 MiB limit
    bundle = make_bundle("hog", init_extra=hog, service="dk-oom")
    with pytest.raises(DeploymentError, match="OOM"):
        target.deploy("dk-oom", bundle, _config(memory_gb=0.25))
    record = target.get("dk-oom")
    assert record.state is ServiceState.FAILED
    assert record.error is not None
    assert "out of memory" in record.error
    assert "0.25 GB" in record.error
    target.delete("dk-oom")


def test_more_cpus_than_the_engine_has_is_unschedulable(
    ws: Workspace, make_bundle: Callable[..., Bundle]
) -> None:
    target = DockerTarget(ws)
    with pytest.raises(DeploymentError, match="cannot be placed"):
        target.deploy("dk-big", make_bundle("big", service="dk-big"), _config(cpu_cores=4096))
    record = target.get("dk-big")
    assert record.state is ServiceState.UNSCHEDULABLE
    assert record.error is not None
    assert "4096" in record.error
    target.delete("dk-big")


def test_an_unreachable_engine_says_how_to_start_one(
    workspace: Workspace, make_bundle: Callable[..., Bundle], tmp_path: Path
) -> None:
    target = DockerTarget(workspace)
    config = _config(engine=f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(TargetUnavailableError) as info:
        target.deploy("dk-nowhere", make_bundle("x", service="dk-nowhere"), config)
    assert "cannot reach the Docker engine" in info.value.message
    assert info.value.hint is not None
    assert "scripts/docker-env.sh up" in info.value.hint


def test_without_a_base_image_the_local_base_serves_and_delete_removes_the_image(
    ws: Workspace,
    model: ModelVersion,
    environment: Environment,
    tmp_path: Path,
    diabetes: tuple[Any, np.ndarray],
) -> None:
    """The default base (python:3.11-slim) is not in the engine and is never pulled:
    the documented local base stands in; delete(remove_image=True) removes the image."""
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCORE).format(tag="base", init_extra="pass"), "utf-8")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(environment.to_requirements_txt(), "utf-8")
    svc = nbdeploy.deploy(
        "diabetes:1",
        "dk-base",
        score=script,
        environment=requirements,
        config=nbdeploy.DockerWebservice.deploy_configuration(auth_enabled=False),
        workspace=ws,
    )
    assert svc.state == "Healthy"
    image = svc.record.config["image"]
    with connect(os.environ["DOCKER_HOST"]) as client:
        client.images.get(image)
    svc.delete(remove_image=True)  # used to be a TypeError
    with connect(os.environ["DOCKER_HOST"]) as client, pytest.raises(Exception, match="No such"):
        client.images.get(image)


def test_a_missing_base_image_says_how_to_get_one(
    engine: str, make_bundle: Callable[..., Bundle], tmp_path: Path
) -> None:
    from nbdeploy.core.package import write_build_context
    from nbdeploy.targets.docker import build_image

    context = write_build_context(make_bundle("nobase", service="dk-nobase"), tmp_path / "ctx")
    with connect(engine) as client, pytest.raises(DeploymentError) as info:
        build_image(client, context, "nbdeploy-test/nobase:1", base_image="nbdeploy-test/absent:1")
    assert "is not in the Docker engine, and nbdeploy never pulls" in info.value.message
    assert info.value.hint is not None
    assert "bash scripts/docker-env.sh up" in info.value.hint
