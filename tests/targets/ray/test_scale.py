"""Scaling, kernel restarts, rolling updates and versions on the embedded cluster.

Run with ``make test-ray`` (see ``conftest.py``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections import Counter
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.targets.ray import RayConfig, RayTarget

from .conftest import BundleFactory

pytestmark = [pytest.mark.ray, pytest.mark.integration]

ROW = {"data": [[0.01] * 10]}


def _running(name: str, deployment: str = "score") -> int:
    from nbdeploy.targets.ray import session

    app = session.application_details(name) or {}
    replicas = app["deployments"][deployment]["replicas"]
    return sum(1 for r in replicas if str(r["state"]).endswith("RUNNING"))


def test_replicas_survive_a_kernel_restart_and_update_without_a_failed_request(
    ray_workspace: Workspace, make_ray_bundle: BundleFactory
) -> None:
    """A service deployed with 2 replicas by one Python process (a kernel that then
    exits) is found by the next one through the workspace; a rolling update under a
    request loop answers every request, first from the old bundle, then the new."""
    first = make_ray_bundle("old", service="ray-roll")
    kernel = textwrap.dedent(
        f"""
        from nbdeploy.core.workspace import Workspace
        from nbdeploy.targets.ray import RayConfig, RayTarget
        target = RayTarget(Workspace({str(ray_workspace.path)!r}))
        record = target.deploy("ray-roll", {str(first.path)!r},
                               RayConfig(num_replicas=2, auth_enabled=False))
        print(record.state.value)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", kernel], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("Healthy")

    target = RayTarget(ray_workspace)
    record = target.get("ray-roll")
    try:
        assert record.state is ServiceState.HEALTHY
        assert _running("ray-roll") == 2
        url = str(record.scoring_uri)
        assert requests.post(url, json=ROW, timeout=30).json()["tag"] == "old"

        answers: Counter[Any] = Counter()
        stop = threading.Event()

        def load() -> None:
            with requests.Session() as client:
                while not stop.is_set():
                    try:
                        answer = client.post(url, json=ROW, timeout=60)
                    except requests.RequestException as exc:  # counted as a failure
                        answers[repr(exc)] += 1
                        continue
                    answers[answer.json()["tag"] if answer.ok else answer.status_code] += 1

        loop = threading.Thread(target=load)
        loop.start()
        try:
            updated = target.update("ray-roll", make_ray_bundle("new", service="ray-roll"))
            after = requests.post(url, json=ROW, timeout=30).json()["tag"]
        finally:
            stop.set()
            loop.join(120)
        assert updated.generation == record.generation + 1
        assert after == "new"
        assert set(answers) <= {"old", "new"}, answers
        assert answers["old"] > 0
        assert _running("ray-roll") == 2
    finally:
        target.delete("ray-roll")


def test_autoscaling_settings_reach_serve(
    ray_workspace: Workspace, make_ray_bundle: BundleFactory
) -> None:
    """Autoscaling, reservations, max_ongoing_requests and route_prefix are what
    Serve runs the deployment with; profile() measures the service through Serve."""
    from nbdeploy.targets.ray import session

    target = RayTarget(ray_workspace)
    config = RayConfig(
        autoscaling={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 3},
        ray_actor_options={"num_cpus": 0.2, "memory": 100 * 1024**2},
        max_ongoing_requests=7,
        route_prefix="/scaled",
        auth_enabled=False,
    )
    record = target.deploy("ray-auto", make_ray_bundle("auto", service="ray-auto"), config)
    try:
        assert str(record.scoring_uri).endswith("/scaled/score")
        assert requests.post(str(record.scoring_uri), json=ROW, timeout=30).ok
        app = session.application_details("ray-auto") or {}
        deployed = app["deployments"]["score"]["deployment_config"]
        autoscaling = deployed["autoscaling_config"]
        assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (1, 2)
        assert autoscaling["target_ongoing_requests"] == 3
        assert deployed["max_ongoing_requests"] == 7
        assert deployed["ray_actor_options"]["num_cpus"] == 0.2
        assert deployed["ray_actor_options"]["memory"] == 100 * 1024**2

        service = nbdeploy.get_service("ray-auto", workspace=ray_workspace)
        report = nbdeploy.profile(
            service, np.zeros((4, 10)), concurrency=2, count=20, workspace=ray_workspace
        )
        assert report.total == 20
        assert report.success_count == 20
    finally:
        target.delete("ray-auto")


def test_versions_share_traffic_and_roll_back(
    ray_workspace: Workspace, make_ray_bundle: BundleFactory
) -> None:
    """add_version puts a router in front of per-version deployments on the same
    URI; set_traffic moves the weights; rollback sends everything to the primary."""
    target = RayTarget(ray_workspace)
    record = target.deploy(
        "ray-ab", make_ray_bundle("one", service="ray-ab"), RayConfig(auth_enabled=False)
    )
    url = str(record.scoring_uri)

    def tags(count: int) -> Counter[str]:
        with requests.Session() as client:
            return Counter(
                client.post(url, json=ROW, timeout=30).json()["tag"] for _ in range(count)
            )

    try:
        target.add_version("ray-ab", "v2", make_ray_bundle("two", service="ray-ab"), weight=50)
        assert target.traffic("ray-ab") == {"v1": 50, "v2": 50}
        assert set(tags(40)) == {"one", "two"}
        pinned = requests.post(url, json=ROW, headers={"x-nbdeploy-version": "v2"}, timeout=30)
        assert pinned.json()["tag"] == "two"
        assert pinned.headers["x-nbdeploy-version"] == "v2"

        target.set_traffic("ray-ab", {"v1": 0, "v2": 100})
        assert set(tags(10)) == {"two"}

        rolled = target.rollback("ray-ab")
        assert rolled.state is ServiceState.HEALTHY
        assert target.traffic("ray-ab") == {"v1": 100}
        assert set(tags(10)) == {"one"}
    finally:
        target.delete("ray-ab")
