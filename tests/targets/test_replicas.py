"""Replicas of a local service, and updates that let the old generation finish.

``replicas=N`` runs N server processes on the service's one listening socket; state,
logs, update, traffic and delete cover all of them. An update no longer force-kills
an old generation still answering requests it accepted: it gets the time its
settings allow a request (queue wait + scoring timeout).
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.sdk.webservice import Webservice
from nbdeploy.targets.local import LocalConfig, LocalTarget
from nbdeploy.targets.local.servers import STOP_TIMEOUT, servers_of
from nbdeploy.targets.local.traffic import versions_of
from nbdeploy.targets.process.supervisor import ProcessId

pytestmark = pytest.mark.integration

SCRIPT = """
import os, time

def init():
    pass

def run(data):
    if isinstance(data, (int, float)):
        time.sleep(data)
    return {"pid": os.getpid(), "tag": "TAG"}
"""


def _script(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / f"score_{tag}.py"
    path.write_text(textwrap.dedent(SCRIPT).replace("TAG", tag), encoding="utf-8")
    return path


def _pids(svc: Webservice) -> list[int]:
    return [s.process.pid for s in servers_of(svc.record)]


@pytest.fixture
def service(
    target: LocalTarget, workspace: Workspace, diabetes: tuple[Any, np.ndarray], tmp_path: Path
) -> Any:
    model, _ = diabetes
    nbdeploy.register(model, "diabetes", workspace=workspace)

    def deploy(**config: Any) -> Webservice:
        return nbdeploy.deploy(
            "diabetes",
            name="svc",
            score=_script(tmp_path, "v1"),
            config=LocalConfig(**config),
            workspace=workspace,
        )

    return deploy


def _answering_pids(uri: str, count: int = 60) -> set[int]:
    # New connections each time: the kernel hands them to whichever replica accepts.
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: requests.post(uri, json={"data": 0.01}, timeout=30), range(count))
        )
    assert all(a.status_code == 200 for a in answers)
    return {a.json()["pid"] for a in answers}


def test_replicas_share_the_port_and_every_operation_covers_them(
    service: Any, target: LocalTarget, tmp_path: Path
) -> None:
    svc = service(replicas=2)
    assert svc.state == "Healthy"
    pids = _pids(svc)
    assert len(set(pids)) == 2
    assert svc.scoring_uri is not None
    assert _answering_pids(svc.scoring_uri) <= set(pids)
    # Every replica ran init() and says so in the service's log.
    assert svc.get_logs().count("; ready") >= 2, svc.get_logs()
    # A crashed replica is restarted on the same socket.
    os.kill(pids[1], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        record = target.get("svc")
        if record.config.get("restarts"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert record.state is ServiceState.HEALTHY
    restarted = [s.process.pid for s in servers_of(record)]
    assert len(restarted) == 2
    assert pids[0] in restarted
    assert pids[1] not in restarted
    # An update replaces every replica; the old ones stop.
    svc.update(score=str(_script(tmp_path, "v2")))
    new = _pids(svc)
    assert len(set(new)) == 2
    assert not set(new) & set(restarted)
    assert not any(ProcessId(pid, None).alive() for pid in restarted)
    answer = requests.post(svc.scoring_uri, json={"data": 0}, timeout=30).json()
    assert answer["tag"] == "v2"
    # Versions behind a router get their replicas too.
    svc.add_version("v3", score=str(_script(tmp_path, "v3")), weight=50)
    versions = versions_of(svc.record)
    assert [len(v.processes) for v in versions] == [2, 2]
    everything = [p.pid for v in versions for p in v.processes]
    svc.delete()
    assert not any(ProcessId(pid, None).alive() for pid in everything + new)


def test_auto_replicas_are_one_per_usable_core(service: Any) -> None:
    svc = service(replicas="auto")
    assert len(_pids(svc)) == len(os.sched_getaffinity(0))


def test_update_lets_the_old_generation_finish_its_queue(service: Any, tmp_path: Path) -> None:
    # Four 3 s requests queued on one scoring thread take 12 s: longer than the old
    # fixed 10 s before SIGKILL. The settings allow a request 30 s + 30 s.
    svc = service(max_request_wait_time=30000, scoring_timeout_ms=30000)
    assert svc.scoring_uri is not None
    assert STOP_TIMEOUT < 4 * 3
    with ThreadPoolExecutor(4) as pool:
        pending = [
            pool.submit(requests.post, svc.scoring_uri, json={"data": 3}, timeout=120)
            for _ in range(4)
        ]
        time.sleep(0.5)  # all four accepted by the old generation (its queue)
        svc.update(score=str(_script(tmp_path, "v2")))
        answers = [p.result(timeout=120) for p in pending]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert {a.json()["tag"] for a in answers} == {"v1"}


def test_a_five_second_run_does_not_make_the_service_unhealthy(
    service: Any, target: LocalTarget
) -> None:
    svc = service()
    assert svc.scoring_uri is not None
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(requests.post, svc.scoring_uri, json={"data": 5}, timeout=60)
        time.sleep(0.3)  # run() is working now (the checks hold whenever they run)
        for _ in range(3):
            record = target.get("svc")  # probes GET / with a 1 s timeout
            assert record.state is ServiceState.HEALTHY, record.error
        assert not slow.done()
        assert slow.result(timeout=60).status_code == 200
