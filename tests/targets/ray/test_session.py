"""This process as a Ray driver: another process connected to the embedded cluster
outlives `nbdeploy ray stop`, and a failed `ray://` connection leaves this process
usable.

Run with ``make test-ray`` (see ``conftest.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbdeploy.core.workspace import Workspace
from nbdeploy.targets.ray import RayConfig, RayTarget, stop_cluster

from .conftest import bundle_factory

pytestmark = [pytest.mark.ray, pytest.mark.integration]

#: Ray's own GCS reconnect timeout (s), after which it ends a driver's process.
RAY_DEFAULT_GCS_RECONNECT_TIMEOUT_S = 60

#: What starts the driver's answer lines (Ray writes other lines to its output).
ANSWER = "ANSWER "

#: A second process: a driver of the workspace's cluster (through a service's state),
#: then answers commands on stdin with one JSON line each, after ``ANSWER``.
DRIVER = textwrap.dedent(
    """
    import json, sys
    from nbdeploy.core.workspace import Workspace
    from nbdeploy.exceptions import NbdeployError
    from nbdeploy.targets.ray import RayTarget, session

    workspace, name, address = sys.argv[1:4]
    target = RayTarget(Workspace(workspace))
    print("ANSWER", json.dumps({"state": target.get(name).state.value}), flush=True)
    for line in sys.stdin:
        try:
            if line.strip() == "get":
                record = target.get(name)
                answer = {"state": record.state.value, "error": record.error}
            else:
                session.connect(address)
                answer = {"connected": True}
        except NbdeployError as exc:
            answer = {"error": exc.message, "hint": exc.hint}
        print("ANSWER", json.dumps(answer), flush=True)
    """
)


def _answer(driver: subprocess.Popen[str], command: str | None = None) -> dict[str, Any]:
    assert driver.stdin is not None
    assert driver.stdout is not None
    if command is not None:
        driver.stdin.write(command + "\n")
        driver.stdin.flush()
    while True:
        line = driver.stdout.readline()
        assert line, f"the driver process ended (code {driver.wait(30)})"
        # Ray writes its own news to a driver's output too (that the head's node was
        # marked dead): only the answer lines count.
        if line.startswith(ANSWER):
            answer: dict[str, Any] = json.loads(line[len(ANSWER) :])
            return answer


def test_another_driver_outlives_stop_cluster(
    tmp_path: Path, diabetes: tuple[Any, np.ndarray]
) -> None:
    """A second process connected to the embedded cluster (a user's other kernel) is
    still alive well after Ray's GCS reconnect timeout once `stop_cluster` stopped the
    cluster (Ray used to end it then), and its next nbdeploy calls say what happened."""
    workspace = Workspace(tmp_path / "ws")
    target = RayTarget(workspace)
    make = bundle_factory(workspace, *diabetes)
    target.deploy("ray-driver", make("d", service="ray-driver"), RayConfig(auth_enabled=False))
    head = json.loads((Path(workspace.run_dir) / "ray-head.json").read_text())["address"]
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(workspace.path), "ray-driver", head],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _answer(driver) == {"state": "Healthy"}
        assert stop_cluster(workspace) is True
        # Past Ray's own timeout, with room: the driver must still be there.
        deadline = time.monotonic() + RAY_DEFAULT_GCS_RECONNECT_TIMEOUT_S + 45
        while time.monotonic() < deadline:
            assert driver.poll() is None, "the driver process died after the cluster stopped"
            time.sleep(1)
        gone = _answer(driver, "get")
        assert gone["state"] == "Failed"
        assert "not running" in gone["error"]
        stranded = _answer(driver, "connect")
        assert "has stopped" in stranded["error"], stranded
        assert "restart" in stranded["hint"]
        assert driver.poll() is None
    finally:
        if driver.stdin is not None:
            driver.stdin.close()
        driver.wait(60)
        if driver.stdout is not None:
            driver.stdout.close()
        stop_cluster(workspace)
        target.delete("ray-driver")


def test_a_failed_ray_client_connection_leaves_this_process_usable(
    ray_workspace: Workspace, make_ray_bundle: Any
) -> None:
    """A ``ray.init("ray://...")`` that fails leaves Ray in client mode, and the
    process's next ``ray.init`` (here: to the workspace's embedded cluster) failed with
    a bare ``AssertionError``. The failed connection is now undone."""
    from nbdeploy.exceptions import TargetUnavailableError
    from nbdeploy.targets.ray import session
    from nbdeploy.targets.ray.cluster import free_port

    nowhere = f"ray://127.0.0.1:{free_port()}"
    with pytest.raises(
        TargetUnavailableError, match=f"cannot connect to the Ray cluster at {nowhere}"
    ):
        session.connect(nowhere)
    target = RayTarget(ray_workspace)
    bundle = make_ray_bundle("after-failed-client", service="ray-after-failed")
    try:
        record = target.deploy("ray-after-failed", bundle, RayConfig(auth_enabled=False))
        assert record.state.value == "Healthy", record.error
    finally:
        target.delete("ray-after-failed")
