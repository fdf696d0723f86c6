"""``nbdeploy.profile`` against real local services (``python -m nbdeploy.server``).

One service that burns 20 ms per request (on the wall clock or on its CPU clock, as the
request says; negative values make ``run()`` raise) is deployed once for this module in
its own workspace; the temporary-deployment tests deploy and tear down their own. The
services and the workspace's warm-start server are stopped by PID afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nbdeploy.api import deploy, profile, register
from nbdeploy.cli.profile import add_profile_command
from nbdeploy.core.bundle import InferenceConfig
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError, ModelNotFoundError
from nbdeploy.sdk.model import Model
from nbdeploy.sdk.profile import ProfileReport
from nbdeploy.sdk.webservice import Webservice
from nbdeploy.sdk.workspace import get_workspace
from nbdeploy.workflows.profile import service_pids

pytestmark = pytest.mark.integration

BURN = """\
import time


def init():
    pass


def run(data):
    clock = time.thread_time if data["clock"] == "cpu" else time.perf_counter
    start = clock()
    while clock() - start < 0.02:
        pass
    if any(v < 0 for v in data["values"]):
        raise ValueError("negative value")
    return [2 * v for v in data["values"]]
"""

BALLAST = """\
import numpy as np

ballast = None


def init():
    global ballast
    ballast = np.ones(300 * 2**20 // 8)  # 300 MB, every page touched


def run(data):
    return float(ballast[: len(data)].sum())
"""

BROKEN = """\
def init():
    raise RuntimeError("cannot load the model")


def run(data):
    return data
"""

WALL = json.dumps({"data": {"clock": "wall", "values": [1]}})
CPU = json.dumps({"data": {"clock": "cpu", "values": [1, 2]}})
BAD = json.dumps({"data": {"clock": "wall", "values": [-1]}})


def _cleanup(ws: Workspace) -> None:
    from nbdeploy.targets import shutdown_warm_server

    for record in ws.services.list():
        Webservice._from_record(ws, record).delete()
    shutdown_warm_server(ws)


@pytest.fixture(scope="module")
def burn_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webservice]:
    """The 20 ms service, in a workspace of its own (deployed once: it takes seconds)."""
    root = tmp_path_factory.mktemp("profile-burn")
    ws = get_workspace(root / "ws")
    (root / "score.py").write_text(BURN)
    model = register({"weights": [1, 2]}, "burner", workspace=ws)
    try:
        yield deploy(model, name="burn", score=str(root / "score.py"), workspace=ws)
    finally:
        _cleanup(ws)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh workspace for temporary deployments; every service stopped after."""
    workspace = get_workspace(tmp_path / "ws")
    yield workspace
    _cleanup(workspace)


def test_latency_at_concurrency_one(burn_service: Webservice) -> None:
    result = profile(burn_service, [WALL], count=60)
    assert isinstance(result, ProfileReport)  # renders as a report in a notebook
    assert result.service == "burn"
    assert result.models == ("burner:1",)
    assert result.success_count == 60
    assert result.latency_ms(50) == pytest.approx(20.0, rel=0.3)
    assert result.pids == tuple(service_pids(burn_service.record))


def _scheduler_ns(pids: list[int]) -> tuple[int, int]:
    """Nanoseconds the processes' threads ran, and waited runnable for a CPU
    (``/proc/<pid>/task/<tid>/schedstat``: run time, run-queue wait, slices)."""
    ran = waited = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                run, wait, _ = stat.read_text().split()
                ran, waited = ran + int(run), waited + int(wait)
    return ran, waited


def test_cpu_at_saturation(burn_service: Webservice) -> None:
    pids = service_pids(burn_service.record)
    ran_before, waited_before = _scheduler_ns(pids)
    result = profile(burn_service, [CPU], concurrency=4, duration=2.0)
    ran_after, waited_after = _scheduler_ns(pids)
    ran, waited = ran_after - ran_before, waited_after - waited_before
    assert result.error_counts == {}
    assert result.load_cpu_cores is not None
    # 20 ms of CPU per request, seen from the serving process's CPU time ...
    assert result.load_cpu_cores / result.success_rps == pytest.approx(0.02, rel=0.3)
    # ... and at saturation the one-GIL server asks for about one core. On a busy
    # machine it gets only a share of it and waits runnable for the rest, so the
    # measured cores are scaled by (ran + waited) / ran, the scheduler's own account.
    share = ran / (ran + waited)  # 1.0 on an idle machine
    assert 0.7 <= result.load_cpu_cores / share <= 1.3, (result.load_cpu_cores, share)
    details = result.get_details()
    assert details["requestedCpu"] >= 0.7 * share
    assert details["maxUtilizedCpu"] >= 0.7 * share
    assert details["measuredQueriesPerSecond"] > 0


def test_errors_are_counted_by_status(burn_service: Webservice) -> None:
    result = profile(burn_service, [WALL, WALL, BAD], count=30, concurrency=2)
    assert result.total == 30
    assert result.error_counts == {"500": 10}
    assert result.success_rate == pytest.approx(2 / 3)
    assert result.get_details()["errors"] == {"500": 10}
    assert "500: 10" in result.summary()


def test_dataframe_rows_become_requests(burn_service: Webservice) -> None:
    # Each row becomes {"data": {"columns": [...], "data": [[...]]}}: the script reads
    # data["clock"] and fails on it, so every request answers with an error status.
    frame = pd.DataFrame({"clock": ["wall", "cpu"], "values": [1, 2]})
    result = profile(burn_service, frame, count=4)
    assert result.total == 4
    assert result.success_count == 0
    assert result.state == "Failed"
    assert sum(result.error_counts.values()) == 4


def test_requests_from_a_file(burn_service: Webservice, tmp_path: Path) -> None:
    path = tmp_path / "requests.txt"
    path.write_text(f"{WALL}\n{BAD}\n")
    result = profile(burn_service, path, count=10)
    assert result.error_counts == {"500": 5}


def test_temporary_deployment_measures_memory_and_stores_tags(
    ws: Workspace, tmp_path: Path
) -> None:
    import psutil

    (tmp_path / "score.py").write_text(BALLAST)
    model = register({"weights": [1]}, "big", workspace=ws)
    result = profile(
        "big:1",
        [json.dumps({"data": [1, 2]})],
        count=20,
        inference_config=InferenceConfig(entry_script=tmp_path / "score.py"),
        store_tags=True,
        workspace=ws,
    )
    assert result.success_count == 20
    assert result.peak_memory_bytes is not None
    assert result.peak_memory_bytes >= 300 * 2**20
    assert result.hwm_bytes is not None
    assert result.hwm_bytes >= 300 * 2**20
    assert result.recommendation.memory_gb is not None
    assert result.recommendation.memory_gb >= 0.5
    # The temporary service is gone, process and record.
    assert ws.services.list() == []
    assert result.pids
    assert not any(psutil.pid_exists(pid) and _is_server(pid) for pid in result.pids)
    tags = Model(ws, model.name).tags
    assert tags["requestedMemoryInGb"] == f"{result.recommendation.memory_gb:g}"
    assert tags["requestedCpu"] == f"{result.recommendation.cpu:g}"


def _is_server(pid: int) -> bool:
    import psutil

    try:
        return "nbdeploy" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def test_reference_form_model_profile(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(BURN)
    model = Model.register(ws, model={"weights": [1]}, model_name="ref")
    # BURN's run(data) takes decoded data; Model.profile's default is the raw body.
    config = InferenceConfig(entry_script=tmp_path / "score.py", input_mode="decoded")
    # The reference's dataset: one string column, one request body per row.
    dataset = pd.DataFrame({"request": [WALL] * 5})
    result = Model.profile(ws, "unique_name", [model], config, input_dataset=dataset, count=10)
    assert isinstance(result, ProfileReport)
    assert result.name == "unique_name"
    assert result.wait_for_completion(False) == "Succeeded"
    details = result.get_details()
    assert details["totalQueries"] == 10
    assert details["successRate"] == 1.0
    assert set(result.get_results()) == {"cpu", "memoryInGB"}
    assert ws.services.list() == []
    with pytest.raises(InvalidArgumentError, match="input_dataset"):
        Model.profile(ws, "x", [model], config)


def test_temporary_deployment_is_removed_when_init_fails(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(BROKEN)
    register({"weights": [1]}, "broken", workspace=ws)
    with pytest.raises(DeploymentError):
        profile(
            "broken",
            [WALL],
            count=1,
            inference_config=InferenceConfig(entry_script=tmp_path / "score.py"),
            workspace=ws,
        )
    assert ws.services.list() == []


def test_bad_arguments_fail_before_deploying(ws: Workspace) -> None:
    with pytest.raises(ModelNotFoundError):
        profile("nothing-registered", [WALL], count=1, workspace=ws)
    with pytest.raises(InvalidArgumentError, match="empty"):
        profile("nothing-registered", [], workspace=ws)
    assert ws.services.list() == []


def test_inference_config_with_a_service_is_refused(burn_service: Webservice) -> None:
    with pytest.raises(InvalidArgumentError, match="inference_config"):
        profile(burn_service, [WALL], inference_config=InferenceConfig(), count=1)


def test_cli_subcommand(burn_service: Webservice, tmp_path: Path, capsys: Any) -> None:
    parser = argparse.ArgumentParser(prog="nbdeploy")
    parser.add_argument("--workspace")
    add_profile_command(parser.add_subparsers(dest="command", required=True))
    requests = tmp_path / "requests.txt"
    requests.write_text(f"{WALL}\n{BAD}\n")
    workspace = str(burn_service.workspace.path)
    argv = ["--workspace", workspace, "profile", "burn", "--data", str(requests)]
    args = parser.parse_args([*argv, "--count", "6", "--json"])
    assert args.func(args) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["totalQueries"] == 6
    assert details["errors"] == {"500": 3}
    args = parser.parse_args([*argv, "--count", "2"])
    assert args.func(args) == 0
    assert "requestedCpu=" in capsys.readouterr().out


def test_profile_magic(
    burn_service: Webservice, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from nbdeploy.notebook.profile_magic import register_profile_magic

    monkeypatch.setenv("NBDEPLOY_HOME", str(burn_service.workspace.path))
    shell = InteractiveShell.instance()
    register_profile_magic(shell)
    shell.user_ns["reqs"] = [WALL, BAD]
    try:
        result = shell.run_line_magic("profile", "burn --data reqs --count 4 --concurrency 2")
        assert isinstance(result, ProfileReport)
        assert result.error_counts == {"500": 2}
        with pytest.raises(UsageError):
            shell.run_line_magic("profile", "burn")
        with pytest.raises(InvalidArgumentError, match="no_such_var"):
            shell.run_line_magic("profile", "burn --data no_such_var")
    finally:
        del shell.user_ns["reqs"]
