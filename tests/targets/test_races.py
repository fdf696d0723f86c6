"""Concurrent deploy / update / delete of one service name from several processes.

Before per-name locks, three processes deploying one name all reported success with
different URIs, the record ended ``Failed`` while untracked servers kept answering,
and ``delete()`` left them running. Now each change holds the service's lock: what
is left is exactly one generation serving (or none after a delete), every server
process alive is the record's, and every bundle folder left is the record's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.services import ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import ServiceNotFoundError
from nbdeploy.targets.local import LocalTarget
from nbdeploy.targets.local.servers import servers_of

pytestmark = pytest.mark.integration

WORKER = """
import json, sys, time
import nbdeploy
from nbdeploy.exceptions import NbdeployError

home, script, start, actions = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
while time.time() < start:
    time.sleep(0.001)
done = []
for action in actions:
    try:
        if action == "deploy":
            svc = nbdeploy.deploy("diabetes", name="race", score=script, workspace=home)
            done.append(["deploy", svc.scoring_uri])
        elif action == "update":
            nbdeploy.get_service("race", workspace=home).update(score=script)
            done.append(["update", None])
        else:
            nbdeploy.delete_service("race", workspace=home)
            done.append(["delete", None])
    except NbdeployError as exc:  # e.g. updating a service another process deleted
        done.append([action, "error: " + exc.message])
print(json.dumps(done))
"""


def _server_pids(workspace: Workspace) -> set[int]:
    """PIDs of the live processes working in one of this workspace's bundle folders
    (every server process runs with its bundle as the current folder)."""
    bundles = str(Path(workspace.bundles_dir).resolve())
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(bundles + "/") and state not in ("Z", "X"):
            found.add(int(entry.name))
    return found


def _bundle_folders(workspace: Workspace) -> set[str]:
    root = Path(workspace.bundles_dir)
    return {str(p) for p in root.glob("*/*") if p.is_dir()} if root.is_dir() else set()


def _race(workspace: Workspace, script: Path, plans: list[list[str]]) -> list[Any]:
    start = time.time() + 3.0  # every worker imported and waiting
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(workspace.path), str(script), repr(start), *plan],
            stdout=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check_one_generation(workspace: Workspace, rows: np.ndarray) -> None:
    record = LocalTarget(workspace).get("race")
    assert record.state is ServiceState.HEALTHY, record.error
    servers = {s.process.pid for s in servers_of(record)}
    assert servers
    deadline = time.monotonic() + 60
    while _server_pids(workspace) != servers:  # retired generations finish stopping
        assert time.monotonic() < deadline, (_server_pids(workspace), servers)
        time.sleep(0.05)
    assert _bundle_folders(workspace) == {str(Path(record.bundle_path or ""))}
    assert record.scoring_uri is not None
    answer = requests.post(record.scoring_uri, json={"data": rows.tolist()}, timeout=30)
    assert answer.status_code == 200


def test_concurrent_deploys_updates_and_deletes_leave_one_generation(
    workspace: Workspace, diabetes: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    model, rows = diabetes
    nbdeploy.register(model, "diabetes", sample_input=rows, workspace=workspace)
    script = tmp_path / "score.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np, nbdeploy, cloudpickle

            def init():
                global model
                with open(nbdeploy.get_model_path("diabetes"), "rb") as fh:
                    model = cloudpickle.load(fh)

            def run(data):
                return model.predict(data)
            """
        ),
        encoding="utf-8",
    )
    try:
        # Three deploys and two updates at once: one service, one generation.
        results = _race(
            workspace,
            script,
            [["deploy"], ["deploy"], ["deploy", "update"], ["update", "deploy"]],
        )
        uris = {uri for worker in results for action, uri in worker if action == "deploy"}
        assert len(uris) == 1, results  # every deploy saw the one service
        _check_one_generation(workspace, rows)
        # Deletes racing deploys and updates: whatever the order, the end is clean.
        results = _race(
            workspace,
            script,
            [["delete", "deploy"], ["update", "delete"], ["deploy", "update"]],
        )
        try:
            workspace.services.get("race")
        except ServiceNotFoundError:
            deadline = time.monotonic() + 60
            while _server_pids(workspace):
                assert time.monotonic() < deadline, _server_pids(workspace)
                time.sleep(0.05)
            assert _bundle_folders(workspace) == set()
        else:
            _check_one_generation(workspace, rows)
        nbdeploy.delete_service("race", workspace=workspace)
        assert _server_pids(workspace) == set()
    finally:
        for record in workspace.services.list():
            LocalTarget(workspace).delete(record.name)
