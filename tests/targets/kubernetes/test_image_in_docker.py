"""The image the Kubernetes target builds, run the way its pod spec says — in a real
Docker engine, since no kubelet can run here.

The target builds the image with the Docker target's packaging (the private engine
of ``scripts/docker-env.sh``, base image ``local/python:3.11-slim``, offline), applies
its objects to the emulated API server, and the test then starts that image with
the Deployment's container spec: its command, environment, user and group (the pod's
``runAsUser``/``fsGroup``), a read-only root filesystem with ``/tmp`` as the only
writable place, every capability dropped, no privilege escalation, the CPU and memory
limits, and the Secret's ``auth.json`` mounted read-only as the kubelet mounts it
(root-owned, group ``fsGroup``, mode 0440). One deviation, for this machine's rule
that servers bind loopback only: ``--host 0.0.0.0 --port 5001`` becomes
``--host 127.0.0.1 --port <free port>`` on the host network.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy import AksWebservice
from nbdeploy.core.environment import Environment
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import TargetUnavailableError
from nbdeploy.targets.docker import connect

from .conftest import KMOCK
from .emulator import DEPLOYMENTS, SECRETS, AutoController

pytestmark = [KMOCK, pytest.mark.asyncio, pytest.mark.docker, pytest.mark.integration]

BASE_IMAGE = "local/python:3.11-slim"
START_HINT = 'run `eval "$(bash scripts/docker-env.sh up)"` first (it exports DOCKER_HOST)'
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
def engine() -> str:
    """The Docker engine of ``$DOCKER_HOST`` with the local base image; fails (never
    skips) with the command that starts it."""
    url = os.environ.get("DOCKER_HOST")
    if not url:
        pytest.fail(f"DOCKER_HOST is not set: no Docker engine for this test; {START_HINT}")
    try:
        with connect(url) as client:
            client.images.get(BASE_IMAGE)
    except TargetUnavailableError as exc:
        pytest.fail(f"the Docker engine at {url} is not reachable ({exc.message}); {START_HINT}")
    except Exception as exc:  # docker.errors.ImageNotFound
        pytest.fail(f"the base image {BASE_IMAGE} is not in {url} ({exc}); {START_HINT}")
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secret_volume(secret: dict[str, Any], folder: Path, group: int) -> Path:
    """The Secret's files as the kubelet mounts them with ``fsGroup``."""
    folder.mkdir()
    for key, value in secret["data"].items():
        path = folder / key
        path.write_bytes(base64.b64decode(value))
        os.chown(path, 0, group)
        path.chmod(0o440)
    return folder


def _run_like_the_pod(client: Any, deployment: dict[str, Any], auth_dir: Path, port: int) -> Any:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = pod["securityContext"]
    command = list(container["command"])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    limits = container["resources"]["limits"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    return client.containers.run(
        container["image"],
        command=command,
        detach=True,
        network_mode="host",
        user=f"{security['runAsUser']}:{security['runAsGroup']}",
        group_add=[str(security["fsGroup"])],
        read_only=container["securityContext"]["readOnlyRootFilesystem"],
        tmpfs={"/tmp": "size=256m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        environment={e["name"]: e["value"] for e in container["env"]},
        volumes={str(auth_dir): {"bind": "/var/run/nbdeploy/auth", "mode": "ro"}},
        nano_cpus=int(limits["cpu"].rstrip("m")) * 1_000_000,
        mem_limit=f"{int(limits['memory'].rstrip('Mi'))}m",
        labels={"nbdeploy.test": "kubernetes-pod-spec"},
    )


def _wait_healthy(url: str, container: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.2)
    logs = container.logs().decode("utf-8", "replace")[-3000:]
    raise AssertionError(f"the pod's container never answered GET / ({container.status}):\n{logs}")


async def test_built_image_serves_under_the_pods_security_settings(
    engine: str,
    kubeconfig: str,
    cluster: AutoController,
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    tmp_path: Path,
) -> None:
    import sklearn

    model, rows = diabetes
    nbdeploy.register(model, "diabetes", sample_input=rows, workspace=workspace)
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCORE), encoding="utf-8")
    environment = Environment("docker-tests", "3.11", (f"scikit-learn=={sklearn.__version__}",))
    config = AksWebservice.deploy_configuration(
        cpu_cores=1, memory_gb=1, kubeconfig=kubeconfig, base_image=BASE_IMAGE, engine=engine
    )
    svc = await asyncio.to_thread(
        nbdeploy.deploy,
        "diabetes",
        "k8s-image",
        score=script,
        environment=environment,
        config=config,
        workspace=workspace,
    )
    ctl = cluster.controller
    deployment = ctl.get(DEPLOYMENTS, "k8s-image")
    secret = ctl.get(SECRETS, "k8s-image-auth")
    assert deployment is not None
    assert secret is not None
    container_spec = deployment["spec"]["template"]["spec"]["containers"][0]
    image = container_spec["image"]
    assert image.startswith("nbdeploy/k8s-image:")  # built here, by the Docker packaging
    assert container_spec["imagePullPolicy"] == "Never"  # only this engine has it

    port = _free_port()
    auth_dir = _secret_volume(
        secret,
        tmp_path / "secret",
        deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"],
    )
    with connect(engine) as client:
        container = _run_like_the_pod(client, deployment, auth_dir, port)
        try:
            await asyncio.to_thread(_wait_healthy, f"http://127.0.0.1:{port}/", container)
            primary, _ = svc.get_keys()
            url = f"http://127.0.0.1:{port}/score"
            body = {"data": rows.tolist()}
            answer = requests.post(
                url, json=body, headers={"Authorization": f"Bearer {primary}"}, timeout=30
            )
            assert answer.status_code == 200, answer.text
            assert np.allclose(answer.json(), model.predict(rows))
            assert requests.post(url, json=body, timeout=30).status_code == 401
            # Nothing but /tmp is writable, and the server runs as the pod's user.
            probe = container.exec_run(["sh", "-c", "id -u; touch /app/x 2>&1; touch /tmp/x"])
            output = probe.output.decode()
            assert output.splitlines()[0] == "10001"
            assert "Read-only file system" in output
        finally:
            container.remove(force=True)
        await asyncio.to_thread(svc.delete)
        client.images.remove(image, force=True)
