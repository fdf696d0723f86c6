"""The local target against real server processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    ServiceExistsError,
    ServiceNotFoundError,
)
from nbdeploy.targets import get_target
from nbdeploy.targets.local import LocalConfig, LocalTarget
from nbdeploy.targets.local.target import RESTART_LIMIT
from nbdeploy.targets.process.supervisor import ProcessId
from nbdeploy.targets.process.warm import ensure_warm_server, warm_server_status

from .conftest import BundleFactory

pytestmark = pytest.mark.integration


def _pid(record: Any, key: str = "process") -> int:
    return int(record.config[key]["pid"])


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Poll until /proc/<pid> disappears (the parent reaped it)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _score(uri: str, rows: np.ndarray) -> dict[str, Any]:
    response = requests.post(uri, json={"data": rows.tolist()}, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "plain"])
def test_deploy_scores_and_delete_leaves_no_process(
    target: LocalTarget,
    make_bundle: BundleFactory,
    diabetes: tuple[Any, np.ndarray],
    workspace: Workspace,
    warm: bool,
) -> None:
    model, rows = diabetes
    bundle = make_bundle()
    record = target.deploy("svc", bundle, LocalConfig(warm_start=warm))

    assert record.state is ServiceState.HEALTHY
    assert record.config["mode"] == ("warm" if warm else "plain")
    assert record.models == ("diabetes:1",)
    assert record.scoring_uri is not None
    assert record.scoring_uri.startswith("http://127.0.0.1:")
    answer = _score(record.scoring_uri, rows)
    np.testing.assert_allclose(answer["predictions"], model.predict(rows))
    assert workspace.services.get("svc").state is ServiceState.HEALTHY
    pid = _pid(record)
    # Its own session: a Ctrl-C in the kernel (our process group) never reaches it.
    assert os.getsid(pid) == pid
    assert os.getsid(pid) != os.getsid(0)
    assert "NBDEPLOY-READY" in target.logs("svc")

    target.delete("svc")
    assert _wait_gone(pid)
    with pytest.raises(ServiceNotFoundError):
        workspace.services.get("svc")
    assert not Path(bundle.path).exists()
    target.delete("svc")  # idempotent


def test_state_from_a_new_process(target: LocalTarget, make_bundle: BundleFactory) -> None:
    record = target.deploy("svc", make_bundle())
    code = (
        "import json, sys\n"
        "from nbdeploy.core.workspace import Workspace\n"
        "from nbdeploy.targets import get_target\n"
        "r = get_target('local', Workspace(sys.argv[1])).get('svc')\n"
        "print(json.dumps({'state': r.state.value, 'uri': r.scoring_uri}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target.workspace.path)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    seen = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert seen == {"state": "Healthy", "uri": record.scoring_uri}


def test_init_failure_is_failed_with_reason(
    target: LocalTarget, make_bundle: BundleFactory, workspace: Workspace
) -> None:
    bundle = make_bundle(init_extra="raise ValueError('no model file here')")
    with pytest.raises(DeploymentError, match="ValueError: no model file here"):
        target.deploy("svc", bundle)
    record = workspace.services.get("svc")
    assert record.state is ServiceState.FAILED
    assert record.error is not None
    assert "ValueError: no model file here" in record.error
    assert "Traceback" in target.logs("svc")
    assert _wait_gone(_pid(record))
    assert target.get("svc").state is ServiceState.FAILED


def test_unhealthy_while_stopped(target: LocalTarget, make_bundle: BundleFactory) -> None:
    record = target.deploy("svc", make_bundle())
    pid = _pid(record)
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped = target.get("svc")
        assert stopped.state is ServiceState.UNHEALTHY
        assert stopped.error is not None
    finally:
        os.kill(pid, signal.SIGCONT)
    assert target.get("svc").state is ServiceState.HEALTHY


def _kill_and_reap(target: LocalTarget, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)
    # The warm server records the exit status when it reaps the child.
    exit_file = Path(target.workspace.services_dir) / "svc" / f"exit-{pid}.json"
    deadline = time.monotonic() + 10
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_crashed_server_is_restarted_up_to_the_limit(
    target: LocalTarget, make_bundle: BundleFactory, diabetes: tuple[Any, np.ndarray]
) -> None:
    _, rows = diabetes
    record = target.deploy("svc", make_bundle())
    assert record.scoring_uri is not None
    for attempt in range(1, RESTART_LIMIT + 1):
        _kill_and_reap(target, _pid(record))
        record = target.get("svc")  # looking at the service restarts its server
        assert record.state is ServiceState.HEALTHY, record.error
        restarts = record.config["restarts"]
        assert len(restarts) == attempt
        assert "SIGKILL" in restarts[-1]["reason"]
        answer = requests.post(record.scoring_uri, json={"data": rows.tolist()}, timeout=30)
        assert answer.status_code == 200
    _kill_and_reap(target, _pid(record))
    failed = target.get("svc")
    assert failed.state is ServiceState.FAILED
    assert failed.error is not None
    assert "SIGKILL" in failed.error
    assert f"limit is {RESTART_LIMIT}" in failed.error


def test_update_drops_no_request(
    target: LocalTarget, make_bundle: BundleFactory, diabetes: tuple[Any, np.ndarray]
) -> None:
    _, rows = diabetes
    record = target.deploy("svc", make_bundle(tag="v1"))
    uri = record.scoring_uri
    assert uri is not None
    old_pid = _pid(record)
    tags: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline and len(tags) < 20_000:
            try:
                # A new connection per request, like independent clients.
                response = requests.post(uri, json={"data": rows.tolist()}, timeout=10)
            except requests.RequestException as exc:
                failures.append(repr(exc))
                continue
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text}")
            else:
                tags.append(response.json()["tag"])

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        while len(tags) < 20 and worker.is_alive():
            time.sleep(0.01)
        updated = target.update("svc", make_bundle(tag="v2"))
        seen = len(tags)
        while len(tags) < seen + 20 and worker.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join()

    assert failures == []
    assert updated.generation == 2
    assert updated.scoring_uri == uri
    assert updated.state is ServiceState.HEALTHY
    assert tags[0] == "v1"
    assert tags[-1] == "v2"
    assert _wait_gone(old_pid)
    assert _score(uri, rows)["tag"] == "v2"


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "plain"])
def test_update_serves_on_the_same_listening_socket(
    target: LocalTarget, make_bundle: BundleFactory, warm: bool
) -> None:
    record = target.deploy("svc", make_bundle(tag="v1"), LocalConfig(warm_start=warm))
    first = str(record.config["handover"])
    assert os.path.exists(first)  # offered once the server serves
    updated = target.update("svc", make_bundle(tag="v2"))
    assert "took over the listening socket" in target.logs("svc")
    assert updated.config["mode"] == ("warm" if warm else "plain")
    second = str(updated.config["handover"])
    assert second != first
    assert not os.path.exists(first)  # the old generation withdrew its offer
    assert os.path.exists(second)
    target.delete("svc")
    assert not os.path.exists(second)


def test_failed_update_keeps_the_old_generation(
    target: LocalTarget, make_bundle: BundleFactory, diabetes: tuple[Any, np.ndarray]
) -> None:
    _, rows = diabetes
    record = target.deploy("svc", make_bundle(tag="v1"))
    bad = make_bundle(tag="v2", init_extra="raise RuntimeError('broken v2')")
    with pytest.raises(DeploymentError, match="RuntimeError: broken v2"):
        target.update("svc", bad)
    after = target.get("svc")
    assert after.state is ServiceState.HEALTHY
    assert after.generation == 1
    assert _pid(after) == _pid(record)
    assert "next" not in after.config
    assert record.scoring_uri is not None
    assert _score(record.scoring_uri, rows)["tag"] == "v1"


def test_warm_server_restarts_after_being_killed(
    target: LocalTarget, make_bundle: BundleFactory, workspace: Workspace
) -> None:
    first = ensure_warm_server(workspace, wait=True)
    assert first is not None
    os.kill(int(first["pid"]), signal.SIGKILL)
    assert _wait_gone(int(first["pid"]))
    record = target.deploy("svc", make_bundle())
    assert record.state is ServiceState.HEALTHY
    assert record.config["mode"] == "warm"
    second = warm_server_status(workspace)
    assert second is not None
    assert second["pid"] != first["pid"]
    assert _pid(record) in second["children"]


def test_port_in_use_is_a_clear_error(
    target: LocalTarget, make_bundle: BundleFactory, workspace: Workspace
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(InvalidArgumentError, match=f"port {port} on 127.0.0.1"):
            target.deploy("svc", make_bundle(), LocalConfig(port=port))
    assert workspace.services.list() == []


def test_given_port_is_used(target: LocalTarget, make_bundle: BundleFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    record = target.deploy("svc", make_bundle(), LocalConfig(port=port))
    assert record.scoring_uri == f"http://127.0.0.1:{port}/score"


def test_missing_bundle_is_a_clear_error(target: LocalTarget, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bundle"
    with pytest.raises(InvalidArgumentError, match="no-such-bundle"):
        target.deploy("svc", missing)


def test_deploy_over_a_running_service_is_refused(
    target: LocalTarget, make_bundle: BundleFactory
) -> None:
    target.deploy("svc", make_bundle())
    with pytest.raises(ServiceExistsError):
        target.deploy("svc", make_bundle())


def test_show_output_prints_states_and_log_lines(
    target: LocalTarget, make_bundle: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    target.deploy("svc", make_bundle(), show_output=True)
    out = capsys.readouterr().out
    assert "svc: Transitioning" in out
    assert "NBDEPLOY-READY" in out
    assert "svc: Healthy" in out


def test_no_wait_then_wait(target: LocalTarget, make_bundle: BundleFactory) -> None:
    record = target.deploy("svc", make_bundle(), wait=False)
    assert record.state is ServiceState.TRANSITIONING
    assert target.wait("svc", 60).state is ServiceState.HEALTHY
    assert [r.name for r in target.list()] == ["svc"]


def test_get_unknown_service(target: LocalTarget) -> None:
    with pytest.raises(ServiceNotFoundError):
        target.get("nope")


def test_registry_of_targets(workspace: Workspace) -> None:
    assert isinstance(get_target("local", workspace), LocalTarget)
    with pytest.raises(InvalidArgumentError, match="unknown deployment target 'mars'"):
        get_target("mars", workspace)


def test_process_id_tells_a_reused_pid_apart() -> None:
    me = ProcessId.of(os.getpid())
    assert me.alive()
    assert me.start_time is not None
    assert not ProcessId(me.pid, me.start_time + 1).alive()


def test_the_kernels_environment_reaches_a_warm_started_service(
    target: LocalTarget, make_bundle: BundleFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It travels in a 0600 file the child reads, not over the warm server's socket.
    monkeypatch.setenv("NBDEPLOY_TEST_SECRET", "s3cr3t")
    check = "assert os.environ['NBDEPLOY_TEST_SECRET'] == 's3cr3t'"
    for attempt in range(3):
        record = target.deploy(f"env{attempt}", make_bundle(init_extra=check))
        assert record.state is ServiceState.HEALTHY
        assert record.config["mode"] == "warm"
    assert not list(Path(target.workspace.services_dir).rglob(".env-*"))
