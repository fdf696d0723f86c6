"""A two-node Ray cluster on one machine: the workspace's embedded head, and a second
node joining it with ``ray start --address`` (in this test's namespace), offering a
custom resource the head does not have.

Run with ``make test-ray`` (see ``conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError
from nbdeploy.targets.ray import RayConfig, RayTarget, stop_cluster

from .conftest import bundle_factory

pytestmark = [pytest.mark.ray, pytest.mark.integration]

ROW = {"data": [[0.01] * 10]}


def _join_second_node(workspace: Workspace, temp: str) -> subprocess.Popen[bytes]:
    """``ray start --address`` a node with 2 CPUs and 1 ``special`` to the
    workspace's head; returns once the head counts two alive nodes."""
    from nbdeploy.targets.ray import session
    from nbdeploy.targets.ray.cluster import EmbeddedCluster

    head = EmbeddedCluster(workspace.run_dir).current()
    assert head is not None
    ray = str(Path(sys.executable).with_name("ray"))
    command = [
        ray, "start", "--block", f"--address={head.address}", "--node-ip-address=127.0.0.1",
        "--num-cpus=2", '--resources={"special": 1}', "--disable-usage-stats",
        f"--object-store-memory={256 * 1024**2}", f"--temp-dir={temp}",
    ]  # fmt: skip
    env = {**os.environ, **head.driver_env(), "RAY_USAGE_STATS_ENABLED": "0"}
    node = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while len(session.cluster_nodes()) < 2:
        assert node.poll() is None, f"the second node exited with code {node.returncode}"
        assert time.monotonic() < deadline, "the second node did not join within 180 s"
        time.sleep(0.5)
    return node


@pytest.fixture
def two_node_workspace(tmp_path: Path) -> Iterator[tuple[Workspace, list[Any]]]:
    """A fresh workspace; the second node (once started) and the head are stopped by
    their PIDs at the end."""
    workspace = Workspace(tmp_path / "ws")
    nodes: list[Any] = []
    temp = tempfile.mkdtemp(prefix="r2-", dir="/tmp")
    nodes.append(temp)
    yield workspace, nodes
    for node in nodes[1:]:
        node.terminate()
        node.wait(60)
    stop_cluster(workspace)
    shutil.rmtree(temp, ignore_errors=True)


def _placement(name: str) -> list[str]:
    from nbdeploy.targets.ray import session
    from nbdeploy.targets.ray.status import replica_nodes

    return replica_nodes(session.application_details(name))["score"]


def test_replicas_on_both_nodes_and_a_resource_only_one_has(
    two_node_workspace: tuple[Workspace, list[Any]], diabetes: tuple[Any, np.ndarray]
) -> None:
    """A replica needing a resource no node has yet is Unschedulable naming it; once
    a node offering it joins, the service becomes Healthy there. Replicas too big for
    two on one node are placed on both nodes, and both answer."""
    from nbdeploy.targets.ray import session

    workspace, nodes = two_node_workspace
    make = bundle_factory(workspace, *diabetes)
    target = RayTarget(workspace)
    special = RayConfig(auth_enabled=False, ray_actor_options={"resources": {"special": 1}})
    with pytest.raises(DeploymentError, match="Unschedulable") as caught:
        target.deploy("ray-special", make("special", service="ray-special"), special)
    assert "no node has 1 special" in str(caught.value)

    nodes.append(_join_second_node(workspace, nodes[0]))
    assert target.wait("ray-special", timeout=300).state is ServiceState.HEALTHY
    head_id = next(n["id"] for n in session.cluster_nodes() if n["resources"].get("CPU") == 2.0
                   and "special" not in n["resources"])  # fmt: skip
    second_id = next(n["id"] for n in session.cluster_nodes() if "special" in n["resources"])
    assert _placement("ray-special") == [second_id]

    spread = RayConfig(
        auth_enabled=False, num_replicas=2, ray_actor_options={"num_cpus": 1.5}, timeout=300
    )
    record = target.deploy("ray-spread", make("spread", service="ray-spread"), spread)
    assert sorted(_placement("ray-spread")) == sorted([head_id, second_id])
    with requests.Session() as client:
        tags = {
            client.post(str(record.scoring_uri), json=ROW, timeout=30).json()["tag"]
            for _ in range(10)
        }
    assert tags == {"spread"}
    logs = target.logs("ray-spread")
    assert logs.count("init of spread") == 2

    target.delete("ray-spread")
    target.delete("ray-special")
    assert session.application_names() == []
