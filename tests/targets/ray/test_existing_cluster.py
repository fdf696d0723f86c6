"""Services on a Ray cluster nbdeploy did not start: a head started here with
``ray start --head`` (as a user or an administrator would), reached by
``address="auto"``, by ``host:port`` and by ``ray://host:port`` (Ray Client).

The head runs in this test's network namespace with a ``RAY_TMPDIR`` of its own, so
the ``ray_current_cluster`` file that ``"auto"`` reads is this head's and no other's.
It is stopped by the PIDs this module started — never ``ray stop``.

Run with ``make test-ray`` (see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.targets.ray import RayConfig, cluster_status
from nbdeploy.targets.ray.cluster import free_port

from .conftest import SCORE

pytestmark = [pytest.mark.ray, pytest.mark.integration]

ROW = {"data": [[0.01] * 10]}


@dataclass(frozen=True)
class UserCluster:
    """A head started with ``ray start --head``: its GCS and Ray Client addresses."""

    gcs: str
    client: str
    ray_tmpdir: str
    process: subprocess.Popen[bytes]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the ``ray start`` process this module started, then what is left of the
    process group it leads (its session was started for it alone)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        time.sleep(2)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def _start_head(ray_tmpdir: str, inherit: bool = False) -> UserCluster | str:
    """``ray start --head`` with free GCS and Ray Client ports; the cluster once it
    runs, or the end of its output if it exited first. ``inherit``: with this
    process's whole environment, as a notebook's ``subprocess`` call would start it
    (else without Ray's address and authentication settings)."""
    gcs_port, client_port = free_port(), free_port()
    ray = str(Path(sys.executable).with_name("ray"))
    command = [
        ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        f"--port={gcs_port}", f"--ray-client-server-port={client_port}",
        "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
        f"--object-store-memory={256 * 1024**2}",
    ]  # fmt: skip
    env = {
        k: v
        for k, v in os.environ.items()
        if inherit or not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))
    }
    # Ray Client waits 30 s for the driver it starts per client; on 2 cores shared
    # with other tests that driver's start can take longer (the hint nbdeploy gives).
    env.update(
        RAY_TMPDIR=ray_tmpdir,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="180",
    )
    log_path = Path(ray_tmpdir) / "head.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    cluster = UserCluster(
        f"127.0.0.1:{gcs_port}", f"ray://127.0.0.1:{client_port}", ray_tmpdir, process
    )
    address_file = Path(ray_tmpdir) / "ray" / "ray_current_cluster"
    deadline = time.monotonic() + 180
    while not address_file.is_file() or address_file.read_text().strip() != cluster.gcs:
        if process.poll() is not None:
            _stop(process)
            return log_path.read_text()[-3000:]
        if time.monotonic() > deadline:
            _stop(process)
            return "ray start --head did not start within 180 s"
        time.sleep(0.5)
    return cluster


@pytest.fixture(scope="module")
def user_cluster() -> Iterator[UserCluster]:
    """A head started with ``ray start --head``: no token authentication (Ray's
    default), 2 CPUs; stopped by PID at the end. A head that does not start is tried
    once more (on 2 shared cores its raylet may give up waiting for its agents)."""
    ray_tmpdir = tempfile.mkdtemp(prefix="nbr-", dir="/tmp")  # short: Ray's sockets
    started = _start_head(ray_tmpdir)
    if isinstance(started, str):
        started = _start_head(ray_tmpdir)
    try:
        assert not isinstance(started, str), started
        yield started
    finally:
        if not isinstance(started, str):
            _stop(started.process)
        shutil.rmtree(ray_tmpdir, ignore_errors=True)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def _deploy_and_delete(
    workspace: Workspace, diabetes: tuple[Any, np.ndarray], name: str, address: str
) -> None:
    """Deploy ``name`` to the cluster at ``address``, check it serves from there and
    that no embedded cluster was started, then delete it."""
    from nbdeploy.targets.ray import session

    model, rows = diabetes
    workspace.registry.register(model, "diabetes", sample_input=rows)
    script = workspace.path / f"score-{name}.py"
    script.write_text(textwrap.dedent(SCORE).format(tag=name, init_extra="pass"))
    config = RayConfig(address=address, port=free_port(), auth_enabled=False, timeout=300)
    service = nbdeploy.deploy("diabetes", name, score=script, config=config, workspace=workspace)
    try:
        assert service.state == "Healthy"
        assert service.scoring_uri.startswith("http://127.0.0.1:")
        answer = requests.post(service.scoring_uri, json=ROW, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["tag"] == name
        assert name in session.application_names()
        assert cluster_status(workspace) is None  # the workspace started no cluster
        record = workspace.services.get(name)
        assert record.config["address"] == address
    finally:
        service.delete()
    assert name not in session.application_names()
    gone = requests.post(service.scoring_uri, json=ROW, timeout=30)
    assert gone.status_code == 404


def test_auto_finds_the_cluster_started_on_this_machine(
    user_cluster: UserCluster,
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``address="auto"`` joins the cluster ``ray start`` last started here (the one
    its ``ray_current_cluster`` file names), as ``ray.init("auto")`` does."""
    monkeypatch.setenv("RAY_TMPDIR", user_cluster.ray_tmpdir)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    _deploy_and_delete(workspace, diabetes, "ray-auto-addr", "auto")


def test_host_port_address(
    user_cluster: UserCluster, workspace: Workspace, diabetes: tuple[Any, np.ndarray]
) -> None:
    """``address="host:port"``: the cluster's GCS address."""
    _deploy_and_delete(workspace, diabetes, "ray-gcs-addr", user_cluster.gcs)


def test_ray_client_address(
    user_cluster: UserCluster, workspace: Workspace, diabetes: tuple[Any, np.ndarray]
) -> None:
    """``address="ray://host:port"``: the cluster's Ray Client server."""
    _deploy_and_delete(workspace, diabetes, "ray-client-addr", user_cluster.client)


def test_ray_client_after_the_embedded_cluster(
    ray_workspace: Workspace,
    make_ray_bundle: Any,
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
) -> None:
    """A process that is a driver of the embedded cluster starts a head itself (with
    its own environment, as a notebook's ``subprocess`` call does) and deploys to it by
    ``ray://``. The embedded cluster's token settings were left in this process's
    environment while it was connected, so that head demanded a token nbdeploy does
    not send to it: Ray Client failed with "SpecificServer startup failed"."""
    from nbdeploy.targets.ray import RayTarget

    target = RayTarget(ray_workspace)
    bundle = make_ray_bundle("before-client", service="ray-before-client")
    target.deploy("ray-before-client", bundle, RayConfig(auth_enabled=False, timeout=300))
    ray_tmpdir = tempfile.mkdtemp(prefix="nbr-", dir="/tmp")
    started = _start_head(ray_tmpdir, inherit=True)
    if isinstance(started, str):  # on 2 shared cores a head may not start: once more
        started = _start_head(ray_tmpdir, inherit=True)
    try:
        assert not isinstance(started, str), started
        try:
            _deploy_and_delete(workspace, diabetes, "ray-client-after", started.client)
        except Exception as exc:  # the Ray Client server's own account, for the reader
            logs = sorted(Path(ray_tmpdir).glob("ray/session_latest/logs/ray_client_server*"))
            told = "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in logs)
            raise AssertionError(f"{exc}\n{told}") from exc
    finally:
        if not isinstance(started, str):
            _stop(started.process)
        shutil.rmtree(ray_tmpdir, ignore_errors=True)
        target.delete("ray-before-client")
